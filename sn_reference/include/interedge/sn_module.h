/* The InterEdge service-module ABI, version 1 (C, stable across compilers and SN builds).
 *
 * A service module is a shared object (or a built-in compiled into iesn) that implements one
 * ILP service id. The SN loads it, checks its descriptor (ABI version and struct size) before
 * running any of its code, and then, per worker thread, creates one module instance. The
 * pipe-terminus hands an instance batches of packets that missed the decision cache; the
 * instance answers with one decision per packet and may install cache entries so the next
 * packets of the flow never reach it. Everything a module may ask of the SN goes through the
 * host table (ie_sn_host) it receives at creation: decision-cache calls, routing, sending,
 * timers, configuration, checkpoint/restore, logging and counters.
 *
 * Threading: an instance is only ever called on its own worker's thread, and must only call
 * the host table from that thread (inside a callback). Instances of one module on different
 * workers share nothing unless the module arranges it itself. Control messages (out-of-band
 * requests from hosts) go to the instance on the control worker (worker 0).
 *
 * Compatibility: a module exports one function, ie_sn_module_v1(), returning a pointer to a
 * static descriptor. The SN refuses the module if abi_version differs from
 * IE_SN_MODULE_ABI_VERSION or struct_size is smaller than the descriptor it knows (a larger
 * one, from a newer minor version, is accepted). Structs passed one at a time start with
 * struct_size: later minor versions only append fields, a reader reads a field only if
 * struct_size covers it, and the host table is tested with IE_SN_HOST_HAS before calling a
 * member a newer header added. Structs passed as ARRAYS (ie_sn_packet, ie_sn_decision) and
 * the fixed-size key/address structs are frozen for ABI version 1: an array's stride is part
 * of the ABI, so changing them needs a new abi_version.
 *
 * Costs: cache, routing, send, timer, now_ns and counter_add calls are cheap and meant for
 * the packet path. config_*, state_* and counter_declare take a lock (state_* also write to
 * disk): call them at creation, from on_config/on_control/timers, not per packet.
 *
 * Errors: every host call checks its arguments (NULL pointers, sizes, struct_size, names)
 * and returns IE_SN_EINVAL (0 for the calls that return an id) instead of crashing. Nothing
 * may unwind (C++ exception, longjmp) across this interface in either direction.
 */
#ifndef INTEREDGE_SN_MODULE_H
#define INTEREDGE_SN_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IE_SN_MODULE_ABI_VERSION 1u
#define IE_SN_MAX_NEXT_HOPS 8u

/* Return codes of host calls: 0 ok, negative errno-style values otherwise. */
#define IE_SN_OK 0
#define IE_SN_ENOENT (-2)  /* no such entry / key / route */
#define IE_SN_EINVAL (-22) /* bad argument */
#define IE_SN_ENOSPC (-28) /* buffer too small (the needed size is reported) */
#define IE_SN_EIO (-5)     /* storage or send failure */

/* Limits (the SN refuses or truncates beyond them). */
#define IE_SN_MAX_NAME_LEN 32u         /* module names: [a-z0-9_]{1,32} */
#define IE_SN_MAX_COUNTERS 64u         /* counters per module, incl. the SN's own two */
#define IE_SN_MAX_COUNTER_NAME_LEN 48u /* counter names: [a-z0-9_]{1,48} */
#define IE_SN_MAX_CONFIG_KEY_LEN 64u   /* config keys: [A-Za-z0-9_.-]{1,64} */
#define IE_SN_MAX_CONFIG_VALUE_LEN 4096u
#define IE_SN_MAX_STATE_NAME_LEN 128u  /* state names: 1-128 bytes */
#define IE_SN_MAX_STATE_LEN (1u << 20) /* one state blob */
#define IE_SN_MAX_LOG_LEN 1024u        /* longer log messages are cut */

/* Opaque: one per module instance (one module on one worker), owned by the SN, valid from
 * create() until destroy() returns. It tells the SN which module and worker is calling. */
typedef struct ie_sn_env ie_sn_env;

/* A pipe: an associated peer (host or SN) the SN can send ILP to. 0 is never a valid pipe. */
typedef uint32_t ie_sn_pipe;

/* Addresses are 16 bytes: IPv6, or IPv4-mapped (::ffff:a.b.c.d). */
typedef struct ie_sn_addr {
  uint8_t bytes[16];
} ie_sn_addr;

/* The decision-cache key: (source L3 address, service id, connection id). A module may only
 * touch entries of its own service id; reserved fields must be 0 (IE_SN_EINVAL otherwise). */
typedef struct ie_sn_flow_key {
  ie_sn_addr src;
  uint16_t service_id;
  uint16_t reserved;  /* 0 */
  uint32_t reserved2; /* 0 */
  uint64_t connection_id;
} ie_sn_flow_key;

typedef enum ie_sn_action {
  IE_SN_DROP = 0,     /* drop (counted as dropped_by_service) */
  IE_SN_FORWARD = 1,  /* re-seal and send to each of hops[0..hop_count) */
  IE_SN_CONSUMED = 2, /* the module took care of it (sent something itself, or nothing) */
  IE_SN_DEFAULT = 3   /* the pipe-terminus forwards it by the inner packet's destination
                         address, as the null service does (never cached) */
} ie_sn_action;

/* A decision. FORWARD needs 1 <= hop_count <= IE_SN_MAX_NEXT_HOPS and no hop 0; hop_count
 * is ignored for the other actions. A decision that breaks these rules (or an action out of
 * range, or an entry of out[] the module did not write) is taken as DROP and counted as
 * <module>.invalid_decisions. Only DROP and FORWARD can be cached. */
typedef struct ie_sn_decision {
  uint32_t action; /* ie_sn_action */
  uint32_t hop_count;
  ie_sn_pipe hops[IE_SN_MAX_NEXT_HOPS];
} ie_sn_decision;

/* One packet handed to a module: where it came from, its opened ILP header and its inner
 * packet. Pointers are valid only during the callback. */
typedef struct ie_sn_packet {
  uint32_t struct_size;
  ie_sn_pipe from_pipe; /* the pipe it arrived on */
  ie_sn_addr src;       /* outer (UDP) source address of the previous hop */
  uint16_t src_port;    /* host byte order */
  uint16_t service_id;
  uint64_t connection_id;
  uint8_t ilp_flags; /* IE ILP flag bits (bit 0: end-to-end protected payload) */
  uint8_t pad[3];
  const uint8_t* tlvs; /* validated TLV area of the ILP header */
  uint32_t tlvs_len;
  const uint8_t* inner; /* the inner packet */
  uint32_t inner_len;
} ie_sn_packet;

/* A new ILP packet a module sends on a pipe (ie_sn_host.send). The module sets struct_size
 * to sizeof(ie_sn_out_packet). At most 1008 bytes of TLVs (the ILP header's limit) and
 * 65535 bytes of inner packet. */
typedef struct ie_sn_out_packet {
  uint32_t struct_size;
  uint16_t service_id;
  uint8_t ilp_flags;
  uint8_t pad;
  uint64_t connection_id;
  const uint8_t* tlvs; /* encoded TLVs (type, len, value...), not padded; may be NULL */
  uint32_t tlvs_len;
  const uint8_t* inner;
  uint32_t inner_len;
} ie_sn_out_packet;

typedef enum ie_sn_pipe_kind {
  IE_SN_PIPE_HOST = 1, /* a host associated with this SN */
  IE_SN_PIPE_SN = 2    /* another SN (same edomain, or a remote edomain's gateway) */
} ie_sn_pipe_kind;

/* Filled in by pipe_info: the module sets struct_size to sizeof(ie_sn_pipe_info) first; on
 * return struct_size says how many bytes the SN filled (the rest is left alone). A module
 * built against an older header (struct_size up to sn_name, no flags) is served that much;
 * an older SN leaves flags alone, so a module zeroes the struct before asking. */
typedef struct ie_sn_pipe_info {
  uint32_t struct_size;
  uint32_t kind;    /* ie_sn_pipe_kind */
  char sn_name[72]; /* DOM.SN for an SN pipe, "" for a host */
  uint32_t flags;   /* IE_SN_PIPE_F_* */
} ie_sn_pipe_info;

/* ie_sn_pipe_info.flags: a host pipe whose host registered here as its warm standby: it
 * wants to be reached through the SN named in the packet's dest_sn when that is another
 * SN. */
#define IE_SN_PIPE_F_STANDBY 1u

typedef enum ie_sn_log_level {
  IE_SN_LOG_DEBUG = 0,
  IE_SN_LOG_INFO = 1,
  IE_SN_LOG_WARN = 2,
  IE_SN_LOG_ERROR = 3
} ie_sn_log_level;

typedef void (*ie_sn_timer_fn)(void* instance, ie_sn_env* env, uint64_t timer_id, void* arg);

/* What the SN offers a module. Every call takes the env the module was created with. The
 * table is static and outlives every instance. */
typedef struct ie_sn_host {
  uint32_t struct_size;
  uint32_t abi_version;

  /* Decision cache (the calling worker's shard). insert replaces an existing entry; any
   * entry may be evicted at any time, so a module must be able to decide again. */
  int (*cache_insert)(ie_sn_env* env, const ie_sn_flow_key* key, const ie_sn_decision* d);
  int (*cache_remove)(ie_sn_env* env, const ie_sn_flow_key* key);
  int (*cache_hit_count)(ie_sn_env* env, const ie_sn_flow_key* key, uint64_t* hits);
  /* 1 if the entry was used at or after since_ns (ie_sn_host.now_ns clock), 0 if not or
   * absent. */
  int (*cache_recently_used)(ie_sn_env* env, const ie_sn_flow_key* key, uint64_t since_ns);

  /* Routing: the pipe that leads towards an inner destination address (a host associated
   * here, the SN that serves it, or the edomain gateway). IE_SN_ENOENT if none. */
  int (*route_lookup)(ie_sn_env* env, const ie_sn_addr* dst, ie_sn_pipe* pipe);
  /* The pipe towards the SN named DOM.SN: a direct pipe, else this edomain's gateway (or,
   * on the gateway, the remote edomain's gateway). IE_SN_ENOENT if name is this SN or
   * unknown. */
  int (*sn_lookup)(ie_sn_env* env, const char* sn_name, ie_sn_pipe* pipe);
  /* What a pipe is. IE_SN_ENOENT if it is gone. */
  int (*pipe_info)(ie_sn_env* env, ie_sn_pipe pipe, ie_sn_pipe_info* info);
  /* Sends a new packet on a pipe. IE_SN_ENOENT if the pipe is gone. */
  int (*send)(ie_sn_env* env, ie_sn_pipe pipe, const ie_sn_out_packet* p);
  /* Answers an out-of-band request received by on_control (same peer and id). */
  int (*control_reply)(ie_sn_env* env, ie_sn_pipe peer, uint32_t id, const uint8_t* data,
                       size_t len);

  /* Monotonic time in nanoseconds. */
  uint64_t (*now_ns)(ie_sn_env* env);
  /* One-shot timer on the calling worker; returns its id (never 0), 0 on failure (no fn, a
   * delay over 2^31 ms, or more than 65536 pending timers in this instance). fn runs on the
   * worker's thread with the instance and arg; pending timers are cancelled before
   * destroy(). */
  uint64_t (*timer_add)(ie_sn_env* env, uint64_t delay_ms, ie_sn_timer_fn fn, void* arg);
  int (*timer_cancel)(ie_sn_env* env, uint64_t timer_id);

  /* Configuration: string values of the module's own section in the SN configuration
   * ([modules.<name>] in iesn.toml). get copies the value and its NUL into buf (*len in: buf
   * size, out: value length + 1; IE_SN_ENOSPC if too small; buf may be NULL when *len is 0).
   * set changes the running value (all workers see it: every instance of the module, the
   * caller's included, gets on_config when its worker next polls, between batches; setting
   * the value a key already has changes nothing). */
  int (*config_get)(ie_sn_env* env, const char* key, char* buf, size_t* len);
  int (*config_set)(ie_sn_env* env, const char* key, const char* value);

  /* Checkpoint/restore: named blobs in the SN's state database, per module, kept across
   * restarts. load works like config_get, except that *len out is the blob's length (no
   * NUL); IE_SN_ENOENT if never saved. */
  int (*state_save)(ie_sn_env* env, const char* name, const uint8_t* data, size_t len);
  int (*state_load)(ie_sn_env* env, const char* name, uint8_t* buf, size_t* len);

  /* To the SN's log, prefixed with the module name; cut at IE_SN_MAX_LOG_LEN, control
   * characters replaced, rate-limited per module. */
  void (*log)(ie_sn_env* env, int level, const char* message);

  /* Counters: declared by name ([a-z0-9_]{1,48}), shown by iesn status as <module>.<name>.
   * declare returns an id (>= 1; the same id for the same name, on every worker), 0 on a bad
   * or reserved name ("packets", "invalid_decisions": the SN's own per-module counters) or
   * when the module has IE_SN_MAX_COUNTERS already; add (lock-free, per worker) sums over
   * workers and ignores ids that were never declared. */
  uint32_t (*counter_declare)(ie_sn_env* env, const char* name, const char* help);
  void (*counter_add)(ie_sn_env* env, uint32_t counter_id, uint64_t n);
} ie_sn_host;

typedef struct ie_sn_module_descriptor {
  uint32_t abi_version; /* IE_SN_MODULE_ABI_VERSION */
  uint32_t struct_size; /* sizeof(ie_sn_module_descriptor) */
  const char* name;     /* [a-z0-9_]{1,32}, unique per SN */
  uint16_t service_id;  /* the ILP service id it serves, unique per SN */
  uint16_t reserved;
  const char* description; /* one line, may be NULL */

  /* Creates the instance for one worker (NULL on failure: the SN refuses to start). */
  void* (*create)(const ie_sn_host* host, ie_sn_env* env, uint32_t worker_index);
  void (*destroy)(void* instance);

  /* n packets that missed the decision cache; the module writes out[0..n). */
  void (*on_packets)(void* instance, ie_sn_env* env, const ie_sn_packet* packets,
                     ie_sn_decision* out, size_t n);
  /* An out-of-band request for this service from a peer (may be NULL: refused). */
  void (*on_control)(void* instance, ie_sn_env* env, ie_sn_pipe peer, uint32_t id,
                     const uint8_t* data, size_t len);
  /* A pipe went down (host gone, peer SN dead): drop state about it (may be NULL). */
  void (*on_pipe_down)(void* instance, ie_sn_env* env, ie_sn_pipe pipe);
  /* Configuration of this module changed (config_set or SIGHUP reload; may be NULL). */
  void (*on_config)(void* instance, ie_sn_env* env);
} ie_sn_module_descriptor;

/* Whether a host table has a member (for modules built against a newer minor version). */
#define IE_SN_HOST_HAS(host, member)                                               \
  ((host)->struct_size >= offsetof(ie_sn_host, member) + sizeof((host)->member) && \
   (host)->member != NULL)

/* The one symbol a module shared object exports. The SN calls it once, right after dlopen,
 * and checks the descriptor before calling anything else (a module's static initialisers
 * run at dlopen: keep them trivial). */
typedef const ie_sn_module_descriptor* (*ie_sn_module_entry_fn)(void);
#define IE_SN_MODULE_ENTRY_SYMBOL "ie_sn_module_v1"

#ifdef __cplusplus
}
#endif

#endif /* INTEREDGE_SN_MODULE_H */
