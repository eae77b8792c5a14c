/* Non-Linux platforms: the splice path needs splice(2), pipes and epoll. Loading this module
 * fails with a reason, and established SSTP tunnels stay Node pipes. */
#include <node_api.h>

static napi_value init(napi_env env, napi_value exports) {
  (void)exports;
  napi_throw_error(env, "VPNLB_SSTP_SPLICE", "the native splice path needs Linux (splice, epoll)");
  return NULL;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
