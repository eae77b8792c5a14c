/*
 * N-API binding of the SSTP proxy's native splice path (splice.h). Loaded, optionally, by
 * src/dataplane/sstp/sstp-splice.ts; without it established tunnels stay two Node pipes.
 * Plain C and N-API only (ABI-stable across Node versions, no node-addon-api).
 *
 *   create(maxTunnels, pipeSize, onEnded, inLoop?) -> handle
 *       onEnded() is called on the JS thread when tunnels ended by themselves (call finished()).
 *       inLoop: no splice thread; the engine is polled in Node's event loop (one CPU: a thread
 *       would only add context switches and lock hand-overs).
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
#include <uv.h>

#include "splice.h"
#include "splice_napi.h"

/* Owned by the JS handle's finalizer and either the threadsafe function's finalizer (thread
 * mode) or the two libuv handles' close callbacks (loop mode): freed by the last. */
typedef struct {
  ts_engine *engine;
  napi_threadsafe_function tsfn;
  int closed;
  int refs;
  /* Loop mode: the engine runs in Node's event loop (ts_run), onEnded is called directly. */
  int in_loop, running;
  napi_env env;
  napi_ref cb, resource;
  napi_async_context actx;
  uv_poll_t poll; /* the engine's epoll descriptor */
  uv_idle_t idle; /* while pumps are queued (budget spent on bulk tunnels) */
  int idle_on;
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

static void on_loop_handle_closed(uv_handle_t *h) {
  unref_handle(h->data);
}

static void close_handle(ts_handle *hd) {
  if (hd->closed) return;
  hd->closed = 1;
  ts_stop(hd->engine); /* joined: no more calls into the tsfn */
  if (!hd->in_loop) {
    napi_release_threadsafe_function(hd->tsfn, napi_tsfn_abort);
    return;
  }
  uv_poll_stop(&hd->poll);
  uv_idle_stop(&hd->idle);
  napi_delete_reference(hd->env, hd->cb);
  napi_delete_reference(hd->env, hd->resource);
  napi_async_destroy(hd->env, hd->actx);
  uv_close((uv_handle_t *)&hd->poll, on_loop_handle_closed);
  uv_close((uv_handle_t *)&hd->idle, on_loop_handle_closed);
}

static void loop_run(ts_handle *hd);

static void on_engine_ready(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  loop_run(p->data);
}

static void on_engine_idle(uv_idle_t *i) {
  loop_run(i->data);
}

/* Loop mode: relays what is ready, then tells JavaScript of tunnels that ended. */
static void loop_run(ts_handle *hd) {
  if (hd->closed || hd->running) return;
  int ended = 0;
  int more = ts_run(hd->engine, &ended);
  if (more && !hd->idle_on) uv_idle_start(&hd->idle, on_engine_idle);
  else if (!more && hd->idle_on) uv_idle_stop(&hd->idle);
  hd->idle_on = more;
  if (!ended) return;
  napi_env env = hd->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value resource, cb, undefined;
  napi_callback_scope cs;
  if (napi_get_reference_value(env, hd->resource, &resource) == napi_ok &&
      napi_get_reference_value(env, hd->cb, &cb) == napi_ok && napi_get_undefined(env, &undefined) == napi_ok &&
      napi_open_callback_scope(env, resource, hd->actx, &cs) == napi_ok) {
    hd->running = 1;
    if (napi_call_function(env, undefined, cb, 0, NULL, NULL) == napi_pending_exception) {
      napi_value exc;
      napi_get_and_clear_last_exception(env, &exc);
      napi_fatal_exception(env, exc);
    }
    napi_close_callback_scope(env, cs);
    hd->running = 0;
  }
  napi_close_handle_scope(env, hs);
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

/* Loop mode's part of create(): the engine without a thread, polled in Node's loop. */
static napi_value create_in_loop(napi_env env, ts_handle *hd, uint32_t max_tunnels, uint32_t pipe_size, napi_value on_ended) {
  uv_loop_t *loop;
  const char *err = "unknown";
  hd->in_loop = 1;
  hd->env = env;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    free(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "no event loop");
    return NULL;
  }
  hd->engine = ts_create(max_tunnels, pipe_size, 1, NULL, NULL, &err);
  if (hd->engine == NULL) {
    free(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", err);
    return NULL;
  }
  if (uv_poll_init(loop, &hd->poll, hd->engine->epfd) != 0 || uv_idle_init(loop, &hd->idle) != 0) {
    ts_destroy(hd->engine);
    free(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "cannot poll the engine's epoll descriptor");
    return NULL;
  }
  hd->poll.data = hd->idle.data = hd;
  hd->refs = 3; /* the JS handle, and the two libuv handles' close callbacks */
  napi_value resource, name, ext;
  int ok = napi_create_object(env, &resource) == napi_ok &&
           napi_create_string_utf8(env, "vpnlb-tcp-splice", NAPI_AUTO_LENGTH, &name) == napi_ok &&
           napi_async_init(env, resource, name, &hd->actx) == napi_ok &&
           napi_create_reference(env, resource, 1, &hd->resource) == napi_ok &&
           napi_create_reference(env, on_ended, 1, &hd->cb) == napi_ok;
  /* The tunnels' sockets keep the process alive, not this. */
  uv_unref((uv_handle_t *)&hd->poll);
  uv_unref((uv_handle_t *)&hd->idle);
  if (!ok || uv_poll_start(&hd->poll, UV_READABLE, on_engine_ready) != 0 ||
      napi_create_external(env, hd, finalize_handle, NULL, &ext) != napi_ok) {
    hd->refs = 2; /* no JS handle */
    close_handle(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "cannot set up the engine in the event loop");
    return NULL;
  }
  return ext;
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t max_tunnels, pipe_size;
  bool in_loop = false;
  napi_valuetype t4 = napi_undefined;
  if (argc > 3) napi_typeof(env, argv[3], &t4);
  if (argc < 3 || napi_get_value_uint32(env, argv[0], &max_tunnels) != napi_ok || napi_get_value_uint32(env, argv[1], &pipe_size) != napi_ok ||
      (t4 != napi_undefined && napi_get_value_bool(env, argv[3], &in_loop) != napi_ok)) {
    napi_throw_type_error(env, "VPNLB_SSTP_SPLICE", "create(maxTunnels, pipeSize, onEnded, inLoop?)");
    return NULL;
  }
  ts_handle *hd = calloc(1, sizeof(*hd));
  if (hd == NULL) {
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "out of memory");
    return NULL;
  }
  if (in_loop) return create_in_loop(env, hd, max_tunnels, pipe_size, argv[2]);
  napi_value name;
  if (napi_create_string_utf8(env, "vpnlb-tcp-splice", NAPI_AUTO_LENGTH, &name) != napi_ok) {
    free(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "out of memory");
    return NULL;
  }
  hd->refs = 1; /* the threadsafe function's; the JS handle takes the second */
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, 4, 1, hd, finalize_tsfn, hd, call_js, &hd->tsfn) != napi_ok) {
    free(hd);
    napi_throw_error(env, "VPNLB_SSTP_SPLICE", "cannot create the notification function");
    return NULL;
  }
  /* The tunnels' sockets keep the process alive, not this. */
  napi_unref_threadsafe_function(env, hd->tsfn);
  const char *err = "unknown";
  hd->engine = ts_create(max_tunnels, pipe_size, 0, notify, hd, &err);
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
