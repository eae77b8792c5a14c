/*
 * N-API binding of the native counter reader (counters.h). Loaded, optionally, by
 * src/dataplane/kernel/nft-counters.ts; without it counters are read with `nft -j list counters`.
 * Plain C and N-API only (ABI-stable across Node versions, no node-addon-api).
 *
 *   read(family, table, netnsPath) -> [{ table, family, name, packets, bytes }, ...]
 *       family: NFPROTO_* (0: every family); table: '' for every table; netnsPath: '' for the
 *       process's own network namespace, else a path such as /run/netns/NAME (CAP_SYS_ADMIN).
 *       Synchronous: one netlink dump of the counters only (well under a millisecond for a
 *       vpnlb table). Throws an Error with code VPNLB_NFT_COUNTERS and the errno's text.
 */
#include <node_api.h>

#define ADDON_ERROR_CODE "VPNLB_NFT_COUNTERS"
#include "napi_util.h"
#include <stdio.h>
#include <string.h>

#include "counters.h"

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len >= size) return -1;
  return napi_get_value_string_utf8(env, v, buf, size, &len) == napi_ok ? 0 : -1;
}

static int set_string(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) != napi_ok) return -1;
  return napi_set_named_property(env, obj, key, v) == napi_ok ? 0 : -1;
}

static int set_number(napi_env env, napi_value obj, const char *key, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) != napi_ok) return -1;
  return napi_set_named_property(env, obj, key, v) == napi_ok ? 0 : -1;
}

static napi_value read_counters(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t family = 0;
  char table[NC_NAME_MAX];
  char netns[4096];
  if (argc != 3 || napi_get_value_uint32(env, argv[0], &family) != napi_ok || family > 255 ||
      get_string(env, argv[1], table, sizeof table) < 0 ||
      get_string(env, argv[2], netns, sizeof netns) < 0) {
    napi_throw_type_error(env, ADDON_ERROR_CODE, "read(family, table, netnsPath): bad arguments");
    return NULL;
  }
  nc_list list = {0};
  int rc = nc_read((uint8_t)family, table, netns, &list);
  if (rc < 0) {
    nc_free(&list);
    char msg[320];
    snprintf(msg, sizeof msg, "netlink counter dump failed: %s", strerror(-rc));
    napi_throw_error(env, ADDON_ERROR_CODE, msg);
    return NULL;
  }
  napi_value result;
  if (napi_create_array_with_length(env, list.len, &result) != napi_ok) goto fail;
  for (size_t i = 0; i < list.len; i++) {
    const nc_counter *c = &list.items[i];
    napi_value obj;
    if (napi_create_object(env, &obj) != napi_ok || set_string(env, obj, "table", c->table) < 0 ||
        set_string(env, obj, "name", c->name) < 0 || set_number(env, obj, "family", c->family) < 0 ||
        set_number(env, obj, "packets", (double)c->packets) < 0 ||
        set_number(env, obj, "bytes", (double)c->bytes) < 0 ||
        napi_set_element(env, result, (uint32_t)i, obj) != napi_ok)
      goto fail;
  }
  nc_free(&list);
  return result;
fail:
  nc_free(&list);
  napi_throw_error(env, ADDON_ERROR_CODE, "N-API call failed while building the result");
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  CHECK(env, napi_create_function(env, "read", NAPI_AUTO_LENGTH, read_counters, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "read", fn));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
