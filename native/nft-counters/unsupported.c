/* Non-Linux platforms: the counter reader needs NETLINK_NETFILTER. Loading this module fails
 * with a reason, and counters are read with `nft -j list counters`. */
#include <node_api.h>

static napi_value init(napi_env env, napi_value exports) {
  (void)exports;
  napi_throw_error(env, "VPNLB_NFT_COUNTERS", "the native counter reader needs Linux (netlink)");
  return NULL;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
