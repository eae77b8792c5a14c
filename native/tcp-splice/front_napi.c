/*
 * N-API binding of the native front (front.h), polled in libuv's loop on the JavaScript thread
 * (no thread, no lock: JavaScript's answers are plain calls back into front_core.c).
 *
 *   frontOpen(address, port, maxConns, maxHelloLength, maxHello, smallHello, budget, backlog,
 *             onEvent[, tls[, reusePort]]) -> handle
 *       tls (offload): [certPem, keyPem, ciphers, tls13Suites, groups] (Buffers, strings).
 *       reusePort: listen with SO_REUSEPORT, beside the fronts of other worker processes.
 *       throws an Error with code (EADDRINUSE, ...), errno and syscall when it cannot listen,
 *       or code VPNLB_SSTP_FRONT when the TLS context cannot be built.
 *       onEvent(kind, id, a, b, data) per step (front.h tf_event): data is the client's address
 *       (ACCEPT), the octets read (HELLO, passthrough ANSWER), the protocol (SECURE), why
 *       (FAILED TF_F_TLS), the relayed octets as a Buffer of two doubles then, for a TLS
 *       error, OpenSSL's reason (ENDED), or undefined.
 *   frontPort(h) -> bound port
 *   frontDial(h, id, address, port) -> 0 | -errno
 *   frontSplice(h, id, spliceHandle) -> the splice engine's slot | negative code
 *   frontMore(h, id) / frontClose(h, id) -> 0 | -1
 *   frontRearm(h)          listens again after an accept error
 *   frontStats(h) -> [hello octets held beyond the small allowance, connections held]
 *   frontCounters(h, id) -> [to the server, to the client] | undefined   (offload relay)
 *   frontIdle(h, ms) -> Float64Array of the ids of tunnels idle for ms  (offload relay)
 *   frontStop(h)           closes the listener and every connection still here (idempotent)
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>

#define ADDON_ERROR_CODE "VPNLB_SSTP_FRONT"
#include "napi_util.h"
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "splice_napi.h"

typedef struct {
  tf_front *f;
  uv_poll_t poll;
  napi_env env;
  napi_ref cb, resource;
  napi_async_context actx;
  int stopped;  /* stop() was called (no more events reach JavaScript) */
  int closed;   /* the front is destroyed and the poll handle closing */
  int running;  /* inside on_poll: the stop completes when it returns */
  int refs;
} tf_handle;

static void unref(tf_handle *h) {
  if (--h->refs == 0) free(h);
}

static void on_poll_closed(uv_handle_t *p) {
  unref(p->data);
}

static void emit(void *ctx, int kind, double id, double a, double b, const uint8_t *data, size_t len, const char *addr) {
  tf_handle *h = ctx;
  if (h->stopped) return;
  napi_env env = h->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value argv[5], cb, undefined;
  napi_get_undefined(env, &undefined);
  napi_create_int32(env, kind, &argv[0]);
  napi_create_double(env, id, &argv[1]);
  napi_create_double(env, a, &argv[2]);
  napi_create_double(env, b, &argv[3]);
  argv[4] = undefined;
  if (kind == TF_EV_HELLO || data != NULL) {
    void *out;
    if (len > 0) napi_create_buffer_copy(env, len, data, &out, &argv[4]);
    else napi_create_buffer(env, 0, &out, &argv[4]);
  } else if (addr != NULL) {
    napi_create_string_latin1(env, addr, NAPI_AUTO_LENGTH, &argv[4]);
  }
  napi_get_reference_value(env, h->cb, &cb);
  /* An exception in the handler is the proxy's bug: reported as an uncaught one. */
  if (napi_call_function(env, undefined, cb, 5, argv, NULL) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
  napi_close_handle_scope(env, scope);
}

/* Destroys the front and closes the poll handle, once (not while on_poll runs: it finishes). */
static void finish_stop(tf_handle *h) {
  if (h->closed || h->running) return;
  h->closed = 1;
  uv_poll_stop(&h->poll);
  tf_destroy(h->f);
  h->f = NULL;
  napi_delete_reference(h->env, h->cb);
  napi_delete_reference(h->env, h->resource);
  napi_async_destroy(h->env, h->actx);
  uv_close((uv_handle_t *)&h->poll, on_poll_closed);
}

static void stop(tf_handle *h) {
  if (h->stopped) return;
  h->stopped = 1;
  if (h->running) tf_halt(h->f); /* no more accepts or events in this run */
  finish_stop(h);
}

static void on_poll(uv_poll_t *p, int status, int events) {
  (void)status;
  (void)events;
  tf_handle *h = p->data;
  if (h->stopped) return;
  napi_env env = h->env;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_value resource;
  napi_callback_scope cs;
  /* A callback scope: promises and nextTicks queued by the handlers run when it closes. */
  if (napi_get_reference_value(env, h->resource, &resource) != napi_ok ||
      napi_open_callback_scope(env, resource, h->actx, &cs) != napi_ok) {
    napi_close_handle_scope(env, hs);
    return;
  }
  h->running = 1;
  tf_run(h->f, 256);
  napi_close_callback_scope(env, cs); /* may run JavaScript that stops the front */
  h->running = 0;
  napi_close_handle_scope(env, hs);
  if (h->stopped) finish_stop(h);
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  tf_handle *h = data;
  stop(h);
  unref(h);
}

static tf_handle *get(napi_env env, napi_value v) {
  tf_handle *h = NULL;
  if (napi_get_value_external(env, v, (void **)&h) != napi_ok || h == NULL) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "not a front handle");
    return NULL;
  }
  return h;
}

/* 4 or 6 and the address, or 0 when `v` is no IP address. */
static int parse_ip(napi_env env, napi_value v, uint8_t out[16]) {
  char s[64];
  size_t n;
  if (napi_get_value_string_latin1(env, v, s, sizeof s, &n) != napi_ok) return 0;
  memset(out, 0, 16);
  if (inet_pton(AF_INET, s, out) == 1) return 4;
  if (inet_pton(AF_INET6, s, out) == 1) return 6;
  return 0;
}

/* A Buffer's octets, or a string copied into `buf` (NUL-terminated); 0 on a bad argument. */
static int tls_arg_buffer(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is;
  return napi_is_buffer(env, v, &is) == napi_ok && is && napi_get_buffer_info(env, v, (void **)data, len) == napi_ok;
}

static int tls_arg_string(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t n;
  return napi_get_value_string_latin1(env, v, buf, cap, &n) == napi_ok && n + 1 < cap;
}

/* The offload TLS context from [cert, key, ciphers, suites, groups]; NULL with a pending error. */
static tt_ctx *tls_context(napi_env env, napi_value arr) {
  napi_value v[5];
  tt_options t;
  char ciphers[1024], suites[512], groups[256], err[400];
  memset(&t, 0, sizeof t);
  bool is_array;
  uint32_t n = 0;
  if (napi_is_array(env, arr, &is_array) != napi_ok || !is_array || napi_get_array_length(env, arr, &n) != napi_ok || n != 5) goto bad;
  for (uint32_t i = 0; i < 5; i++)
    if (napi_get_element(env, arr, i, &v[i]) != napi_ok) goto bad;
  if (!tls_arg_buffer(env, v[0], &t.cert, &t.cert_len) || !tls_arg_buffer(env, v[1], &t.key, &t.key_len) ||
      !tls_arg_string(env, v[2], ciphers, sizeof ciphers) || !tls_arg_string(env, v[3], suites, sizeof suites) ||
      !tls_arg_string(env, v[4], groups, sizeof groups))
    goto bad;
  t.ciphers = ciphers;
  t.ciphersuites = suites;
  t.groups = groups;
  tt_ctx *ctx = tt_ctx_new(&t, err, sizeof err);
  if (ctx == NULL) napi_throw_error(env, ADDON_ERROR_CODE, err);
  return ctx;
bad:
  napi_throw_type_error(env, ADDON_ERROR_CODE, "tls must be [certPem: Buffer, keyPem: Buffer, ciphers, tls13Suites, groups]");
  return NULL;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  tf_options o;
  memset(&o, 0, sizeof o);
  uint32_t port, max_conns, max_hello_length, max_hello, small_hello, backlog;
  double budget;
  if (argc < 9 || (o.family = parse_ip(env, argv[0], o.addr)) == 0 || napi_get_value_uint32(env, argv[1], &port) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &max_conns) != napi_ok || napi_get_value_uint32(env, argv[3], &max_hello_length) != napi_ok ||
      napi_get_value_uint32(env, argv[4], &max_hello) != napi_ok || napi_get_value_uint32(env, argv[5], &small_hello) != napi_ok ||
      napi_get_value_double(env, argv[6], &budget) != napi_ok || napi_get_value_uint32(env, argv[7], &backlog) != napi_ok || port > 65535) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "frontOpen(ipAddress, port, maxConns, maxHelloLength, maxHello, smallHello, budget, backlog, onEvent)");
    return NULL;
  }
  o.port = (uint16_t)port;
  o.max_conns = max_conns;
  o.max_hello_length = max_hello_length;
  o.max_hello = max_hello;
  o.small_hello = small_hello;
  o.budget = budget > 0 ? (uint64_t)budget : 0;
  o.backlog = (int)backlog;
  bool reuse_port = false;
  if (argc >= 11 && napi_get_value_bool(env, argv[10], &reuse_port) != napi_ok) reuse_port = false;
  o.reuse_port = reuse_port;
  uv_loop_t *loop;
  CHECK(env, napi_get_uv_event_loop(env, &loop));
  napi_valuetype tls_type = napi_undefined;
  if (argc >= 10 && napi_typeof(env, argv[9], &tls_type) != napi_ok) return NULL;
  if (tls_type != napi_undefined && (o.tls = tls_context(env, argv[9])) == NULL) return NULL;
  /* From here on the TLS context is the front's (tf_create frees it when it fails). */
  tf_handle *h = calloc(1, sizeof *h);
  if (h == NULL) {
    tt_ctx_free(o.tls);
    napi_throw_error(env, ADDON_ERROR_CODE, "out of memory");
    return NULL;
  }
  h->env = env;
  int e = 0;
  const char *what = "";
  h->f = tf_create(&o, emit, h, &e, &what);
  if (h->f == NULL) {
    free(h);
    char msg[160];
    const char *name = strerrorname_np(e);
    snprintf(msg, sizeof msg, "%s %s", what, name != NULL ? name : strerror(e));
    napi_value err, code, text, no, sys;
    CHECK(env, napi_create_string_utf8(env, name != NULL ? name : "EIO", NAPI_AUTO_LENGTH, &code));
    CHECK(env, napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text));
    CHECK(env, napi_create_error(env, code, text, &err));
    CHECK(env, napi_create_int32(env, -e, &no));
    CHECK(env, napi_create_string_utf8(env, what, NAPI_AUTO_LENGTH, &sys));
    napi_set_named_property(env, err, "errno", no);
    napi_set_named_property(env, err, "syscall", sys);
    napi_throw(env, err);
    return NULL;
  }
  napi_value resource, name, ext;
  int made = 0; /* what to undo on failure: 1 the async context, 2 and the resource, 3 and the callback */
  h->poll.data = h;
  if (napi_create_object(env, &resource) != napi_ok ||
      napi_create_string_utf8(env, "vpnlb-sstp-front", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, resource, name, &h->actx) != napi_ok || ++made == 0 ||
      napi_create_reference(env, resource, 1, &h->resource) != napi_ok || ++made == 0 ||
      napi_create_reference(env, argv[8], 1, &h->cb) != napi_ok || ++made == 0 ||
      uv_poll_init(loop, &h->poll, tf_fd(h->f)) != 0) {
    if (made >= 3) napi_delete_reference(env, h->cb);
    if (made >= 2) napi_delete_reference(env, h->resource);
    if (made >= 1) napi_async_destroy(env, h->actx);
    tf_destroy(h->f);
    free(h);
    napi_throw_error(env, ADDON_ERROR_CODE, "cannot set the front up (N-API or libuv failed)");
    return NULL;
  }
  h->refs = 2; /* the poll handle's close callback and the JS handle's finalizer */
  if (uv_poll_start(&h->poll, UV_READABLE, on_poll) != 0 || napi_create_external(env, h, finalize, NULL, &ext) != napi_ok) {
    h->refs = 1; /* no JS handle: the close callback frees it */
    stop(h);
    napi_throw_error(env, ADDON_ERROR_CODE, "cannot poll the front's epoll descriptor");
    return NULL;
  }
  return ext;
}

static napi_value int_result(napi_env env, int v) {
  napi_value r;
  CHECK(env, napi_create_int32(env, v, &r));
  return r;
}

/* Unpacks (handle, id, ...rest): NULL (with a pending error) on bad arguments. */
static tf_handle *args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, double *id) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "missing arguments");
    return NULL;
  }
  tf_handle *h = get(env, argv[0]);
  if (h != NULL && id != NULL && napi_get_value_double(env, argv[1], id) != napi_ok) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "id must be a number");
    return NULL;
  }
  return h;
}

static napi_value js_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tf_handle *h = args(env, info, 1, argv, NULL);
  if (h == NULL) return NULL;
  return int_result(env, h->f != NULL ? tf_port(h->f) : 0);
}

static napi_value js_dial(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  double id;
  tf_handle *h = args(env, info, 4, argv, &id);
  if (h == NULL) return NULL;
  uint8_t addr[16];
  uint32_t port;
  int family = parse_ip(env, argv[2], addr);
  if (family == 0 || napi_get_value_uint32(env, argv[3], &port) != napi_ok || port > 65535) return int_result(env, -EINVAL);
  return int_result(env, h->f != NULL ? tf_dial(h->f, id, family, addr, (uint16_t)port) : -ESTALE);
}

static napi_value js_splice(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  double id;
  tf_handle *h = args(env, info, 3, argv, &id);
  if (h == NULL) return NULL;
  ts_engine *engine = NULL;
  int usable = splice_engine_of(env, argv[2], &engine);
  if (usable < 0) return NULL;
  if (usable == 0 || h->f == NULL) return int_result(env, -5);
  return int_result(env, tf_splice(h->f, id, engine));
}

/* more(h, id) and close(h, id): same shape, -1 once the front is stopped. */
static napi_value id_call(napi_env env, napi_callback_info info, int (*fn)(tf_front *, double)) {
  napi_value argv[2];
  double id;
  tf_handle *h = args(env, info, 2, argv, &id);
  if (h == NULL) return NULL;
  return int_result(env, h->f != NULL ? fn(h->f, id) : -1);
}

static napi_value js_more(napi_env env, napi_callback_info info) {
  return id_call(env, info, tf_more);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  return id_call(env, info, tf_close);
}

static napi_value js_rearm(napi_env env, napi_callback_info info) {
  napi_value argv[1], undefined;
  tf_handle *h = args(env, info, 1, argv, NULL);
  if (h == NULL) return NULL;
  if (h->f != NULL) tf_rearm(h->f);
  CHECK(env, napi_get_undefined(env, &undefined));
  return undefined;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  tf_handle *h = args(env, info, 1, argv, NULL);
  if (h == NULL) return NULL;
  double out[2] = {h->f != NULL ? (double)tf_held(h->f) : 0, h->f != NULL ? (double)tf_count(h->f) : 0};
  return f64_array(env, out, 2);
}

static napi_value js_counters(napi_env env, napi_callback_info info) {
  napi_value argv[2], undefined;
  double id, out[2];
  tf_handle *h = args(env, info, 2, argv, &id);
  if (h == NULL) return NULL;
  if (h->f != NULL && tf_counters(h->f, id, out) == 0) return f64_array(env, out, 2);
  CHECK(env, napi_get_undefined(env, &undefined));
  return undefined;
}

static napi_value js_idle(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  double ms;
  tf_handle *h = args(env, info, 2, argv, &ms);
  if (h == NULL) return NULL;
  uint32_t max = h->f != NULL ? tf_count(h->f) : 0;
  double *ids = max > 0 ? malloc(sizeof *ids * max) : NULL;
  uint32_t n = ids != NULL ? tf_idle(h->f, ms, ids, max) : 0;
  napi_value r = f64_array(env, ids, n);
  free(ids);
  if (r == NULL) napi_throw_error(env, ADDON_ERROR_CODE, "out of memory");
  return r;
}

static napi_value js_stop(napi_env env, napi_callback_info info) {
  napi_value argv[1], undefined;
  tf_handle *h = args(env, info, 1, argv, NULL);
  if (h == NULL) return NULL;
  stop(h);
  CHECK(env, napi_get_undefined(env, &undefined));
  return undefined;
}

int front_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"frontOpen", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"frontPort", NULL, js_port, NULL, NULL, NULL, napi_default, NULL},
      {"frontDial", NULL, js_dial, NULL, NULL, NULL, napi_default, NULL},
      {"frontSplice", NULL, js_splice, NULL, NULL, NULL, napi_default, NULL},
      {"frontMore", NULL, js_more, NULL, NULL, NULL, napi_default, NULL},
      {"frontClose", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"frontRearm", NULL, js_rearm, NULL, NULL, NULL, napi_default, NULL},
      {"frontStats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"frontCounters", NULL, js_counters, NULL, NULL, NULL, napi_default, NULL},
      {"frontIdle", NULL, js_idle, NULL, NULL, NULL, napi_default, NULL},
      {"frontStop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
  };
  return napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) == napi_ok ? 0 : -1;
}
