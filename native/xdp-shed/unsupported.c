/* Non-Linux platforms: XDP needs Linux. Loading this module fails with a reason, and the relay
 * sheds with nftables (or not at all). */
#include <node_api.h>

static napi_value init(napi_env env, napi_value exports) {
  (void)exports;
  napi_throw_error(env, "VPNLB_XDP_SHED", "XDP flood shedding needs Linux (bpf, XDP)");
  return NULL;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
