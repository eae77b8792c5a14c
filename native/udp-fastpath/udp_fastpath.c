/*
 * N-API binding of the relay's native fast path (fastpath.h). Loaded, optionally, by
 * src/dataplane/relay/fastpath/native-binding.ts; without it the relay forwards in
 * JavaScript. Plain C and N-API only (ABI-stable across Node versions, no node-addon-api).
 *
 *   create(ikeFd, natTFd, maxFlows, onHandoff) -> handle
 *       onHandoff(packets: Array<[Buffer, address, port, isNatT]>) is called on the JS thread
 *       with datagrams of flows the table does not hold.
 *   install(handle, isNatT, address, port, upstreamFd) -> slot >= 0, or a negative code
 *   remove(handle, slot) -> Float64Array [pktsIn, bytesIn, pktsOut, bytesOut, errors] | undefined
 *   poll(handle) -> [Float64Array flows (7 per changed flow: slot, pktsIn, bytesIn, pktsOut,
 *                    bytesOut, errors, lastSeenMs), Float64Array drops (per fp_reason),
 *                    string[] last source per reason, Float64Array [flows, forwardedIn,
 *                    forwardedOut, handoffBytes]]
 *   close(handle)   stops and joins the thread (idempotent); the table stays readable
 *   now() -> monotonic ms (the clock of lastSeenMs)
 *   reuseportGroup(family, address, port, count) -> { port, fds: number[] }
 *       `count` UDP sockets on address:port in one SO_REUSEPORT group steered by source
 *       address (reuseport.c), for the relay's worker processes; throws with errno's `code`.
 */
#include <node_api.h>

#define ADDON_ERROR_CODE "VPNLB_FASTPATH"
#include "napi_util.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fastpath.h"
#include "reuseport.h"

/* Owned by two finalizers (the JS handle's and the threadsafe function's): freed by the last. */
typedef struct {
  fp_relay *relay;
  napi_threadsafe_function tsfn;
  int closed;
  int refs;
} fp_handle;

static void unref_handle(fp_handle *hd) {
  if (--hd->refs > 0) return;
  if (hd->relay != NULL) fp_destroy(hd->relay);
  free(hd);
}

static void finalize_tsfn(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  unref_handle(data);
}

static void free_batch(fp_relay *r, fp_handoff *h) {
  if (r != NULL) atomic_fetch_sub(&r->handoff_bytes, h->bytes);
  for (uint32_t i = 0; i < h->count; i++) free(h->pkt[i].data);
  free(h);
}

/* Runs on the JS thread for each queued batch; env is NULL when the function is being torn
 * down with batches still queued: then only free them. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data) {
  fp_handle *hd = context;
  fp_handoff *h = data;
  if (env == NULL || js_cb == NULL || hd->closed) {
    free_batch(hd->relay, h);
    return;
  }
  napi_value arr, undefined;
  napi_create_array_with_length(env, h->count, &arr);
  for (uint32_t i = 0; i < h->count; i++) {
    fp_handoff_pkt *p = &h->pkt[i];
    napi_value item, buf, addr, port, natt;
    void *copy;
    napi_create_buffer_copy(env, p->len, p->data, &copy, &buf);
    napi_create_string_utf8(env, p->address, NAPI_AUTO_LENGTH, &addr);
    napi_create_uint32(env, p->port, &port);
    napi_get_boolean(env, p->kind == FP_KIND_NATT, &natt);
    napi_create_array_with_length(env, 4, &item);
    napi_set_element(env, item, 0, buf);
    napi_set_element(env, item, 1, addr);
    napi_set_element(env, item, 2, port);
    napi_set_element(env, item, 3, natt);
    napi_set_element(env, arr, i, item);
  }
  free_batch(hd->relay, h);
  napi_get_undefined(env, &undefined);
  /* An exception in the callback is the relay's bug, not a reason to lose the process: report
   * it as Node would report an uncaught one. */
  if (napi_call_function(env, undefined, js_cb, 1, &arr, NULL) == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

/* Called on the forwarding thread. */
static int deliver(void *ctx, fp_handoff *batch) {
  fp_handle *hd = ctx;
  return napi_call_threadsafe_function(hd->tsfn, batch, napi_tsfn_nonblocking) == napi_ok ? 0 : -1;
}

static void close_handle(fp_handle *hd);

static void finalize_handle(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  close_handle(data);
  unref_handle(data);
}

static fp_handle *get_handle(napi_env env, napi_value v) {
  fp_handle *hd = NULL;
  if (napi_get_value_external(env, v, (void **)&hd) != napi_ok || hd == NULL) {
    napi_throw_type_error(env, "VPNLB_FASTPATH", "not a fast-path handle");
    return NULL;
  }
  return hd;
}

static void close_handle(fp_handle *hd) {
  if (hd->closed) return;
  hd->closed = 1;
  fp_stop(hd->relay); /* joined: no more calls into the tsfn */
  napi_release_threadsafe_function(hd->tsfn, napi_tsfn_abort);
}

static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t ike_fd, natt_fd;
  uint32_t max_flows;
  if (argc < 4 || napi_get_value_int32(env, argv[0], &ike_fd) != napi_ok || napi_get_value_int32(env, argv[1], &natt_fd) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &max_flows) != napi_ok) {
    napi_throw_type_error(env, "VPNLB_FASTPATH", "create(ikeFd, natTFd, maxFlows, onHandoff)");
    return NULL;
  }
  fp_handle *hd = calloc(1, sizeof(*hd));
  if (hd == NULL) {
    napi_throw_error(env, "VPNLB_FASTPATH", "out of memory");
    return NULL;
  }
  napi_value name;
  CHECK(env, napi_create_string_utf8(env, "vpnlb-udp-fastpath", NAPI_AUTO_LENGTH, &name));
  hd->refs = 1; /* the threadsafe function's; the JS handle takes the second */
  if (napi_create_threadsafe_function(env, argv[3], NULL, name, FP_HANDOFF_QUEUE, 1, hd, finalize_tsfn, hd, call_js, &hd->tsfn) != napi_ok) {
    free(hd);
    napi_throw_error(env, "VPNLB_FASTPATH", "cannot create the hand-off function");
    return NULL;
  }
  /* The relay's sockets keep the process alive, not this. */
  napi_unref_threadsafe_function(env, hd->tsfn);
  const char *err = "unknown";
  hd->relay = fp_create(ike_fd, natt_fd, max_flows, deliver, hd, &err);
  if (hd->relay == NULL) {
    hd->closed = 1;
    napi_release_threadsafe_function(hd->tsfn, napi_tsfn_abort); /* frees hd (finalize_tsfn) */
    napi_throw_error(env, "VPNLB_FASTPATH", err);
    return NULL;
  }
  napi_value ext;
  hd->refs++;
  if (napi_create_external(env, hd, finalize_handle, NULL, &ext) != napi_ok) {
    close_handle(hd);
    unref_handle(hd);
    napi_throw_error(env, "VPNLB_FASTPATH", "cannot create the handle");
    return NULL;
  }
  return ext;
}

static napi_value js_install(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fp_handle *hd = argc == 5 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  bool natt;
  char address[64];
  size_t alen;
  int32_t port, fd;
  napi_value result;
  if (napi_get_value_bool(env, argv[1], &natt) != napi_ok ||
      napi_get_value_string_utf8(env, argv[2], address, sizeof(address), &alen) != napi_ok || napi_get_value_int32(env, argv[3], &port) != napi_ok ||
      napi_get_value_int32(env, argv[4], &fd) != napi_ok) {
    napi_throw_type_error(env, "VPNLB_FASTPATH", "install(handle, isNatT, address, port, fd)");
    return NULL;
  }
  int rc = hd->closed ? -5 : fp_install(hd->relay, natt ? FP_KIND_NATT : FP_KIND_IKE, address, port, fd);
  CHECK(env, napi_create_int32(env, rc, &result));
  return result;
}

static napi_value js_remove(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], undefined;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fp_handle *hd = argc == 2 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  int32_t slot;
  CHECK(env, napi_get_value_int32(env, argv[1], &slot));
  double out[5];
  CHECK(env, napi_get_undefined(env, &undefined));
  if (fp_remove(hd->relay, slot, out) != 0) return undefined;
  return f64_array(env, out, 5);
}

static napi_value js_poll(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fp_handle *hd = argc == 1 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  fp_relay *r = hd->relay;
  /* Copy under the lock into a bounded temporary (7 doubles per changed flow), build JS values
   * after unlocking: the forwarding thread waits only for the copy. */
  pthread_mutex_lock(&r->lock);
  uint32_t cap = r->dirty_overflow ? r->max_flows : r->ndirty;
  double *flows = malloc(sizeof(double) * 7 * (cap > 0 ? cap : 1));
  uint32_t nf = 0;
  double drops[FP_R_COUNT], totals[4];
  char from[FP_R_COUNT][64];
  if (flows != NULL) {
    for (uint32_t i = 0; i < cap; i++) {
      int32_t slot = r->dirty_overflow ? (int32_t)i : r->dirty[i];
      fp_flow *f = &r->flows[slot];
      if (f->fd < 0 || !f->dirty) continue;
      double *o = &flows[7 * nf++];
      o[0] = slot;
      o[1] = (double)f->pkts_in;
      o[2] = (double)f->bytes_in;
      o[3] = (double)f->pkts_out;
      o[4] = (double)f->bytes_out;
      o[5] = (double)f->errors;
      o[6] = (double)f->last_seen_ms;
      f->pkts_in = f->bytes_in = f->pkts_out = f->bytes_out = f->errors = 0;
      f->dirty = 0;
    }
    r->ndirty = 0;
    r->dirty_overflow = 0;
    for (int i = 0; i < FP_R_COUNT; i++) {
      drops[i] = (double)r->drops[i];
      r->drops[i] = 0;
      memcpy(from[i], r->drop_from[i], sizeof(from[i]));
    }
  }
  totals[0] = r->nflows;
  totals[1] = (double)r->forwarded_in;
  totals[2] = (double)r->forwarded_out;
  totals[3] = atomic_load(&r->handoff_bytes);
  pthread_mutex_unlock(&r->lock);
  if (flows == NULL) {
    napi_throw_error(env, "VPNLB_FASTPATH", "out of memory");
    return NULL;
  }
  napi_value result, froms;
  napi_value fa = f64_array(env, flows, (size_t)nf * 7);
  free(flows);
  napi_value da = f64_array(env, drops, FP_R_COUNT);
  napi_value ta = f64_array(env, totals, 4);
  if (fa == NULL || da == NULL || ta == NULL) {
    napi_throw_error(env, "VPNLB_FASTPATH", "out of memory");
    return NULL;
  }
  CHECK(env, napi_create_array_with_length(env, FP_R_COUNT, &froms));
  for (int i = 0; i < FP_R_COUNT; i++) {
    napi_value s;
    CHECK(env, napi_create_string_utf8(env, from[i], strnlen(from[i], sizeof(from[i])), &s));
    CHECK(env, napi_set_element(env, froms, (uint32_t)i, s));
  }
  CHECK(env, napi_create_array_with_length(env, 4, &result));
  CHECK(env, napi_set_element(env, result, 0, fa));
  CHECK(env, napi_set_element(env, result, 1, da));
  CHECK(env, napi_set_element(env, result, 2, froms));
  CHECK(env, napi_set_element(env, result, 3, ta));
  return result;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], undefined;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  fp_handle *hd = argc == 1 ? get_handle(env, argv[0]) : NULL;
  if (hd == NULL) return NULL;
  close_handle(hd);
  CHECK(env, napi_get_undefined(env, &undefined));
  return undefined;
}

static napi_value js_now(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value v;
  CHECK(env, napi_create_double(env, (double)fp_now_ms(), &v));
  return v;
}

static napi_value js_reuseport_group(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t family, port, count;
  char address[64];
  size_t alen;
  if (argc != 4 || napi_get_value_int32(env, argv[0], &family) != napi_ok ||
      napi_get_value_string_utf8(env, argv[1], address, sizeof(address), &alen) != napi_ok ||
      napi_get_value_int32(env, argv[2], &port) != napi_ok ||
      napi_get_value_int32(env, argv[3], &count) != napi_ok || (family != 4 && family != 6) ||
      port < 0 || port > 65535) {
    napi_throw_type_error(env, "VPNLB_FASTPATH", "reuseportGroup(family 4|6, address, port, count)");
    return NULL;
  }
  int fds[RP_MAX_SOCKETS];
  int bound = port;
  char err[256];
  if (rp_group(family, address, port, count, fds, &bound, err, sizeof(err)) != 0) {
    const char *code = errno == EADDRINUSE ? "EADDRINUSE" : errno == EACCES ? "EACCES"
                       : errno == EADDRNOTAVAIL ? "EADDRNOTAVAIL" : "VPNLB_FASTPATH";
    napi_throw_error(env, code, err);
    return NULL;
  }
  napi_value result, list, v;
  CHECK(env, napi_create_object(env, &result));
  CHECK(env, napi_create_array_with_length(env, (size_t)count, &list));
  for (int i = 0; i < count; i++) {
    CHECK(env, napi_create_int32(env, fds[i], &v));
    CHECK(env, napi_set_element(env, list, (uint32_t)i, v));
  }
  CHECK(env, napi_create_int32(env, bound, &v));
  CHECK(env, napi_set_named_property(env, result, "port", v));
  CHECK(env, napi_set_named_property(env, result, "fds", list));
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"install", NULL, js_install, NULL, NULL, NULL, napi_default, NULL},
      {"remove", NULL, js_remove, NULL, NULL, NULL, napi_default, NULL},
      {"poll", NULL, js_poll, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"now", NULL, js_now, NULL, NULL, NULL, napi_default, NULL},
      {"reuseportGroup", NULL, js_reuseport_group, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
