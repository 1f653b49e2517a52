#!/usr/bin/env python3
"""A UDP relay that adds a fixed one-way delay in each direction (tests/netns/ied_rtt.sh).

    udp_delay.py --listen IP:PORT --to IP:PORT --delay-ms N [--ready-file F] [--drop-type T]

It stands in for netem (not available everywhere the tests run) to make an SN look far away:
every datagram a client sends to --listen is sent on to --to N ms later, and every reply is
sent back to that client N ms after it arrived, so a round trip through the relay takes
about 2N ms more. Each client address gets an upstream socket of its own (connected to --to),
so the upstream's replies go back to the right client. Datagrams leave in the order they
arrived (one FIFO: the delay is the same for all). Memory is bounded: at most MAX_QUEUED
datagrams wait (more are dropped and counted), at most MAX_CLIENTS clients are kept (the one
idle longest makes room) and a client idle for IDLE_S seconds is forgotten. One thread, one
selector; it sleeps until the next datagram is due or a socket is readable. SIGTERM/SIGINT:
closes its sockets, prints its counters on stderr and exits 0. --ready-file is written once
the listening socket is bound. --drop-type T drops every client datagram that is an InterEdge
control-plane message of type T (byte 1 = 0, byte 0 = T; e.g. 6, an echo, to stand in for an
SN older than echoes), counted as dropped_type.
"""

import argparse
import collections
import errno
import selectors
import signal
import socket
import sys
import time

MAX_QUEUED = 10000
MAX_CLIENTS = 256
IDLE_S = 120.0
MAX_DATAGRAM = 65535


def endpoint(text):
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise argparse.ArgumentTypeError(f"{text!r} is not IP:PORT")
    host = host.strip("[]")
    try:
        return host, int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: bad port") from None


def bigger_buffers(sock):
    """Room for bursts (as root beyond net.core.rmem_max/wmem_max); best effort."""
    linux = sys.platform.startswith("linux")  # Python's socket module names neither FORCE
    rcv_force = getattr(socket, "SO_RCVBUFFORCE", 33 if linux else None)
    snd_force = getattr(socket, "SO_SNDBUFFORCE", 32 if linux else None)
    for force, plain in ((rcv_force, socket.SO_RCVBUF), (snd_force, socket.SO_SNDBUF)):
        for opt in (force, plain):
            if opt is None:
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
                break
            except OSError:
                continue


class Stop(Exception):
    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", type=endpoint, required=True)
    ap.add_argument("--to", type=endpoint, required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--ready-file")
    ap.add_argument("--drop-type", type=int, choices=range(1, 256), metavar="T")
    args = ap.parse_args()
    if args.delay_ms < 0:
        ap.error("--delay-ms must be >= 0")
    delay = args.delay_ms / 1000.0

    def on_signal(signum, frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    family = socket.AF_INET6 if ":" in args.listen[0] else socket.AF_INET
    up_family = socket.AF_INET6 if ":" in args.to[0] else socket.AF_INET
    listen = socket.socket(family, socket.SOCK_DGRAM)
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bigger_buffers(listen)
    listen.bind(args.listen)
    listen.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listen, selectors.EVENT_READ, None)

    clients = collections.OrderedDict()  # client address -> [upstream socket, last active]
    queue = collections.deque()  # (due, socket, payload, destination or None)
    stats = collections.Counter()

    def upstream_for(addr, now):
        c = clients.get(addr)
        if c is not None:
            c[1] = now
            clients.move_to_end(addr)
            return c[0]
        if len(clients) >= MAX_CLIENTS:
            forget(next(iter(clients)))
        s = socket.socket(up_family, socket.SOCK_DGRAM)
        s.setblocking(False)
        bigger_buffers(s)
        s.connect(args.to)
        sel.register(s, selectors.EVENT_READ, addr)
        clients[addr] = [s, now]
        stats["clients"] += 1
        return s

    def forget(addr):
        s = clients.pop(addr)[0]
        sel.unregister(s)
        s.close()

    def enqueue(due, sock, data, dest):
        if len(queue) >= MAX_QUEUED:
            stats["dropped_full"] += 1
            return
        queue.append((due, sock, data, dest))

    def read(sock, client):
        now = time.monotonic()
        for _ in range(256):  # bounded burst, then the timers get their turn
            try:
                if client is None:
                    data, addr = sock.recvfrom(MAX_DATAGRAM)
                else:
                    data = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ECONNREFUSED: the upstream is not listening (ICMP)
                stats["upstream_errors" if client is not None else "listen_errors"] += 1
                if e.errno != errno.ECONNREFUSED:
                    return
                continue
            if client is None:
                stats["from_clients"] += 1
                if args.drop_type is not None and len(data) >= 4 and data[1] == 0 and \
                        data[0] == args.drop_type:
                    stats["dropped_type"] += 1
                    continue
                enqueue(now + delay, upstream_for(addr, now), data, None)
            else:
                stats["from_upstream"] += 1
                if client in clients:
                    clients[client][1] = now
                enqueue(now + delay, listen, data, client)

    def send_due(now):
        while queue and queue[0][0] <= now:
            _, sock, data, dest = queue.popleft()
            try:
                if dest is None:
                    sock.send(data)
                else:
                    sock.sendto(data, dest)
                stats["sent"] += 1
            except OSError:  # closed upstream socket, refused, buffer full: the datagram is lost
                stats["send_errors"] += 1

    def expire(now):
        while clients:
            addr, (s, last) = next(iter(clients.items()))
            if now - last < IDLE_S:
                break
            forget(addr)

    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write(f"{args.listen[0]}:{listen.getsockname()[1]}\n")
    print(f"udp_delay: {args.listen[0]}:{args.listen[1]} -> {args.to[0]}:{args.to[1]}, "
          f"{args.delay_ms:g} ms each way", file=sys.stderr, flush=True)
    try:
        while True:
            now = time.monotonic()
            send_due(now)
            expire(now)
            timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else IDLE_S
            for key, _ in sel.select(timeout):
                read(key.fileobj, key.data)
    except Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for addr in list(clients):
            forget(addr)
        sel.close()
        listen.close()
        stats["still_queued"] = len(queue)
        print("udp_delay: " + " ".join(f"{k}={v}" for k, v in sorted(stats.items())),
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
