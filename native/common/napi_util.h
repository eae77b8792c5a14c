/*
 * N-API helpers shared by vpnlb's native addons (udp-fastpath, tcp-splice). Each addon defines
 * ADDON_ERROR_CODE (the `code` of the errors it throws) before including this header.
 */
#ifndef VPNLB_NAPI_UTIL_H
#define VPNLB_NAPI_UTIL_H

#include <node_api.h>
#include <string.h>

#ifndef ADDON_ERROR_CODE
#error "define ADDON_ERROR_CODE before including napi_util.h"
#endif

/* Returns NULL from the calling N-API function, with a pending JS error, when `call` fails. */
#define CHECK(env, call)                                                          \
  do {                                                                            \
    if ((call) != napi_ok) {                                                      \
      napi_throw_error((env), ADDON_ERROR_CODE, "N-API call failed: " #call);     \
      return NULL;                                                                \
    }                                                                             \
  } while (0)

/* A Float64Array holding a copy of `values` (NULL on failure). */
static inline napi_value f64_array(napi_env env, const double *values, size_t n) {
  napi_value ab, ta;
  void *data;
  if (napi_create_arraybuffer(env, n * sizeof(double), &data, &ab) != napi_ok) return NULL;
  if (n > 0) memcpy(data, values, n * sizeof(double));
  if (napi_create_typedarray(env, napi_float64_array, n, ab, 0, &ta) != napi_ok) return NULL;
  return ta;
}

#endif
