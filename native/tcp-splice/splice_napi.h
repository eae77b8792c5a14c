/*
 * What the native front's binding (front_napi.c) needs from the splice engine's (tcp_splice.c).
 */
#ifndef VPNLB_SPLICE_NAPI_H
#define VPNLB_SPLICE_NAPI_H

#include <node_api.h>

#include "splice.h"

/* 1 with *out set, 0 when the engine is closed, -1 (a pending error) when `v` is no handle. */
int splice_engine_of(napi_env env, napi_value v, ts_engine **out);
/* Adds frontOpen ... frontStop to the module's exports; 0, or -1. */
int front_register(napi_env env, napi_value exports);

#endif
