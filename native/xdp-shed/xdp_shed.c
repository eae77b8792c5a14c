/*
 * N-API binding of the relay's XDP flood shedding (xdp_shed.h). Loaded, optionally, by
 * src/dataplane/relay/relay-xdp-shed.ts; without it the relay sheds with an nftables table.
 * Plain C and N-API only (ABI-stable across Node versions, no node-addon-api).
 *
 *   open(family, vip, ports, maxFlows) -> id   family 4|6, vip a Buffer of 4|16 bytes,
 *       ports up to 8 numbers, maxFlows the flows map's size. Loads the program (CAP_BPF,
 *       CAP_NET_ADMIN). Throws with the reason (the verifier's log tail when refused).
 *   attach(id, ifname, allowGeneric) -> 'native' | 'generic'
 *   setLimits(id, establishedPerSecond, unknownPerSecond)   0: unlimited
 *   flow(id, add, address, sport, dport)                     address a Buffer of 4|16 bytes
 *   counts(id) -> [establishedDrops, unknownDrops]
 *   run(id, frame, repeat) -> dropped                        frame a Buffer (an Ethernet frame);
 *       runs the program on it `repeat` times in a row without a device (BPF_PROG_TEST_RUN):
 *       how many the limits dropped, exact on a shed not attached anywhere. For tests and
 *       diagnostics.
 *   close(id)                                                detaches and frees
 * Errors carry code VPNLB_XDP_SHED.
 */
#include <node_api.h>

#define ADDON_ERROR_CODE "VPNLB_XDP_SHED"
#include "napi_util.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xdp_shed.h"

#define MAX_SHEDS 64
static xs_shed *sheds[MAX_SHEDS];

static xs_shed *shed_arg(napi_env env, napi_value v) {
  uint32_t id;
  if (napi_get_value_uint32(env, v, &id) != napi_ok || id >= MAX_SHEDS || !sheds[id]) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "no such shed id");
    return NULL;
  }
  return sheds[id];
}

static int buffer_arg(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return -1;
  void *d;
  if (napi_get_buffer_info(env, v, &d, len) != napi_ok) return -1;
  *data = d;
  return 0;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t family = 0, nports = 0, max_flows = 0;
  const uint8_t *vip = NULL;
  size_t vlen = 0;
  bool is_array = false;
  if (argc != 4 || napi_get_value_uint32(env, argv[0], &family) != napi_ok ||
      buffer_arg(env, argv[1], &vip, &vlen) < 0 || vlen != (family == 4 ? 4u : 16u) ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nports) != napi_ok || nports < 1 ||
      nports > XS_MAX_PORTS || napi_get_value_uint32(env, argv[3], &max_flows) != napi_ok) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "open(family, vip, ports, maxFlows): bad arguments");
    return NULL;
  }
  uint16_t ports[XS_MAX_PORTS];
  for (uint32_t i = 0; i < nports; i++) {
    napi_value e;
    uint32_t p;
    if (napi_get_element(env, argv[2], i, &e) != napi_ok ||
        napi_get_value_uint32(env, e, &p) != napi_ok || p < 1 || p > 65535) {
      napi_throw_type_error(env, ADDON_ERROR_CODE, "open(): ports must be 1-65535");
      return NULL;
    }
    ports[i] = (uint16_t)p;
  }
  int slot = -1;
  for (int i = 0; i < MAX_SHEDS && slot < 0; i++)
    if (!sheds[i]) slot = i;
  if (slot < 0) {
    napi_throw_error(env, ADDON_ERROR_CODE, "too many sheds open");
    return NULL;
  }
  xs_shed *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, ADDON_ERROR_CODE, "out of memory");
    return NULL;
  }
  char err[1024];
  int rc = xs_open(s, (int)family, vip, ports, (int)nports, max_flows, err, sizeof err);
  if (rc < 0) {
    free(s);
    napi_throw_error(env, ADDON_ERROR_CODE, err);
    return NULL;
  }
  sheds[slot] = s;
  napi_value id;
  CHECK(env, napi_create_uint32(env, (uint32_t)slot, &id));
  return id;
}

static napi_value js_attach(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "attach(id, ifname, allowGeneric): bad arguments");
    return NULL;
  }
  xs_shed *s = shed_arg(env, argv[0]);
  if (!s) return NULL;
  char ifname[XS_IFNAME_MAX];
  size_t len = 0;
  bool generic = false;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok || len == 0 ||
      len >= sizeof ifname ||
      napi_get_value_string_utf8(env, argv[1], ifname, sizeof ifname, &len) != napi_ok ||
      napi_get_value_bool(env, argv[2], &generic) != napi_ok) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "attach(): bad interface name");
    return NULL;
  }
  char err[256];
  int rc = xs_attach(s, ifname, generic, err, sizeof err);
  if (rc < 0) {
    napi_throw_error(env, ADDON_ERROR_CODE, err);
    return NULL;
  }
  napi_value mode;
  CHECK(env, napi_create_string_utf8(env, rc == 1 ? "generic" : "native", NAPI_AUTO_LENGTH, &mode));
  return mode;
}

static int u64_arg(napi_env env, napi_value v, uint64_t *out) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0) || d > 1e15) return -1;
  *out = (uint64_t)d;
  return 0;
}

static napi_value js_set_limits(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint64_t est, unk;
  if (argc != 3 || u64_arg(env, argv[1], &est) < 0 || u64_arg(env, argv[2], &unk) < 0) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "setLimits(id, established, unknown): bad arguments");
    return NULL;
  }
  xs_shed *s = shed_arg(env, argv[0]);
  if (!s) return NULL;
  xs_set_limits(s, est, unk);
  return NULL;
}

static napi_value js_flow(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool add = false;
  const uint8_t *addr = NULL;
  size_t alen = 0;
  uint32_t sport = 0, dport = 0;
  if (argc != 5 || napi_get_value_bool(env, argv[1], &add) != napi_ok ||
      buffer_arg(env, argv[2], &addr, &alen) < 0 ||
      napi_get_value_uint32(env, argv[3], &sport) != napi_ok || sport > 65535 ||
      napi_get_value_uint32(env, argv[4], &dport) != napi_ok || dport > 65535) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "flow(id, add, address, sport, dport): bad arguments");
    return NULL;
  }
  xs_shed *s = shed_arg(env, argv[0]);
  if (!s) return NULL;
  if (alen != (s->family == 4 ? 4u : 16u)) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "flow(): address of the wrong family");
    return NULL;
  }
  int rc = xs_flow(s, addr, (uint16_t)sport, (uint16_t)dport, add);
  if (rc < 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "cannot %s a flow: %s%s", add ? "add" : "remove", strerror(-rc),
             rc == -E2BIG ? " (the flows map is full)" : "");
    napi_throw_error(env, ADDON_ERROR_CODE, msg);
  }
  return NULL;
}

static napi_value js_counts(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  xs_shed *s = argc == 1 ? shed_arg(env, argv[0]) : NULL;
  if (!s) return NULL;
  uint64_t est, unk;
  xs_counts(s, &est, &unk);
  double v[2] = {(double)est, (double)unk};
  return f64_array(env, v, 2);
}

static napi_value js_run(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const uint8_t *frame = NULL;
  size_t len = 0;
  uint32_t repeat = 0;
  if (argc != 3 || buffer_arg(env, argv[1], &frame, &len) < 0 || len < 14 || len > 4096 ||
      napi_get_value_uint32(env, argv[2], &repeat) != napi_ok || repeat < 1 || repeat > 1000000) {
    napi_throw_type_error(env, ADDON_ERROR_CODE,
                          "run(id, frame, repeat): a frame of 14-4096 bytes, repeat 1-1000000");
    return NULL;
  }
  xs_shed *s = shed_arg(env, argv[0]);
  if (!s) return NULL;
  uint64_t dropped = 0;
  char err[160];
  if (xs_run(s, frame, (uint32_t)len, repeat, &dropped, err, sizeof err) < 0) {
    napi_throw_error(env, ADDON_ERROR_CODE, err);
    return NULL;
  }
  napi_value v;
  CHECK(env, napi_create_double(env, (double)dropped, &v));
  return v;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t id;
  if (argc != 1 || napi_get_value_uint32(env, argv[0], &id) != napi_ok || id >= MAX_SHEDS) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "close(id): bad arguments");
    return NULL;
  }
  if (sheds[id]) {
    xs_close(sheds[id]);
    free(sheds[id]);
    sheds[id] = NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {{"open", js_open},     {"attach", js_attach}, {"setLimits", js_set_limits},
             {"flow", js_flow},     {"counts", js_counts}, {"run", js_run},
             {"close", js_close}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    CHECK(env, napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn));
    CHECK(env, napi_set_named_property(env, exports, fns[i].name, fn));
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
