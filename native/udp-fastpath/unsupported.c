/* Non-Linux platforms: the fast path needs epoll, recvmmsg and sendmmsg. Loading this module
 * fails with a reason, and the relay forwards in JavaScript. */
#include <node_api.h>

static napi_value init(napi_env env, napi_value exports) {
  (void)exports;
  napi_throw_error(env, "VPNLB_FASTPATH", "the native fast path needs Linux (epoll, recvmmsg, sendmmsg)");
  return NULL;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
