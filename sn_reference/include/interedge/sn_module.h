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
 * IE_SN_MODULE_ABI_VERSION or struct_size is smaller than the descriptor it knows. Structs
 * passed from the SN to a module start with struct_size too: later minor versions only append
 * fields, and a module reads a field only if struct_size covers it.
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

typedef struct ie_sn_env ie_sn_env; /* opaque: one per worker, owned by the SN */

/* A pipe: an associated peer (host or SN) the SN can send ILP to. 0 is never a valid pipe. */
typedef uint32_t ie_sn_pipe;

/* Addresses are 16 bytes: IPv6, or IPv4-mapped (::ffff:a.b.c.d). */
typedef struct ie_sn_addr {
  uint8_t bytes[16];
} ie_sn_addr;

/* The decision-cache key: (source L3 address, service id, connection id). */
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

/* A new ILP packet a module sends on a pipe (ie_sn_host.send). */
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

typedef struct ie_sn_pipe_info {
  uint32_t struct_size;
  uint32_t kind;    /* ie_sn_pipe_kind */
  char sn_name[72]; /* DOM.SN for an SN pipe, "" for a host */
} ie_sn_pipe_info;

typedef enum ie_sn_log_level {
  IE_SN_LOG_DEBUG = 0,
  IE_SN_LOG_INFO = 1,
  IE_SN_LOG_WARN = 2,
  IE_SN_LOG_ERROR = 3
} ie_sn_log_level;

typedef void (*ie_sn_timer_fn)(void* instance, ie_sn_env* env, uint64_t timer_id, void* arg);

/* What the SN offers a module. Every call takes the env the module was created with. */
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
  /* One-shot timer on the calling worker; returns its id (never 0), 0 on failure. */
  uint64_t (*timer_add)(ie_sn_env* env, uint64_t delay_ms, ie_sn_timer_fn fn, void* arg);
  int (*timer_cancel)(ie_sn_env* env, uint64_t timer_id);

  /* Configuration: string values of the module's own section in the SN configuration
   * ([modules.<name>] in iesn.toml). get copies the value and its NUL into buf (*len in: buf
   * size, out: value length + 1; IE_SN_ENOSPC if too small). set changes the running value
   * (all workers see it; on_config is called on every instance). */
  int (*config_get)(ie_sn_env* env, const char* key, char* buf, size_t* len);
  int (*config_set)(ie_sn_env* env, const char* key, const char* value);

  /* Checkpoint/restore: named blobs in the SN's state database, per module, kept across
   * restarts. load works like config_get (IE_SN_ENOENT if never saved). */
  int (*state_save)(ie_sn_env* env, const char* name, const uint8_t* data, size_t len);
  int (*state_load)(ie_sn_env* env, const char* name, uint8_t* buf, size_t* len);

  void (*log)(ie_sn_env* env, int level, const char* message);

  /* Counters: declared by name (lower-case, [a-z0-9_]), shown by iesn status as
   * <module>.<name>. declare returns an id (>= 1; the same id for the same name, on every
   * worker), 0 on a bad name; add sums over workers. */
  uint32_t (*counter_declare)(ie_sn_env* env, const char* name, const char* help);
  void (*counter_add)(ie_sn_env* env, uint32_t counter_id, uint64_t n);
} ie_sn_host;

typedef struct ie_sn_module_descriptor {
  uint32_t abi_version; /* IE_SN_MODULE_ABI_VERSION */
  uint32_t struct_size; /* sizeof(ie_sn_module_descriptor) */
  const char* name;     /* [a-z0-9_]+, unique per SN */
  uint16_t service_id;  /* the ILP service id it serves */
  uint16_t reserved;
  const char* description;

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

/* The one symbol a module shared object exports. */
typedef const ie_sn_module_descriptor* (*ie_sn_module_entry_fn)(void);
#define IE_SN_MODULE_ENTRY_SYMBOL "ie_sn_module_v1"

#ifdef __cplusplus
}
#endif

#endif /* INTEREDGE_SN_MODULE_H */
