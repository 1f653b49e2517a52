#!/usr/bin/env python3
"""Malformed and abusive control requests against a running ied (tests/netns/ied_control.sh).

Generates the cases (bad JSON, wrong envelope, wrong parameter types, oversized frames,
unauthorised callers, slow clients, too many connections), sends each to ied's control
socket and checks the answer against docs/control-protocol.md: one reply line within the
deadline, valid JSON, "ok": false, an error with a documented code (the one the case
expects), an errno and a non-empty message, and the request's id echoed when the request
had a readable one. After every case a well-formed `status` on a fresh connection must
still succeed. Prints one line per failure naming the case, then `N cases, N ok`; exits 1
on any failure. Python 3 standard library only; run as root (it connects as `nobody` by
forking a child that drops its privileges, connects, and hands the socket back).
"""

import argparse
import json
import grp
import os
import pwd
import select
import socket
import struct
import threading
import time

DEADLINE = 2.0  # seconds for an answer
MAX_FRAME = 1 << 20  # 1 MiB, docs/control-protocol.md "Framing"
MAX_DEPTH = 32
MAX_CONNECTIONS = 64  # ie::ctl::ServerLimits::kMaxConnections
MAX_NON_ADMIN = 48  # ie::ctl::ServerLimits::kMaxNonAdminConnections
MAX_PER_UID = 16  # ie::ctl::ServerLimits::kMaxConnectionsPerUid
MAX_FDS = 4  # ie::ctl::Server::kMaxFdsPerRequest
LINE_TIMEOUT = 10.0  # ie::ctl::ServerLimits::kLineTimeout
BACKLOG_TIMEOUT = 10.0  # ie::ctl::ServerLimits::kBacklogTimeout
U64_MAX = (1 << 64) - 1

CODES = {
    "invalid_argument", "parse", "io", "not_found", "exists", "permission", "timeout",
    "protocol", "crypto", "unsupported", "busy", "closed", "too_large", "internal",
}
# Codes whose errno is always the documented default (they never come from the OS).
DEFAULT_ERRNO = {"parse": 74, "permission": 1, "protocol": 71, "unsupported": 95,
                 "too_large": 90, "busy": 16}

READ_METHODS = ["hello", "status", "sn.list", "sn.ping", "peers", "flows", "service.list",
                "peer.resolve"]
ADMIN_METHODS = ["sn.discover", "sn.use", "config.check", "service.enable", "service.disable"]
MAX_INVOCATIONS = 32  # ie::ied::kMaxInvocations (docs/sn.md "Out-of-band requests")
ALL_METHODS = READ_METHODS + ADMIN_METHODS

# Cases that show a behaviour the lead has to decide on (reported, not fixed here): they
# run and are reported as XFAIL while they fail, and as XPASS (not a failure) once fixed.
EXPECTED_FAILURES: set = set()


class Failure(Exception):
    pass


def req(method="status", rid=1, params=None):
    """A well-formed request line (bytes, with its newline)."""
    j = {"v": 1, "id": rid, "method": method}
    if params is not None:
        j["params"] = params
    return (json.dumps(j, separators=(",", ":")) + "\n").encode()


def raw(text):
    """A request line given as text (may hold anything); newline appended."""
    b = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return b + b"\n"


# ---- connections -------------------------------------------------------------------------

class Ctx:
    def __init__(self, sock_path, work, sn_name, config_path):
        self.path = sock_path
        self.work = work
        self.sn_name = sn_name
        self.config_path = config_path
        nobody = pwd.getpwnam("nobody")
        self.nobody = (nobody.pw_uid, grp.getgrnam("nogroup").gr_gid)
        self.staff_gid = grp.getgrnam("staff").gr_gid
        # config.check's targets, written by prepare()
        self.files = {k: os.path.join(work, f"{k}.toml") for k in ("bad", "unknown", "big")}
        self.files["fifo"] = os.path.join(work, "fifo.toml")

    def prepare(self):
        with open(self.files["bad"], "w") as f:
            f.write('[daemon]\nstate_dir = "/tmp"\n\n[tun]\nname = 7\n')  # line 5
        with open(self.files["unknown"], "w") as f:
            f.write("[daemon]\nfrobnicate = true\n")
        with open(self.files["big"], "w") as f:
            f.write("# x\n" * (MAX_FRAME // 4 + 1))


def unix_connect(path):
    """A blocking connect bounded by SO_SNDTIMEO: when the listen backlog is full it waits
    for the server to accept (a non-blocking connect would fail with EAGAIN at once)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(DEADLINE), 0))
    try:
        s.connect(path)
    except BaseException:
        s.close()
        raise
    return s


def connect(ctx, user="root"):
    """A connected socket; for user != root a child process with that identity connects
    (the server takes the caller's credentials at connect()) and passes the socket back."""
    if user == "root":
        s = unix_connect(ctx.path)
        s.settimeout(DEADLINE)
        return s
    uid, gid = ctx.nobody
    groups = []
    if user == "nobody-staff-primary":
        gid = ctx.staff_gid
    elif user == "nobody-staff-supplementary":
        groups = [ctx.staff_gid]
    elif user.startswith("uid:"):  # a uid without a passwd entry, group nogroup
        uid = int(user[4:])
    elif user != "nobody":
        raise ValueError(user)
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # child: drop privileges for good, connect, hand the socket over
        code = 1
        try:
            parent.close()
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            s = unix_connect(ctx.path)
            socket.send_fds(child, [b"x"], [s.fileno()])
            code = 0
        finally:
            os._exit(code)
    child.close()
    try:
        parent.settimeout(DEADLINE)
        _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    finally:
        parent.close()
        os.waitpid(pid, 0)
    if not fds:
        raise Failure(f"could not connect as {user}")
    s = socket.socket(fileno=fds[0])
    s.settimeout(DEADLINE)
    return s


def read_line(s, deadline=DEADLINE, buf=None):
    """One line (without its newline) or None at EOF; Failure when none arrives in time.
    `buf` (a bytearray) carries bytes read past the line between calls."""
    buf = bytearray() if buf is None else buf
    end = time.monotonic() + deadline
    while b"\n" not in buf:
        left = end - time.monotonic()
        if left <= 0:
            raise Failure(f"no answer within {deadline:g} s")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise Failure(f"no answer within {deadline:g} s") from None
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            if buf:
                raise Failure(f"connection closed after a partial line {bytes(buf[:80])!r}")
            return None
        buf += chunk
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[:i + 1]
    return line


def expect_eof(s, deadline=DEADLINE):
    """The server closes the connection (EOF or reset) within the deadline, sending nothing."""
    end = time.monotonic() + deadline
    while True:
        left = end - time.monotonic()
        if left <= 0:
            raise Failure("connection not closed")
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise Failure("connection not closed") from None
        except ConnectionResetError:
            return
        if not chunk:
            return
        raise Failure(f"unexpected data before close: {chunk[:80]!r}")


def strict_json(line):
    def bad_constant(name):
        raise ValueError(f"non-JSON constant {name}")
    try:
        return json.loads(line.decode("utf-8"), parse_constant=bad_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise Failure(f"reply is not valid JSON ({e}): {line[:200]!r}") from None


def check_error(line, codes, rid):
    """A reply line must be an error with a code in `codes` and id `rid`."""
    if line is None:
        raise Failure("connection closed without an answer")
    j = strict_json(line)
    if not isinstance(j, dict):
        raise Failure(f"reply is not an object: {line[:200]!r}")
    if j.get("v") != 1 or j.get("ok") is not False:
        raise Failure(f"not an error reply: {line[:300]!r}")
    e = j.get("error")
    if not isinstance(e, dict):
        raise Failure(f"no error object: {line[:300]!r}")
    code, msg, en = e.get("code"), e.get("message"), e.get("errno")
    if code not in CODES:
        raise Failure(f"undocumented error code {code!r}")
    if code not in codes:
        raise Failure(f"code {code!r}, want {sorted(codes)} (message {str(msg)[:200]!r})")
    if not isinstance(msg, str) or not msg.strip():
        raise Failure(f"empty error message: {line[:300]!r}")
    if type(en) is not int or en <= 0:
        raise Failure(f"bad errno {en!r}")
    if code in DEFAULT_ERRNO and en != DEFAULT_ERRNO[code]:
        raise Failure(f"errno {en} for {code}, want {DEFAULT_ERRNO[code]}")
    if type(j.get("id")) is not int or j["id"] != rid:
        raise Failure(f"id {j.get('id')!r}, want {rid} (reply {line[:200]!r})")
    return j


def check_ok(line, rid, keys=()):
    if line is None:
        raise Failure("connection closed without an answer")
    j = strict_json(line)
    if not isinstance(j, dict) or j.get("ok") is not True or j.get("id") != rid:
        raise Failure(f"want a success reply with id {rid}: {line[:300]!r}")
    res = j.get("result")
    if not isinstance(res, dict):
        raise Failure(f"result is not an object: {line[:300]!r}")
    for k in keys:
        if k not in res:
            raise Failure(f"result lacks {k!r}: {line[:300]!r}")
    return res


def call(ctx, data, user="root"):
    with connect(ctx, user) as s:
        s.sendall(data)
        return read_line(s)


def daemon_up(ctx):
    """A well-formed status request on a fresh connection succeeds."""
    check_ok(call(ctx, req("status", 77)), 77, ("version", "identity", "counters"))


# ---- case kinds --------------------------------------------------------------------------

class Case:
    def __init__(self, name, run):
        self.name = name
        self.run = run


def error_case(name, data, codes, rid, user="root", errno=None):
    """One line on a fresh connection -> one error reply (with `errno` if given); then the
    same connection still answers a `hello` (only too_large closes a connection)."""
    codes = {codes} if isinstance(codes, str) else set(codes)

    def run(ctx):
        with connect(ctx, user) as s:
            s.sendall(data)
            buf = bytearray()
            j = check_error(read_line(s, buf=buf), codes, rid)
            if errno is not None and j["error"]["errno"] != errno:
                raise Failure(f"errno {j['error']['errno']}, want {errno}")
            s.sendall(req("hello", 9))
            check_ok(read_line(s, buf=buf), 9, ("methods",))
    return Case(name, run)


def ok_case(name, data, rid, keys=(), user="root"):
    def run(ctx):
        check_ok(call(ctx, data, user), rid, keys)
    return Case(name, run)


# ---- 1. invalid JSON ---------------------------------------------------------------------

def invalid_json_cases():
    cs = []
    full = req("status", 42, {}).rstrip(b"\n")
    for n in range(len(full)):  # every truncation, including the empty line
        cs.append(error_case(f"truncated/{n}-of-{len(full)}", full[:n] + b"\n", "parse", 0))
    good = req("status", 43).rstrip(b"\n")
    for tag, tail in [("x", b"x"), ("brace", b"}"), ("object", b"{}"), ("array", b"[]"),
                      ("number", b" 1"), ("comma", b","), ("high-byte", b"\x80"),
                      ("second-request", req("status", 44)[:-1]), ("string", b'"s"'),
                      ("colon", b":")]:
        cs.append(error_case(f"trailing-garbage/{tag}", good + tail + b"\n", "parse", 0))
    # NUL bytes
    cs.append(error_case("nul/alone", b"\x00\n", "parse", 0))
    cs.append(error_case("nul/three", b"\x00\x00\x00\n", "parse", 0))
    cs.append(error_case("nul/before-object", b"\x00" + good + b"\n", "parse", 0))
    cs.append(error_case("nul/in-key", b'{"v\x00":1,"id":45,"method":"status"}\n', "parse", 0))
    cs.append(error_case("nul/in-method", b'{"v":1,"id":45,"method":"sta\x00tus"}\n', "parse", 0))
    cs.append(error_case("nul/between-tokens", b'{"v":1,\x00"id":45,"method":"status"}\n',
                         "parse", 0))
    cs.append(error_case("nul/after-object", good + b"\x00\n", "parse", 0))
    cs.append(error_case("nul/after-object-then-garbage", good + b"\x00garbage\n", "parse", 0))
    # invalid UTF-8, in a string value, in a key, outside strings
    bad_utf8 = [("ff", b"\xff"), ("fe", b"\xfe"), ("overlong-slash", b"\xc0\xaf"),
                ("overlong-nul", b"\xc0\x80"), ("overlong-3", b"\xe0\x80\xaf"),
                ("encoded-surrogate", b"\xed\xa0\x80"), ("above-10ffff", b"\xf4\x90\x80\x80"),
                ("truncated-2", b"\xc3"), ("truncated-3", b"\xe2\x82"),
                ("lone-continuation", b"\x80"), ("five-byte", b"\xf8\x88\x80\x80\x80")]
    for tag, bad in bad_utf8:
        cs.append(error_case(f"utf8/method/{tag}",
                             b'{"v":1,"id":46,"method":"st' + bad + b'atus"}\n', "parse", 0))
    for tag, bad in bad_utf8[:4]:
        cs.append(error_case(f"utf8/key/{tag}",
                             b'{"v":1,"id":46,"method":"status","k' + bad + b'":1}\n', "parse", 0))
        cs.append(error_case(f"utf8/params/{tag}",
                             b'{"v":1,"id":46,"method":"sn.ping","params":{"name":"' + bad +
                             b'"}}\n', "parse", 0))
    cs.append(error_case("utf8/outside-string", b'{"v":1,"id":46,\xff"method":"status"}\n',
                         "parse", 0))
    # lone and mismatched surrogate escapes
    for tag, esc in [("high", r"\ud800"), ("low", r"\udc00"), ("high-then-A", r"\ud800\u0041"),
                     ("two-high", r"\ud800\ud800"), ("low-high", r"\udfff\ud800"),
                     ("high-at-end", r"x\udbff")]:
        cs.append(error_case(f"surrogate/method/{tag}",
                             raw('{"v":1,"id":47,"method":"%s"}' % esc), "parse", 0))
        cs.append(error_case(f"surrogate/param/{tag}",
                             raw('{"v":1,"id":47,"method":"sn.ping","params":{"name":"%s"}}'
                                 % esc), "parse", 0))
    cs.append(error_case("surrogate/key", raw(r'{"v":1,"id":47,"\ud800":1,"method":"status"}'),
                         "parse", 0))
    # bad escapes and raw control characters inside strings
    for tag, s in [("hex-escape", r"\x41"), ("short-u", r"\u12"), ("bad-u", r"\uzzzz"),
                   ("quote-escape", r"\'"), ("raw-tab", "\t"), ("raw-cr", "\r"),
                   ("raw-0x01", "\x01"), ("raw-0x1f", "\x1f"), ("raw-esc", "\x1b"),
                   ("backslash-at-end", "\\")]:
        cs.append(error_case(f"string/{tag}", raw('{"v":1,"id":48,"method":"st%satus"}' % s),
                             "parse", 0))
    # not JSON at all, or JSON extensions nlohmann must refuse
    for tag, text in [
            ("nan", '{"v":1,"id":NaN,"method":"status"}'),
            ("infinity", '{"v":1,"id":Infinity,"method":"status"}'),
            ("minus-infinity", '{"v":-Infinity,"id":1,"method":"status"}'),
            ("undefined", '{"v":1,"id":undefined,"method":"status"}'),
            ("python-true", '{"v":1,"id":1,"method":"status","params":{"repin":True}}'),
            ("single-quotes", "{'v':1,'id':1,'method':'status'}"),
            ("unquoted-keys", '{v:1,id:1,method:"status"}'),
            ("trailing-comma-object", '{"v":1,"id":1,"method":"status",}'),
            ("trailing-comma-array", '{"v":1,"id":1,"method":"status","params":{"a":[1,]}}'),
            ("leading-zero", '{"v":01,"id":1,"method":"status"}'),
            ("hex-number", '{"v":0x1,"id":1,"method":"status"}'),
            ("plus-number", '{"v":+1,"id":1,"method":"status"}'),
            ("dot-number", '{"v":1,"id":.5,"method":"status"}'),
            ("number-dot", '{"v":1,"id":1.,"method":"status"}'),
            ("line-comment", '{"v":1,"id":1,"method":"status"} // hi'),
            ("block-comment", '{"v":1,/* hi */"id":1,"method":"status"}'),
            ("missing-colon", '{"v" 1,"id":1,"method":"status"}'),
            ("missing-comma", '{"v":1 "id":1,"method":"status"}'),
            ("unclosed-array", '{"v":1,"id":1,"method":"status","params":{"a":[1}}'),
            ("mismatched", '{"v":1,"id":1,"method":"status"]'),
            ("only-close", "}"), ("only-open", "{"), ("garbage", "GET / HTTP/1.1"),
            ("whitespace", "   \t  "), ("carriage-return", "\r"), ("nul-literal", "nul"),
    ]:
        cs.append(error_case(f"not-json/{tag}", raw(text), "parse", 0))
    # JSON but not an object
    for tag, text in [("array", "[]"), ("array-of-request", "[" + req()[:-1].decode() + "]"),
                      ("string", '"status"'), ("empty-string", '""'), ("number", "1"),
                      ("null", "null"), ("true", "true"), ("false", "false")]:
        cs.append(error_case(f"not-object/{tag}", raw(text), "parse", 0))
    # nesting: the limit counts brackets outside strings, before the parser runs
    def nested(levels, opener="{"):
        inner = "0"
        for _ in range(levels - 1):  # the envelope is level 1
            inner = '{"a":%s}' % inner if opener == "{" else "[%s]" % inner
        return '{"v":1,"id":49,"method":"nope","x":%s}' % inner
    cs.append(error_case("depth/32-objects-accepted", raw(nested(MAX_DEPTH)), "not_found", 49))
    cs.append(error_case("depth/32-arrays-accepted", raw(nested(MAX_DEPTH, "[")), "not_found", 49))
    cs.append(error_case("depth/33-objects", raw(nested(MAX_DEPTH + 1)), "parse", 0))
    cs.append(error_case("depth/33-arrays", raw(nested(MAX_DEPTH + 1, "[")), "parse", 0))
    cs.append(error_case("depth/1000-arrays", raw(nested(1000, "[")), "parse", 0))
    cs.append(error_case("depth/100k-open-brackets", raw("[" * 100000), "parse", 0))
    cs.append(error_case("depth/1MiB-open-brackets", raw("[" * MAX_FRAME), "parse", 0))
    cs.append(error_case("depth/brackets-in-string-ignored",
                         raw('{"v":1,"id":50,"method":"nope","x":"%s"}' % ("[{" * 5000)),
                         "not_found", 50))
    cs.append(error_case("depth/closers-first", raw("]" * 100 + "[" * 100), "parse", 0))
    # huge numbers
    for tag, text, rid in [
            ("id-1e400", '{"v":1,"id":1e400,"method":"status"}', 0),
            ("id-2^64", '{"v":1,"id":%d,"method":"status"}' % (U64_MAX + 1), 0),
            ("id-400-digits", '{"v":1,"id":%s,"method":"status"}' % ("9" * 400), 0),
            ("v-1e400", '{"v":1e400,"id":51,"method":"status"}', 0),
            ("v-2^64", '{"v":%d,"id":51,"method":"status"}' % (U64_MAX + 1), 51),
            ("param-minus-1e400", '{"v":1,"id":51,"method":"status","params":{"x":-1e400}}', 0),
    ]:
        cs.append(error_case(f"huge-number/{tag}", raw(text), "parse", rid))
    cs.append(error_case("huge-number/id-2^64-1-echoed",
                         raw('{"v":1,"id":%d,"method":"nope"}' % U64_MAX), "not_found", U64_MAX))
    cs.append(error_case("huge-number/v-2^64-1", raw('{"v":%d,"id":52,"method":"status"}'
                                                     % U64_MAX), "unsupported", 52))
    # duplicate keys: the last one wins (nlohmann and Python agree)
    for tag, text, code, rid in [
            ("id-last-is-string", '{"v":1,"id":53,"id":"x","method":"status"}', "parse", 0),
            ("id-last-is-number", '{"v":1,"id":"x","id":53,"method":"nope"}', "not_found", 53),
            ("method-last-is-number", '{"v":1,"id":53,"method":"status","method":7}', "parse", 53),
            ("v-last-is-1", '{"v":2,"v":1,"id":53,"method":"nope"}', "not_found", 53),
            ("v-last-is-2", '{"v":1,"v":2,"id":53,"method":"status"}', "unsupported", 53),
            ("params-last-is-array", '{"v":1,"id":53,"method":"status","params":{},"params":[]}',
             "parse", 53),
    ]:
        cs.append(error_case(f"duplicate-key/{tag}", raw(text), code, rid))
    return cs


# ---- 2. wrong envelope -------------------------------------------------------------------

def envelope_cases():
    cs = []
    cs.append(error_case("envelope/missing-v", raw('{"id":60,"method":"status"}'), "parse", 60))
    for tag, v, code in [("string", '"1"', "parse"), ("float", "1.0", "parse"),
                         ("true", "true", "parse"), ("null", "null", "parse"),
                         ("array", "[1]", "parse"), ("object", '{"v":1}', "parse"),
                         ("zero", "0", "unsupported"), ("minus-1", "-1", "unsupported"),
                         ("two", "2", "unsupported"), ("255", "255", "unsupported"),
                         ("2^63", str(1 << 63), "unsupported")]:
        cs.append(error_case(f"envelope/v-{tag}",
                             raw('{"v":%s,"id":61,"method":"status"}' % v), code, 61))
    cs.append(error_case("envelope/missing-id", raw('{"v":1,"method":"status"}'), "parse", 0))
    for tag, rid in [("string", '"1"'), ("word", '"abc"'), ("minus-1", "-1"), ("minus-0", "-0"),
                     ("float", "1.0"), ("fraction", "1.5"), ("exponent", "1e3"),
                     ("true", "true"), ("null", "null"), ("array", "[1]"),
                     ("object", '{"id":1}'), ("min-i64", str(-(1 << 63)))]:
        cs.append(error_case(f"envelope/id-{tag}",
                             raw('{"v":1,"id":%s,"method":"status"}' % rid), "parse", 0))
    cs.append(error_case("envelope/id-zero-accepted", req("nope", 0), "not_found", 0))
    cs.append(error_case("envelope/missing-method", raw('{"v":1,"id":62}'), "parse", 62))
    cs.append(error_case("envelope/missing-method-with-params",
                         raw('{"v":1,"id":62,"params":{}}'), "parse", 62))
    for tag, m in [("number", "1"), ("null", "null"), ("true", "true"), ("array", '["status"]'),
                   ("object", '{"name":"status"}'), ("float", "1.5")]:
        cs.append(error_case(f"envelope/method-{tag}",
                             raw('{"v":1,"id":63,"method":%s}' % m), "parse", 63))
    unknown = ["", " ", "STATUS", "Status", "status ", " status", "status\u0000", "sn", "sn.",
               "sn.list.x", "hello2", "../status", "sn.use ", "config", "config.check.x",
               "a" * 1000, "a" * 500000, "ü", "\n", "sn.list\nstatus", "*", "%s%n%x",
               "{}", "status\r", "\u202estatus", "\ufeffstatus"]
    for i, m in enumerate(unknown):
        tag = m[:20].encode("unicode_escape").decode() if len(m) < 100 else f"{len(m)}-chars"
        cs.append(error_case(f"envelope/unknown-method-{i}-{tag or 'empty'}",
                             req(m, 64 + i), "not_found", 64 + i))
    # params not an object, for every method (decoding fails before dispatch)
    for m in ALL_METHODS:
        for tag, p in [("array", "[]"), ("string", '"x"'), ("number", "1"), ("true", "true"),
                       ("null", "null")]:
            cs.append(error_case(f"envelope/params-{tag}/{m}",
                                 raw('{"v":1,"id":90,"method":"%s","params":%s}' % (m, p)),
                                 "parse", 90))
    # not a request: replies and events sent to the server
    for tag, text, code, rid in [
            ("reply-ok", '{"v":1,"id":91,"ok":true,"result":{}}', "protocol", 91),
            ("reply-error",
             '{"v":1,"id":91,"ok":false,"error":{"code":"x","errno":1,"message":"m"}}',
             "protocol", 91),
            ("event", '{"v":1,"event":"x","data":{}}', "protocol", 0),
            ("reply-ok-not-bool", '{"v":1,"id":91,"ok":"yes"}', "parse", 91),
            ("reply-without-id", '{"v":1,"ok":true}', "parse", 0),
            ("reply-error-not-object", '{"v":1,"id":91,"ok":false,"error":[]}', "parse", 91),
            ("event-name-number", '{"v":1,"event":1}', "parse", 0),
            ("event-data-array", '{"v":1,"event":"x","data":[]}', "parse", 0),
            ("no-kind", '{"v":1,"id":91,"what":"status"}', "parse", 91),
            ("empty-object", "{}", "parse", 0),
            ("only-v", '{"v":1}', "parse", 0),
    ]:
        cs.append(error_case(f"kind/{tag}", raw(text), code, rid))
    return cs


# ---- 3. wrong parameter types -----------------------------------------------------------

BAD_VALUES = [("int", 1), ("negative", -1), ("float", 1.5), ("true", True), ("false", False),
              ("null", None), ("empty-array", []), ("array", ["x"]), ("empty-object", {}),
              ("object", {"name": "x"})]


def strings(sn_name):
    """Strings that name no SN (every handler must answer them with an error)."""
    return [("nope", "dom9.nope"), ("long-64k", "a" * 65536), ("long-900k", "b" * 900000),
            ("nul", "x\u0000y"), ("real-name-plus-nul", sn_name + "\u0000"),
            ("newline", "a\nb"), ("real-name-plus-newline", sn_name + "\n"),
            ("unicode", "dom9.sn\u00fc"), ("path", "../../etc/passwd"), ("spaces", "   "),
            ("upper", sn_name.upper())]


def param_cases(ctx):
    cs = []
    rid = 100
    for tag, v in BAD_VALUES:
        cs.append(error_case(f"sn.ping/name-{tag}", req("sn.ping", rid, {"name": v}),
                             "invalid_argument", rid))
        cs.append(error_case(f"sn.use/name-{tag}", req("sn.use", rid, {"name": v}),
                             "invalid_argument", rid))
        if not isinstance(v, bool):
            cs.append(error_case(f"sn.use/repin-{tag}",
                                 req("sn.use", rid, {"name": "dom9.nope", "repin": v}),
                                 "invalid_argument", rid))
        cs.append(error_case(f"config.check/path-{tag}", req("config.check", rid, {"path": v}),
                             "invalid_argument", rid))
        rid += 1
    for tag, v in strings(ctx.sn_name):
        cs.append(error_case(f"sn.ping/name-{tag}", req("sn.ping", rid, {"name": v}),
                             "not_found", rid))
        cs.append(error_case(f"sn.use/name-{tag}", req("sn.use", rid, {"name": v}),
                             "not_found", rid))
        rid += 1
    cs.append(error_case("sn.use/name-empty", req("sn.use", rid, {"name": ""}), "not_found", rid))
    cs.append(error_case("sn.use/missing-name", req("sn.use", rid, {}), "invalid_argument", rid))
    cs.append(error_case("sn.use/no-params", req("sn.use", rid), "invalid_argument", rid))
    cs.append(error_case("sn.use/misspelt-name", req("sn.use", rid, {"nmae": ctx.sn_name}),
                         "invalid_argument", rid))
    cs.append(error_case("sn.use/repin-string", req("sn.use", rid,
                                                    {"name": ctx.sn_name, "repin": "true"}),
                         "invalid_argument", rid))
    cs.append(error_case("sn.use/repin-true-unknown", req("sn.use", rid,
                                                          {"name": "dom9.nope", "repin": True}),
                         "not_found", rid))
    # The configured SN never answers: it exists but cannot become active.
    cs.append(error_case("sn.use/not-associated", req("sn.use", rid, {"name": ctx.sn_name}),
                         "busy", rid))
    cs.append(error_case("sn.discover/no-dns-domain", req("sn.discover", rid), "unsupported",
                         rid))
    cs.append(error_case("sn.discover/with-params", req("sn.discover", rid, {"name": [1]}),
                         "unsupported", rid))
    # config.check: files that are not an ied.toml, or not files
    bad_toml, unknown_key, big = ctx.files["bad"], ctx.files["unknown"], ctx.files["big"]
    for tag, path, code, errno in [
            ("empty", "", "invalid_argument", 22),
            ("missing-file", "/nonexistent/ied.toml", "not_found", 2),
            ("relative", "no/such/ied.toml", "not_found", 2),
            ("directory", "/", "invalid_argument", None),  # not a regular file
            ("name-too-long", "/" + "x" * 5000, "io", 36),  # ENAMETOOLONG
            ("newline", ctx.config_path + "\nx", "not_found", 2),
            # The path must not be cut at the NUL (it would name the valid configuration).
            ("nul-truncates", ctx.config_path + "\u0000.bak", {"not_found", "invalid_argument"},
             None),
            ("dev-zero", "/dev/zero", "invalid_argument", None),  # not a regular file
            ("over-1MiB", big, "too_large", None),
            ("bad-type", bad_toml, {"parse", "invalid_argument"}, None),
            ("unknown-key", unknown_key, {"parse", "invalid_argument"}, None),
            ("not-toml", "/etc/services", {"parse", "invalid_argument"}, None),
            ("binary", "/bin/true", {"parse", "invalid_argument", "too_large"}, None),
    ]:
        cs.append(error_case(f"config.check/path-{tag}", req("config.check", rid, {"path": path}),
                             code, rid, errno=errno))
    cs.append(Case("config.check/path-fifo", config_check_fifo))
    # The FILE:LINE:COL the documentation promises.
    def line_col(ctx):
        with connect(ctx) as s:
            s.sendall(req("config.check", 140, {"path": bad_toml}))
            j = check_error(read_line(s), {"parse", "invalid_argument"}, 140)
            if not j["error"]["message"].startswith(bad_toml + ":5:"):
                raise Failure(f"message lacks {bad_toml}:5:COL: {j['error']['message']!r}")
    cs.append(Case("config.check/message-names-line-and-column", line_col))
    return cs + service_cases()


# ---- 3b. out-of-band services (service.enable / service.disable / service.list) ----------

GOOD_ENTRY = {"service": "block", "direction": "in", "prefix": "198.51.100.0/24"}


def service_cases():
    """Malformed entries for service.enable/disable; the set's rules (no change twice, at most
    32, absent is not_found) against the real daemon, each case leaving the set empty (its SN
    never answers, so nothing waits on it)."""
    cs = []
    rid = 300
    for field in ("service", "direction", "prefix"):
        for tag, v in BAD_VALUES:
            for m in ("service.enable", "service.disable"):
                cs.append(error_case(f"{m}/{field}-{tag}", req(m, rid, dict(GOOD_ENTRY, **{field: v})),
                                     "invalid_argument", rid))
            rid += 1
    for field, tag, v in [
            ("service", "empty", ""), ("service", "upper", "Block"), ("service", "dash", "bl-ock"),
            ("service", "33-chars", "b" * 33), ("service", "nul", "bl\u0000ock"),
            ("service", "unicode", "bl\u00f6ck"), ("service", "900k", "b" * 900000),
            ("direction", "empty", ""), ("direction", "upper", "IN"), ("direction", "up", "up"),
            ("direction", "trailing-space", "in "), ("prefix", "empty", ""),
            ("prefix", "no-length", "10.0.0.0/"), ("prefix", "v4-33", "10.0.0.0/33"),
            ("prefix", "v6-129", "fd00::/129"), ("prefix", "negative-length", "10.0.0.0/-1"),
            ("prefix", "name", "example.com/24"), ("prefix", "two-slashes", "10.0.0.0/8/8"),
            ("prefix", "short-v4", "10.0.0/8"), ("prefix", "nul", "10.0.0.0/8\u0000"),
            ("prefix", "900k", "1" * 900000)]:
        cs.append(error_case(f"service.enable/{field}-{tag}",
                             req("service.enable", rid, dict(GOOD_ENTRY, **{field: v})),
                             "invalid_argument", rid))
        rid += 1
    for tag, p in [("missing-service", {"prefix": "10.0.0.0/8"}),
                   ("missing-prefix", {"service": "block"}), ("empty", {}),
                   ("misspelt", {"servise": "block", "prefix": "10.0.0.0/8"})]:
        cs.append(error_case(f"service.enable/{tag}", req("service.enable", rid, p),
                             "invalid_argument", rid))
        cs.append(error_case(f"service.disable/{tag}", req("service.disable", rid, p),
                             "invalid_argument", rid))
        rid += 1
    cs.append(error_case("service.enable/no-params", req("service.enable", rid),
                         "invalid_argument", rid))
    for tag, v in BAD_VALUES:
        if not isinstance(v, bool):
            cs.append(error_case(f"service.disable/all-{tag}",
                                 req("service.disable", rid, {"all": v}), "invalid_argument",
                                 rid))
    cs.append(error_case("service.disable/all-with-entry",
                         req("service.disable", rid, dict(GOOD_ENTRY, all=True)),
                         "invalid_argument", rid))
    cs.append(error_case("service.disable/absent", req("service.disable", rid, GOOD_ENTRY),
                         "not_found", rid))
    cs.append(ok_case("service.disable/all-when-empty",
                      req("service.disable", rid, {"all": True}), rid, ("changed", "generation")))
    cs.append(ok_case("service.list/ok", req("service.list", rid, {"x": [1]}), rid,
                      ("generation", "invocations", "sns", "last_refusal")))
    cs.append(Case("service/enable-twice-disable-twice", service_round_trip))
    cs.append(Case("service/at-most-32", service_limit))
    return cs + resolve_cases()


# ---- 3c. name resolution (peer.resolve) --------------------------------------------------

RESOLVE_KEYS = ("address", "interedge", "sns", "source", "expires_in_s", "pending")


def resolve_cases():
    """peer.resolve takes one numeric address: anything else is invalid_argument. This ied has
    no peers and no peer DNS, so a good address answers "none" at once (never pending)."""
    cs = []
    rid = 400
    for tag, v in BAD_VALUES:
        cs.append(error_case(f"peer.resolve/address-{tag}",
                             req("peer.resolve", rid, {"address": v}), "invalid_argument", rid))
        rid += 1
    for tag, v in [("empty", ""), ("name", "localhost"), ("sn-name", "dom9.sn1"),
                   ("v4-octet-256", "10.8.0.256"), ("v4-short", "10.8.0"),
                   ("prefix", "10.8.0.0/24"), ("port", "10.8.0.5:80"),
                   ("v6-scope", "fe80::1%eth0"), ("v6-bracketed", "[fd00::1]"),
                   ("leading-space", " 10.8.0.5"), ("trailing-newline", "10.8.0.5\n"),
                   ("nul", "10.8.0.5\u0000"), ("unicode-digits", "\u0661\u0660.8.0.5"),
                   ("long-900k", "1" * 900000)]:
        cs.append(error_case(f"peer.resolve/address-{tag}",
                             req("peer.resolve", rid, {"address": v}), "invalid_argument", rid))
        rid += 1
    for tag, p in [("missing-address", {}), ("misspelt", {"adress": "10.8.0.5"})]:
        cs.append(error_case(f"peer.resolve/{tag}", req("peer.resolve", rid, p),
                             "invalid_argument", rid))
    cs.append(error_case("peer.resolve/no-params", req("peer.resolve", rid), "invalid_argument",
                         rid))
    cs.append(ok_case("peer.resolve/v6", req("peer.resolve", rid, {"address": "fd00::5"}), rid,
                      RESOLVE_KEYS))
    cs.append(ok_case("nobody/read/peer.resolve", req("peer.resolve", rid, {"address": "10.8.0.5"}),
                      rid, RESOLVE_KEYS, user="nobody"))

    def exact(ctx):
        # A v4-mapped address is answered as the IPv4 address ied routes by.
        res = check_ok(call(ctx, req("peer.resolve", 450, {"address": "::ffff:10.8.0.5",
                                                            "extra": [1]})), 450, RESOLVE_KEYS)
        want = {"address": "10.8.0.5", "interedge": False, "sns": [], "source": "none",
                "expires_in_s": None, "pending": False}
        if res != want:
            raise Failure(f"got {res!r}, want {want!r}")
    cs.append(Case("peer.resolve/unknown-address-answers-none", exact))
    return cs


def call_ok(s, buf, method, rid, params):
    s.sendall(req(method, rid, params))
    return check_ok(read_line(s, buf=buf), rid)


def service_round_trip(ctx):
    with connect(ctx) as s:
        buf = bytearray()
        entry = {"service": "block", "prefix": "198.51.100.77/24"}  # direction defaults to in
        r = call_ok(s, buf, "service.enable", 310, entry)
        if r.get("changed") is not True or r.get("invocation") != GOOD_ENTRY:
            raise Failure(f"first enable: {r}")
        r2 = call_ok(s, buf, "service.enable", 311, GOOD_ENTRY)
        if r2.get("changed") is not False or r2.get("generation") != r.get("generation"):
            raise Failure(f"second enable is a change: {r2}")
        lst = call_ok(s, buf, "service.list", 312, {})
        if lst.get("invocations") != [GOOD_ENTRY] or lst.get("generation") != r["generation"]:
            raise Failure(f"list: {lst}")
        r3 = call_ok(s, buf, "service.disable", 313, GOOD_ENTRY)
        if r3.get("changed") is not True or r3.get("generation") != r["generation"] + 1:
            raise Failure(f"disable: {r3}")
        s.sendall(req("service.disable", 314, GOOD_ENTRY))
        check_error(read_line(s, buf=buf), "not_found", 314)


def service_limit(ctx):
    with connect(ctx) as s:
        buf = bytearray()
        try:
            for i in range(MAX_INVOCATIONS):
                call_ok(s, buf, "service.enable", 320,
                        {"service": "block", "direction": "out", "prefix": f"10.{i}.0.0/16"})
            s.sendall(req("service.enable", 321, {"service": "block", "prefix": "10.99.0.0/16"}))
            check_error(read_line(s, buf=buf), "too_large", 321)
            lst = call_ok(s, buf, "service.list", 322, {})
            if len(lst.get("invocations", [])) != MAX_INVOCATIONS:
                raise Failure(f"list has {len(lst.get('invocations', []))} entries")
        finally:
            call_ok(s, buf, "service.disable", 323, {"all": True})


def config_check_fifo(ctx):
    """A FIFO nobody writes to: answered with an error in time, not a daemon blocked in
    open(). Afterwards a writer is opened and closed, which frees a blocked daemon so the
    other cases can run."""
    fifo = ctx.files["fifo"]
    if not os.path.exists(fifo):
        os.mkfifo(fifo, 0o600)
    try:
        with connect(ctx) as s:
            s.sendall(req("config.check", 141, {"path": fifo}))
            check_error(read_line(s), {"io", "invalid_argument", "unsupported"}, 141)
    finally:
        try:  # succeeds only while a reader (a blocked daemon) has it open
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


# ---- 4. oversized frames and pipelining --------------------------------------------------

def send_all_ignoring_close(s, data):
    """Sends while the server may close early (after too_large); returns bytes sent."""
    sent = 0
    s.settimeout(DEADLINE * 3)
    try:
        while sent < len(data):
            sent += s.send(data[sent:sent + 65536])
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def too_large_case(name, data, before=0):
    """`before` good requests (ids 1..before) are answered first, then one too_large (id
    0), then the connection closes."""
    def run(ctx):
        with connect(ctx) as s:
            t = threading.Thread(target=send_all_ignoring_close, args=(s, data), daemon=True)
            t.start()
            buf = bytearray()
            for i in range(1, before + 1):
                check_error(read_line(s, buf=buf), "not_found", i)
            check_error(read_line(s, buf=buf), "too_large", 0)
            if buf:
                raise Failure(f"data after too_large: {bytes(buf[:80])!r}")
            expect_eof(s)
            t.join(DEADLINE * 3)
            if t.is_alive():
                raise Failure("sender still blocked after the server closed")
    return Case(name, run)


def pipelined_case(name, n, read_delay=0.0, user="root"):
    """n requests in one stream (unknown method, ids 1..n, every 7th malformed), read only
    after read_delay: every one answered, in order, with its id."""
    def run(ctx):
        lines = []
        for i in range(1, n + 1):
            lines.append(raw('{"v":1,"id":%d,"method":"sta' % i) if i % 7 == 0
                         else req("nope", i))
        data = b"".join(lines)
        with connect(ctx, user) as s:
            t = threading.Thread(target=send_all_ignoring_close, args=(s, data), daemon=True)
            t.start()
            time.sleep(read_delay)
            buf = bytearray()
            for i in range(1, n + 1):
                if i % 7 == 0:
                    check_error(read_line(s, buf=buf), "parse", 0)
                else:
                    check_error(read_line(s, buf=buf), "not_found", i)
            t.join(DEADLINE)
            s.sendall(req("hello", 5))
            check_ok(read_line(s, buf=buf), 5)
    return Case(name, run)


def oversized_cases():
    cs = []
    over = MAX_FRAME + 1
    cs.append(too_large_case("oversized/1MiB+1-no-newline", b"x" * over))
    cs.append(too_large_case("oversized/1MiB+1-json-no-newline",
                             b'{"v":1,"id":3,"method":"status","p":"' + b"a" * over))
    cs.append(too_large_case("oversized/1MiB+1-with-newline", b"y" * over + b"\n"))
    cs.append(too_large_case("oversized/2MiB-no-newline", b"z" * (2 * MAX_FRAME)))
    cs.append(too_large_case("oversized/8MiB-stream", b"{" * (8 * MAX_FRAME)))
    cs.append(too_large_case("oversized/after-3-good-lines",
                             req("nope", 1) + req("nope", 2) + req("nope", 3) + b"q" * over, 3))
    cs.append(too_large_case("oversized/1MiB+1-whitespace", b" " * over + b"\n"))
    # Exactly 1 MiB (not counting the newline) is still a line.
    head = b'{"v":1,"id":150,"method":"nope","pad":"'
    exact = head + b"p" * (MAX_FRAME - len(head) - 2) + b'"}'
    assert len(exact) == MAX_FRAME
    cs.append(error_case("oversized/exactly-1MiB-accepted", exact + b"\n", "not_found", 150))
    cs.append(error_case("oversized/exactly-1MiB-garbage", b"g" * MAX_FRAME + b"\n", "parse", 0))

    def split_slowly(ctx):  # 1 MiB + 1 arriving in 64 KiB pieces
        with connect(ctx) as s:
            sent = 0
            try:
                for _ in range(17):
                    sent += s.send(b"w" * 65536)
                    time.sleep(0.01)
            except (BrokenPipeError, ConnectionResetError):
                pass
            if sent <= MAX_FRAME:
                raise Failure(f"only {sent} bytes accepted before the close")
            check_error(read_line(s), "too_large", 0)
            expect_eof(s)
    cs.append(Case("oversized/1MiB+1-in-pieces", split_slowly))
    cs.append(pipelined_case("pipelined/2000-lines", 2000))
    cs.append(pipelined_case("pipelined/40000-lines-over-1MiB-total", 40000))
    cs.append(pipelined_case("pipelined/120000-lines-reader-late", 120000, read_delay=1.0))
    return cs


# ---- 5. unauthorised callers -------------------------------------------------------------

def permission_cases(ctx):
    cs = []
    variants = [("no-params", None), ("empty", {}), ("real-name", {"name": ctx.sn_name}),
                ("name-number", {"name": 1}), ("repin", {"name": ctx.sn_name, "repin": True}),
                ("path", {"path": "/etc/shadow"}), ("path-number", {"path": 1}),
                ("claims-root", {"name": ctx.sn_name, "uid": 0, "admin": True})]
    rid = 200
    for m in ADMIN_METHODS:
        for tag, p in variants:
            cs.append(error_case(f"nobody/{m}/{tag}", req(m, rid, p), "permission", rid,
                                 user="nobody"))
            rid += 1

    def names_method(ctx):
        with connect(ctx, "nobody") as s:
            s.sendall(req("sn.use", 230, {"name": ctx.sn_name}))
            j = check_error(read_line(s), "permission", 230)
            msg = j["error"]["message"]
            if '"sn.use"' not in msg or "uid %d" % ctx.nobody[0] not in msg:
                raise Failure(f"message does not name the method and uid: {msg!r}")
    cs.append(Case("nobody/message-names-method-and-uid", names_method))
    for m, keys in [("hello", ("methods",)), ("status", ("identity",)), ("sn.list", ("sns",)),
                    ("sn.ping", ("results",)), ("peers", ("peers",)), ("flows", ("flows",)),
                    ("service.list", ("invocations",))]:
        cs.append(ok_case(f"nobody/read/{m}", req(m, 231), 231, keys, user="nobody"))
    cs.append(ok_case("nobody/read/sn.ping-name", req("sn.ping", 232, {"name": ctx.sn_name}), 232,
                      ("results",), user="nobody"))
    # Malformed input from an unprivileged caller gets the same answers; parse errors come
    # before the permission check.
    cs.append(error_case("nobody/bad-json", raw('{"v":1,"id":233,"method":'), "parse", 0,
                         user="nobody"))
    cs.append(error_case("nobody/admin-params-array", raw('{"v":1,"id":233,"method":"sn.use",'
                                                          '"params":[]}'), "parse", 233,
                         user="nobody"))
    cs.append(error_case("nobody/unknown-method", req("sn.usee", 234), "not_found", 234,
                         user="nobody"))
    cs.append(error_case("nobody/sn.ping-bad-name", req("sn.ping", 235, {"name": 5}),
                         "invalid_argument", 235, user="nobody"))
    # The admin group (daemon.admin_group = "staff"): the handler runs for its members.
    for user in ("nobody-staff-primary", "nobody-staff-supplementary"):
        cs.append(error_case(f"{user}/sn.use-unknown", req("sn.use", 236, {"name": "dom9.nope"}),
                             "not_found", 236, user=user))
        cs.append(error_case(f"{user}/config.check-missing",
                             req("config.check", 237, {"path": "/nonexistent"}),
                             "not_found", 237, user=user))
        cs.append(error_case(f"{user}/sn.discover", req("sn.discover", 238), "unsupported", 238,
                             user=user))
        cs.append(error_case(f"{user}/service.disable-absent",
                             req("service.disable", 239, GOOD_ENTRY), "not_found", 239,
                             user=user))
    return cs


# ---- 6. slow clients, many connections ---------------------------------------------------

def slowloris_case(name, partial, holders, user="root"):
    """`holders` connections each send a partial line and fall silent; meanwhile 20 other
    clients are answered in time; then each holder completes its line and is answered."""
    def run(ctx):
        held = []
        try:
            for _ in range(holders):
                s = connect(ctx, user)
                s.sendall(partial)
                held.append(s)
            for i in range(20):
                t0 = time.monotonic()
                daemon_up(ctx)
                if time.monotonic() - t0 > DEADLINE:
                    raise Failure(f"status {i} took {time.monotonic() - t0:.2f} s")
            time.sleep(0.5)
            for s in held:
                s.sendall(b'nope"}\n')
                check_error(read_line(s), "not_found", 7)
        finally:
            for s in held:
                s.close()
    return Case(name, run)


def byte_by_byte(ctx):
    with connect(ctx) as s:
        for b in req("status", 300):
            s.send(bytes([b]))
            time.sleep(0.002)
        check_ok(read_line(s), 300, ("identity",))


def partial_then_close(ctx):
    for i in range(50):
        with connect(ctx) as s:
            s.sendall(b'{"v":1,"id":1,"meth'[: 1 + i % 19])
    daemon_up(ctx)


def half_close_without_newline(ctx):
    """A complete request without its newline, then shutdown(SHUT_WR): the line is never
    framed, so no reply; the server closes the connection."""
    with connect(ctx) as s:
        s.sendall(req("status", 301)[:-1])
        s.shutdown(socket.SHUT_WR)
        expect_eof(s)


def half_close_after_requests(ctx):
    """Requests then shutdown(SHUT_WR): every request is still answered."""
    with connect(ctx) as s:
        s.sendall(req("nope", 1) + req("status", 2) + raw("{"))
        s.shutdown(socket.SHUT_WR)
        buf = bytearray()
        check_error(read_line(s, buf=buf), "not_found", 1)
        check_ok(read_line(s, buf=buf), 2)
        check_error(read_line(s, buf=buf), "parse", 0)


def half_close_with_pending_replies(ctx, n=2000):
    """More replies than the socket buffer holds, then shutdown(SHUT_WR) before reading:
    the server must still send every reply (the request stream ended, the reply stream
    did not)."""
    with connect(ctx) as s:
        s.sendall(b"".join(req("sn.list", i + 1) for i in range(n)))
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        buf = bytearray()
        for i in range(n):
            line = read_line(s, buf=buf)
            if line is None:
                raise Failure(f"closed after {i} of {n} replies")
            check_ok(line, i + 1, ("sns",))


def hang_up_without_reading(ctx):
    for i in range(100):
        s = connect(ctx)
        s.sendall(req("status", i + 1) * 50 + b"x" * (i * 100))
        s.close()
    daemon_up(ctx)


def reset_connections(ctx):
    """Connections closed with SO_LINGER 0 mid-request."""
    for i in range(50):
        s = connect(ctx)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(req("sn.list", i + 1) * 20)
        s.close()
    daemon_up(ctx)


def connect_churn(ctx):
    for _ in range(300):
        with unix_connect(ctx.path):
            pass
    daemon_up(ctx)


def readable(s, timeout=0.0):
    r, _, _ = select.select([s], [], [], timeout)
    return bool(r)


def too_many_connections(ctx, n=MAX_CONNECTIONS + 16, user="root", want=MAX_CONNECTIONS):
    """n connections at once: about `want` are served, every other one gets one `busy`
    error line (id 0) and is closed; after they are gone the daemon serves again."""
    conns = []
    try:
        for _ in range(n):
            conns.append(connect(ctx, user))
        time.sleep(0.3)  # let the server accept (and refuse) them all
        served = refused = 0
        for i, s in enumerate(conns):
            if readable(s):  # refused: the busy line is already there
                buf = bytearray()
                check_error(read_line(s, buf=buf), "busy", 0)
                if read_line(s, buf=buf) is not None:
                    raise Failure("data after the busy line")
                refused += 1
                continue
            s.sendall(req("status", 400 + i))
            check_ok(read_line(s), 400 + i)
            served += 1
        if served > want or served < want - 4:
            raise Failure(f"{served} of {n} connections served, want about {want}")
        if served + refused != n:
            raise Failure(f"{served} served + {refused} refused != {n}")
    finally:
        for s in conns:
            s.close()
    wait_daemon_up(ctx)


def wait_daemon_up(ctx):
    end = time.monotonic() + DEADLINE
    while True:  # the server notices the closes on its next loop turn
        try:
            daemon_up(ctx)
            return
        except Failure:
            if time.monotonic() > end:
                raise
            time.sleep(0.05)


def hold(ctx, user, n):
    """n connections as `user`, each checked to be served."""
    held = []
    try:
        for i in range(n):
            s = connect(ctx, user)
            held.append(s)
            s.sendall(req("hello", 500 + i))
            check_ok(read_line(s), 500 + i)
    except BaseException:
        for s in held:
            s.close()
        raise
    return held


def expect_busy(ctx, user, mentions):
    with connect(ctx, user) as s:
        j = check_error(read_line(s), "busy", 0)
        if mentions not in j["error"]["message"]:
            raise Failure(f"busy message lacks {mentions!r}: {j['error']['message']!r}")
        if read_line(s) is not None:
            raise Failure("not closed after the busy line")


def per_uid_cap(ctx):
    """16 connections of uid nobody are served, the 17th gets `busy`; root and other users
    are still served meanwhile."""
    time.sleep(0.2)  # earlier cases' connections reach the server's loop
    held = hold(ctx, "nobody", MAX_PER_UID)
    try:
        expect_busy(ctx, "nobody", f"uid {ctx.nobody[0]} ({MAX_PER_UID})")
        # the same uid in the admin group: still uid nobody, still over its cap
        expect_busy(ctx, "nobody-staff-supplementary", f"({MAX_PER_UID})")
        daemon_up(ctx)
        with connect(ctx, "uid:60001") as s:
            s.sendall(req("status", 5))
            check_ok(read_line(s), 5)
    finally:
        for s in held:
            s.close()
    wait_daemon_up(ctx)


def non_admin_reserve(ctx):
    """Three uids hold 16 connections each (48, every non-admin slot): a fourth uid gets
    `busy`; root and a member of the admin group are still served."""
    held = []
    time.sleep(0.2)
    try:
        for k in range(MAX_NON_ADMIN // MAX_PER_UID):
            held += hold(ctx, f"uid:{60010 + k}", MAX_PER_UID)
        expect_busy(ctx, "uid:60020", f"not admin ({MAX_NON_ADMIN})")
        expect_busy(ctx, "nobody", f"not admin ({MAX_NON_ADMIN})")
        daemon_up(ctx)
        with connect(ctx, "nobody-staff-primary") as s:  # admin: a reserved slot
            s.sendall(req("sn.use", 6, {"name": "dom9.nope"}))
            check_error(read_line(s), "not_found", 6)
    finally:
        for s in held:
            s.close()
    wait_daemon_up(ctx)


def parallel_abuse(ctx, clients=32, each=50):
    """clients threads at once, each with its own connection sending `each` malformed lines
    (one at a time, waiting for each answer)."""
    errors = []

    def worker(k):
        try:
            with connect(ctx) as s:
                buf = bytearray()
                for i in range(each):
                    rid = k * 1000 + i + 1
                    if i % 3 == 0:
                        s.sendall(raw('{"v":1,"id":%d,"method":"status","params":[]}' % rid))
                        check_error(read_line(s, buf=buf), "parse", rid)
                    elif i % 3 == 1:
                        s.sendall(raw("\xff{" * 10))
                        check_error(read_line(s, buf=buf), "parse", 0)
                    else:
                        s.sendall(req("sn.use", rid, {"name": k}))
                        check_error(read_line(s, buf=buf), "invalid_argument", rid)
        except (Failure, OSError) as e:
            errors.append(f"client {k}: {e}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    if any(t.is_alive() for t in threads):
        raise Failure("a client thread did not finish in 30 s")
    if errors:
        raise Failure("; ".join(errors[:3]))


def connection_cases():
    partial = b'{"v":1,"id":7,"method":"'
    return [
        slowloris_case("slowloris/one-partial-line", partial, 1),
        slowloris_case("slowloris/32-partial-lines", partial, 32),
        slowloris_case("slowloris/nobody-16-partial-lines", partial, 16, user="nobody"),
        Case("slowloris/byte-by-byte", byte_by_byte),
        Case("conn/partial-then-close-x50", partial_then_close),
        Case("conn/half-close-without-newline", half_close_without_newline),
        Case("conn/half-close-after-requests", half_close_after_requests),
        Case("conn/half-close-with-pending-replies", half_close_with_pending_replies),
        Case("conn/hang-up-without-reading-x100", hang_up_without_reading),
        Case("conn/reset-mid-request-x50", reset_connections),
        Case("conn/connect-churn-x300", connect_churn),
        Case("conn/80-at-once", too_many_connections),
        Case("conn/80-at-once-as-nobody",
             lambda c: too_many_connections(c, user="nobody", want=MAX_PER_UID)),
        Case("conn/per-uid-cap", per_uid_cap),
        Case("conn/non-admin-reserve", non_admin_reserve),
        Case("conn/32-clients-in-parallel", parallel_abuse),
        pipelined_case("pipelined/nobody-120000-lines-reader-late", 120000, read_delay=1.0,
                       user="nobody"),
        Case("slow/line-and-backlog-timeouts", line_and_backlog_timeouts),
    ]


def line_and_backlog_timeouts(ctx):
    """At once: a partial line (gets one `timeout` error after LINE_TIMEOUT, then the
    close), a client of nobody that sends requests and never reads (closed once its replies
    stayed over the backlog limit for BACKLOG_TIMEOUT, before all were sent), and a
    connection that keeps working throughout."""
    partial = connect(ctx, "nobody")
    flood = connect(ctx, "nobody")
    live = connect(ctx)
    n = 5000

    def send_flood(data):
        try:
            flood.settimeout(BACKLOG_TIMEOUT + 5)
            flood.sendall(data)
        except OSError:
            pass  # closed by the server, as expected

    try:
        t0 = time.monotonic()
        partial.sendall(b'{"v":1,"id":7,"method":"')
        t = threading.Thread(target=send_flood,
                             args=(b"".join(req("status", i + 1) for i in range(n)),),
                             daemon=True)
        t.start()
        buf = bytearray()
        rid = 1
        while time.monotonic() - t0 < min(LINE_TIMEOUT, BACKLOG_TIMEOUT) - 1:
            live.sendall(req("hello", rid))
            check_ok(read_line(live, buf=buf), rid)
            rid += 1
            time.sleep(0.5)
        check_error(read_line(partial, deadline=LINE_TIMEOUT + 2), "timeout", 0)
        if time.monotonic() - t0 < LINE_TIMEOUT - 0.5:
            raise Failure(f"partial line timed out after {time.monotonic() - t0:.1f} s")
        expect_eof(partial)
        # Reading the flood's replies earlier would drain its backlog: wait for the close.
        time.sleep(max(0.0, t0 + BACKLOG_TIMEOUT + 1 - time.monotonic()))
        flood.settimeout(DEADLINE)
        got = bytearray()
        while True:
            try:
                chunk = flood.recv(1 << 20)
            except ConnectionResetError:
                break
            except socket.timeout:
                replies = got.count(b"\n")
                raise Failure(f"flood not closed ({replies} replies read)") from None
            if not chunk:
                break
            got += chunk
        if got.count(b"\n") >= n:
            raise Failure("every flood request was answered: its backlog never timed out")
        if len(got) > 2 << 20:
            raise Failure(f"{len(got)} bytes of replies queued for nobody (limit 256 KiB)")
        t.join(DEADLINE)
        live.sendall(req("hello", rid))
        check_ok(read_line(live, buf=buf), rid)
    finally:
        for s in (partial, flood, live):
            s.close()


def fd_case(name, fds_count, data, user="root", then_hello=True, codes=None, rid=1):
    """`data` sent in one sendmsg with fds_count descriptors (of a fresh socket pair) ->
    a success reply with id rid, or an error in `codes` (id rid); the descriptors the daemon
    received must be closed (ied_control.sh compares ied's descriptors at the end)."""
    def run(ctx):
        a, b = socket.socketpair()
        try:
            with connect(ctx, user) as s:
                socket.send_fds(s, [data], [a.fileno()] * fds_count)
                buf = bytearray()
                line = read_line(s, buf=buf)
                if codes is None:
                    check_ok(line, rid)
                else:
                    check_error(line, codes, rid)
                if then_hello:
                    s.sendall(req("hello", 9))
                    check_ok(read_line(s, buf=buf), 9)
                else:
                    expect_eof(s)
        finally:
            a.close()
            b.close()
    return Case(name, run)


def fds_then_hang_up(ctx):
    """Partial lines with descriptors, then the client goes away (x50)."""
    a, b = socket.socketpair()
    try:
        for i in range(50):
            s = connect(ctx)
            socket.send_fds(s, [b'{"v":1,"id":1,"meth'[: 1 + i % 19]], [a.fileno()] * (1 + i % 4))
            s.close()
    finally:
        a.close()
        b.close()
    daemon_up(ctx)


def fd_cases():
    return [
        fd_case("fds/status-with-one", 1, req("status", 1)),
        fd_case("fds/status-with-four", MAX_FDS, req("status", 1)),
        fd_case("fds/nobody-status-with-one", 1, req("status", 1), user="nobody"),
        fd_case("fds/unknown-method", 1, req("nope", 2), codes="not_found", rid=2),
        fd_case("fds/admin-method-as-nobody", 1, req("sn.use", 3, {"name": "x"}), user="nobody",
                codes="permission", rid=3),
        fd_case("fds/bad-json", 2, raw("{"), codes="parse", rid=0),
        fd_case("fds/five", MAX_FDS + 1, req("status", 4), then_hello=False,
                codes="invalid_argument", rid=0),
        fd_case("fds/sixty-four", 64, req("status", 4), then_hello=False,
                codes="invalid_argument", rid=0),
        Case("fds/partial-line-then-hang-up-x50", fds_then_hang_up),
    ]


# ---- main --------------------------------------------------------------------------------

def all_cases(ctx):
    return (invalid_json_cases() + envelope_cases() + param_cases(ctx) + oversized_cases() +
            permission_cases(ctx) + connection_cases() + fd_cases())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--work", required=True, help="a directory for scratch files")
    ap.add_argument("--sn", required=True, help="the name of ied's configured (silent) SN")
    ap.add_argument("--config", required=True, help="the ied.toml ied runs with")
    ap.add_argument("--only", default="", help="run only cases whose name contains this")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    ap.add_argument("--skip-slow", action="store_true",
                    help="skip the cases that wait for the server's timeouts (slow/...)")
    a = ap.parse_args()
    ctx = Ctx(a.socket, a.work, a.sn, a.config)
    cases = [c for c in all_cases(ctx) if a.only in c.name and
             not (a.skip_slow and c.name.startswith("slow/"))]
    names = [c.name for c in cases]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise SystemExit(f"duplicate case names: {sorted(dup)}")
    if a.list:
        print("\n".join(names))
        return 0
    ctx.prepare()
    failed = []
    xfail = 0
    t_start = time.monotonic()
    for c in cases:
        t0 = time.monotonic()
        try:
            c.run(ctx)
            err = None
        except (Failure, OSError) as e:
            err = f"{type(e).__name__}: {e}" if not isinstance(e, Failure) else str(e)
        try:
            daemon_up(ctx)
        except (Failure, OSError) as e:
            err = (err + "; " if err else "") + f"daemon not answering status afterwards: {e}"
        took = time.monotonic() - t0
        if c.name in EXPECTED_FAILURES:
            if err:
                xfail += 1
                print(f"XFAIL {c.name}: {err}", flush=True)
            else:
                print(f"XPASS {c.name} (fixed? take it out of EXPECTED_FAILURES)", flush=True)
        elif err:
            failed.append(c.name)
            print(f"FAIL {c.name} ({took:.2f} s): {err}", flush=True)
            if "daemon not answering" in err:
                print("the daemon stopped answering: giving up", flush=True)
                break
    ok = len(cases) - len(failed) - xfail
    print(f"{len(cases)} cases, {ok} ok, {len(failed)} failed, {xfail} expected failures "
          f"({time.monotonic() - t_start:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
