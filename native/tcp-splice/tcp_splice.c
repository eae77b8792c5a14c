/*
 * N-API binding of the SSTP proxy's native splice path (splice.h). Loaded, optionally, by
 * src/dataplane/sstp/sstp-splice.ts; without it established tunnels stay two Node pipes.
 * Plain C and N-API only (ABI-stable across Node versions, no node-addon-api).
 *
 *   create(maxTunnels, pipeSize, onEnded) -> handle
 *       onEnded() is called on the JS thread when tunnels ended by themselves (call finished()).
 *   add(handle, clientFd, backendFd) -> slot >= 0, or a negative code (splice.h ts_add)
 *   remove(handle, slot) -> Float64Array [toBackend, toClient, lastMs] | undefined
 *       once it returns the addon no longer uses the tunnel's sockets: JS may close them.
 *       Tunnels the native front handed over (front_napi.c) are the addon's: it closes their
 *       sockets here.
 *   counters(handle, slot) -> Float64Array [toBackend, toClient, lastMs] | undefined
 *   finished(handle) -> Float64Array, 3 per ended tunnel: slot, state (2 done, 3 error), errno
 *   stats(handle) -> Float64Array, 4 per tunnel: slot, toBackend, toClient, lastMs
 *   close(handle)   stops and joins the thread (idempotent); tunnels stay removable
 *   now() -> monotonic ms (the clock of lastMs)
 */
#include <node_api.h>

#define ADDON_ERROR_CODE "VPNLB_SSTP_SPLICE"
#include "napi_util.h"
#include <stdlib.h>
#include <string.h>

#include "splice.h"
#include "splice_napi.h"

/* Owned by two finalizers (the JS handle's and the threadsafe function's): freed by the last. */
typedef struct {
  ts_engine *engine;
  napi_threadsafe_function tsfn;
  int closed;
  int refs;
} ts_handle;

static void unref_handle(ts_handle *hd) {
  if (--hd->refs > 0) return;
  if (hd->engine != NULL) ts_destroy(hd->engine);
  free(hd);
}

static void finalize_tsfn(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  unref_handle(data);
}

static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)data;
  ts_handle *hd = context;
  if (env == NULL || js_cb == NULL || hd->closed) return;
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  /* An exception in the callback is the proxy's bug, not a reason to lose the process: report
   * it as Node would report an uncaught one. */
  if (napi_call_function(env, undefined, js_cb, 0, NULL, NULL) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

/* Called on the splice thread. A full queue cannot happen (one call in flight at a time,
 * ts_engine.notify_pending); a failure only delays the report to the next ended tunnel. */
static void notify(void *ctx) {
  ts_handle *hd = ctx;
  napi_call_threadsafe_function(hd->tsfn, NULL, napi_tsfn_nonblocking);
}

static void close_handle(ts_handle *hd) {
  if (hd->closed) return;
  hd->closed = 1;
  ts_stop(hd->engine); /* joined: no more calls into the tsfn */
  napi_release_threadsafe_function(hd->tsfn, napi_tsfn_abort);
}

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  close_handle(data);
  unref_handle(data);
}

static ts_handle *get_handle(napi_env env, napi_value v) {
  ts_handle *hd = NULL;
  if (napi_get_value_external(env, v, (void **)&hd) != napi_ok || hd == NULL) {
    napi_throw_type_error(env, "VPNLB_SSTP_SPLICE", "not a splice handle");
    return NULL;
  }
  return hd;
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t max_tunnels, pipe_size;
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &max_tunnels) != napi_ok || napi_get_value_uint32(env, argv[1], &pipe_size) != napi_ok) {
    napi_throw_type_error(env, "VPNLB_SSTP_SPLICE", "create(maxTunnels, pipeSize, onEnded)");
    return NULL;
  }
  ts_handle *hd = calloc(1, sizeof(*hd));
  if (hd == NULL) {
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "out of memory");
    return NULL;
  }
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "vpnlb-tcp-splice", NAPI_AUTO_LENGTH, &name));
  hd->refs = 1; /* the threadsafe function's; the JS handle takes the second */
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 4, 1, hd, finalize_tsfn, hd, call_js, &hd->tsfn) != napi_ok) {
    free(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "cannot create the notification function");
    return NULL;
  }
  /* The tunnels' sockets keep the process alive, not this. */
  napi_unref_threadsafe_function(env, hd->tsfn);
  const char *err = "unknown";
  hd->engine = ts_create(max_tunnels, pipe_size, notify, hd, &err);
  if (hd->engine == NULL) {
    hd->closed = 1;
    napi_release_threadsafe_function(hd->tsfn, napi_tsfn_abort); /* frees hd (finalize_tsfn) */
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", err);
    return NULL;
  }
  napi_value ext;
  hd->refs++;
  if (napi_create_external(env, hd, finalize_handle, NULL, &ext) != napi_ok) {
    close_handle(hd);
    unref_handle(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "cannot create the handle");
    return NULL;
  }
  return ext;
}

int splice_engine_of(napi_env env, napi_value v, ts_engine **out) {
  ts_handle *hd = get_handle(env, v);
  if (hd == NULL) return -1;
  if (hd->closed) return 0;
  *out = hd->engine;
  return 1;
}

static napi_value js_add(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ts_handle *hd = argc == 3 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  int32_t cfd, bfd;
  if (napi_get_value_int32(env, argv[1], &cfd) != napi_ok || napi_get_value_int32(env, argv[2], &bfd) != napi_ok) {
    napi_throw_type_error(env, "VPNLB_SSTP_SPLICE", "add(handle, clientFd, backendFd)");
    return NULL;
  }
  int rc = hd->closed ? -5 : ts_add(hd->engine, cfd, bfd, 0);
  CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

/* remove(handle, slot) and counters(handle, slot): same shape. */
static napi_value slot_call(napi_env env, napi_callback_info info, int (*fn)(ts_engine *, int, double[3])) {
  size_t argc = 2;
  napi_value argv[2], undefined;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ts_handle *hd = argc == 2 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  int32_t slot;
  CHECK(env, napi_get_value_int32(env, argv[1], &slot));
  double out[3];
  CHECK(env, napi_get_undefined(env, &undefined));
  if (fn(hd->engine, slot, out) != 0) return undefined;
  return f64_array(env, out, 3);
}

static napi_value js_remove(napi_env env, napi_callback_info info) {
  return slot_call(env, info, ts_remove);
}

static napi_value js_counters(napi_env env, napi_callback_info info) {
  return slot_call(env, info, ts_counters);
}

/* finished(handle) and stats(handle): a bounded temporary filled under the lock, JS values
 * built after it (the splice thread waits only for the copy). */
static napi_value list_call(napi_env env, napi_callback_info info, int width, uint32_t (*fn)(ts_engine *, double *, uint32_t)) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ts_handle *hd = argc == 1 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  uint32_t cap = hd->engine->max_tunnels;
  double *buf = malloc(sizeof(double) * (size_t)width * cap);
  if (buf == NULL) {
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "out of memory");
    return NULL;
  }
  uint32_t n = fn(hd->engine, buf, cap);
  napi_value arr = f64_array(env, buf, (size_t)n * (size_t)width);
  free(buf);
  if (arr == NULL) napi_throw_error(env, "VPNLB_SSTP_SPLICE", "out of memory");
  return arr;
}

static napi_value js_finished(napi_env env, napi_callback_info info) {
  return list_call(env, info, 3, ts_finished);
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  return list_call(env, info, 4, ts_stats);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undefined;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  ts_handle *hd = argc == 1 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  close_handle(hd);
  CHECK(env, napi_get_undefined(env, &undefined));
  return undefined;
}

static napi_value js_now(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  CHECK(env, napi_create_double(env, (double)ts_now_ms(), &v));
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL},
      {"remove", NULL, js_remove, NULL, NULL, NULL, napi_default, NULL},
      {"counters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
      {"finished", NULL, js_finished, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"now", NULL, js_now, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  if (front_register(env, exports) != 0) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
