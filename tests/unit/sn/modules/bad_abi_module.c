/* A module whose descriptor claims ABI version 99. Its callbacks abort(): the test passes
 * only if the SN refuses it without calling any of them. */
#include <stdlib.h>

#include "interedge/sn_module.h"

static void* bad_create(const ie_sn_host* host, ie_sn_env* env, uint32_t worker_index) {
  (void)host, (void)env, (void)worker_index;
  abort();
}
static void bad_destroy(void* instance) {
  (void)instance;
  abort();
}
static void bad_on_packets(void* instance, ie_sn_env* env, const ie_sn_packet* packets,
                           ie_sn_decision* out, size_t n) {
  (void)instance, (void)env, (void)packets, (void)out, (void)n;
  abort();
}

static const ie_sn_module_descriptor kBad = {
    99u, /* not IE_SN_MODULE_ABI_VERSION */
    sizeof(ie_sn_module_descriptor),
    "bad_abi",
    0x8101,
    0,
    "claims ABI version 99",
    bad_create,
    bad_destroy,
    bad_on_packets,
    NULL,
    NULL,
    NULL,
};

__attribute__((visibility("default"))) const ie_sn_module_descriptor* ie_sn_module_v1(void) {
  return &kBad;
}
