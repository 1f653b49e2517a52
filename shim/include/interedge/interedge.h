/* <interedge/interedge.h>: the InterEdge socket API (libinteredge, docs/socket-api.md).
 *
 * Lets a program pick an InterEdge service for one socket before it connects or sends:
 *
 *   struct ie_options o;
 *   ie_options_init(&o);
 *   ie_options_add(&o, "direct", "never");
 *   if (ie_set_service(fd, "ip", &o) != 0) perror("ie_set_service"); // errno says why
 *
 * or, through the socket-option form, the same with setsockopt(fd, SOL_INTEREDGE,
 * IE_SERVICE, &info, sizeof info), which a program linked against plain libc gets from
 * libinteredge-preload.so (and ENOPROTOOPT from the kernel without it, so it can fall back).
 * ie_resolve resolves a name and says, per address, whether ied knows it as an InterEdge host
 * and behind which first-hop SN(s).
 *
 * Each call asks the host daemon ied (control socket $IE_SOCKET, else
 * /run/interedge/ied.sock) over a short-lived connection that passes the socket itself
 * (ie_resolve passes none); ied marks it so its traffic reaches InterEdge. Addresses are
 * never rewritten. Calls are blocking (at most about 2 s), thread-safe and fork-safe; they
 * never change the socket's flags. Every function returns -1 and sets errno on failure
 * (table in docs/socket-api.md).
 *
 * ABI rules: plain C, no ownership passes across calls (the library keeps no pointer you
 * give it), and every struct starts with `uint32_t size`, which the caller sets to
 * sizeof(the struct) as compiled. A size smaller than this version's is EINVAL; a larger
 * size (a program built against a newer header) is accepted as long as the bytes this
 * version does not know are all zero.
 */
#ifndef INTEREDGE_INTEREDGE_H
#define INTEREDGE_INTEREDGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IE_API_VERSION 1

/* Exported from libinteredge.so (built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define IE_API __attribute__((visibility("default")))
#else
#define IE_API
#endif

/* The socket-option level and name. 0x1e1e is far from every Linux SOL_* level (those are
 * below 300), so the kernel answers ENOPROTOOPT when no shim handles it. */
#define SOL_INTEREDGE 0x1e1e
#define IE_SERVICE 1

/* Array sizes, terminating NUL included: service names are 1..63 characters of
 * [a-z0-9_.+-], option keys 1..31 of [a-z0-9_.-], values 0..127 printable ASCII bytes. */
#define IE_SERVICE_NAME_MAX 64
#define IE_OPTION_KEY_MAX 32
#define IE_OPTION_VALUE_MAX 128
#define IE_OPTIONS_MAX 16

struct ie_option {
  char key[IE_OPTION_KEY_MAX];
  char value[IE_OPTION_VALUE_MAX];
};

/* Options of a service (e.g. direct=never). Zero it or call ie_options_init first. */
struct ie_options {
  uint32_t size;  /* sizeof(struct ie_options) */
  uint32_t count; /* entries used in option[], at most IE_OPTIONS_MAX */
  struct ie_option option[IE_OPTIONS_MAX];
};

/* The value of SOL_INTEREDGE/IE_SERVICE, and what ie_get_service fills. For setsockopt,
 * `service` "" clears the socket's service (as ie_clear_service does); `mark` and `cookie`
 * are ignored on input; `flags` must be 0. */
struct ie_service_info {
  uint32_t size;                     /* sizeof(struct ie_service_info) */
  uint32_t option_count;             /* entries used in option[] */
  char service[IE_SERVICE_NAME_MAX]; /* "" when the socket is not steered (get) */
  struct ie_option option[IE_OPTIONS_MAX];
  uint32_t mark;   /* out: the SO_MARK ied set on the socket, 0 when not steered */
  uint32_t flags;  /* reserved, 0 */
  uint64_t cookie; /* out: the socket's SO_COOKIE as ied saw it */
};

/* What ie_resolve fills for one address of a name. IE_MAX_SNS first-hop SN names at most,
 * each "DOM.SN" (at most 63 characters). */
#define IE_MAX_SNS 4
#define IE_SN_NAME_MAX 64
#define IE_PEER_SOURCE_MAX 16

struct ie_peer {
  uint32_t size; /* in: out[0].size = sizeof(struct ie_peer); out: the size filled */
  /* The address (and port) as getaddrinfo returned it. */
  struct sockaddr_storage addr;
  socklen_t addrlen;
  /* 1: ied knows the host's key, so it is an InterEdge host; else 0. */
  int interedge;
  /* Its first-hop SN(s), most recent first: sns[0..sn_count-1]. */
  unsigned sn_count;
  char sns[IE_MAX_SNS][IE_SN_NAME_MAX];
  /* Where ied's answer came from: "static" ([[peer]] prefix), "dns" (a peer record),
   * "learned" (only the SN the host named in its packets), "none" (ied knows nothing of it),
   * "pending" (ied's DNS lookup did not finish within the call's 2 s). */
  char source[IE_PEER_SOURCE_MAX];
};

/* IE_API_VERSION of the library actually loaded. */
IE_API int ie_api_version(void);

/* Options: ie_options_init zeroes o and sets its size. ie_options_add appends key=value
 * (EINVAL: bad key or value, or the key is already there; E2BIG: already IE_OPTIONS_MAX).
 * ie_options_parse appends every "k=v" of a comma-separated list such as
 * "direct=never" (all or nothing: on error o is unchanged). */
IE_API void ie_options_init(struct ie_options* o);
IE_API int ie_options_add(struct ie_options* o, const char* key, const char* value);
IE_API int ie_options_parse(struct ie_options* o, const char* text);

/* Steer fd (an AF_INET/AF_INET6 TCP or UDP socket) to `service` (a service or bundle name,
 * e.g. "ip" or "ip-via-sn"), with opts (may be NULL). Call it before connect()/sendto():
 * an established flow keeps the path it started on. Setting a service again replaces it. */
IE_API int ie_set_service(int fd, const char* service, const struct ie_options* opts);

/* Fills *out (out->size set by the caller) with fd's service; out->service is "" when the
 * socket is not steered. On return out->size is this version's size and any bytes of a
 * larger caller struct past it are zero. */
IE_API int ie_get_service(int fd, struct ie_service_info* out);

/* Removes fd's service (its traffic takes the ordinary routes again). Not steered is not
 * an error. */
IE_API int ie_clear_service(int fd);

/* The SOL_INTEREDGE level as socket options: what libinteredge-preload.so's setsockopt and
 * getsockopt do for that level. level must be SOL_INTEREDGE and optname IE_SERVICE
 * (else ENOPROTOOPT). ie_getsockopt needs *optlen >= sizeof(struct ie_service_info)
 * (else EINVAL) and sets *optlen to that size; the input bytes of optval are ignored. */
IE_API int ie_setsockopt(int fd, int level, int optname, const void* optval, socklen_t optlen);
IE_API int ie_getsockopt(int fd, int level, int optname, void* optval, socklen_t* optlen);

/* Name resolution with InterEdge's view of each address: getaddrinfo(host, port) (a numeric
 * address, or a name through the system resolver: /etc/hosts, DNS, ...) with `family`
 * AF_UNSPEC, AF_INET or AF_INET6, then ied's answer for each distinct address (is it an
 * InterEdge host, behind which SN), in getaddrinfo's order, at most `max` of them, into
 * out[0..*count-1]. `port` may be NULL (the addresses then carry port 0). When ied must look
 * a peer record up in DNS first, the call waits for it (at most about 2 s in all, on top of
 * getaddrinfo's own time; an address still unanswered then has source "pending"). An
 * address ied knows nothing about is returned with interedge 0, sn_count 0 and source
 * "none".
 *
 * Set out[0].size = sizeof(struct ie_peer); it is also the array's stride (a program built
 * against a newer, larger struct passes its own size, and the bytes past this version's
 * struct come back zero). Only out[0].size is read. On failure *count is 0 and out is
 * unchanged. Errors: EINVAL (NULL or empty host, NULL out or count, max 0, another family,
 * a bad out[0].size, a port getaddrinfo rejects), ENOENT (the name does not resolve),
 * EAGAIN (the resolver failed temporarily: try again), ENOMEM, ECONNREFUSED (ied is not
 * running), and the transport errors of the other calls (EACCES, ETIMEDOUT, EPROTO, ...). */
IE_API int ie_resolve(const char* host, const char* port, int family, struct ie_peer* out,
                      size_t max, size_t* count);

#ifdef __cplusplus
}
#endif

#endif /* INTEREDGE_INTEREDGE_H */
