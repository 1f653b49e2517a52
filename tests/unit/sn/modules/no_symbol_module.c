/* A shared object without ie_sn_module_v1: the SN must refuse to load it. */
__attribute__((visibility("default"))) int ie_sn_not_a_module(void) {
  return 1;
}
