/*
 * The SSTP proxy's native front, with no Node socket, stream or timer per connection:
 * - passthrough: accept, read the ClientHello, dial the backend JavaScript chose, send the
 *   hello, wait for the server's first octets and hand both sockets to the splice engine
 *   (splice.h);
 * - offload (tf_options.tls set): accept, complete the TLS handshake (front_tls.h), dial the
 *   backend JavaScript chose, then relay the tunnel here until it ends: TLS with the client,
 *   plaintext with the server.
 *
 * JavaScript keeps every decision (src/dataplane/sstp/sstp-native-front.ts): it is told of each
 * step through `emit` and answers with tf_dial / tf_splice / tf_close / tf_more. The limits at
 * accept, the choice of backend, persistence, retries, deadlines, metrics and logs are all
 * JavaScript's; this file only does the system calls.
 *
 * Runs on the JavaScript thread: the N-API layer polls tf_fd() in libuv's loop and calls
 * tf_run() when it is readable. `emit` may call back into this file (tf_dial, tf_close, ...)
 * before it returns; every epoll event carries its connection's generation, so events of a
 * connection closed meanwhile are recognised as stale.
 */
#ifndef VPNLB_TCP_FRONT_H
#define VPNLB_TCP_FRONT_H

#include <stddef.h>
#include <stdint.h>

#include "front_tls.h"
#include "splice.h"

/* Connections (any phase before the splice) at most: ids are gen * 2^21 + slot. */
#define TF_MAX_CONNS (1u << 21)
/* Octets of the server's first answer passed to JavaScript (a ServerHello fits many times). */
#define TF_PEEK_BYTES 4096
/* Milliseconds of work per tf_run, checked between batches of events (TLS relays can be bulk). */
#define TF_RUN_MS 2

enum tf_event {
  TF_EV_ACCEPT = 1,    /* a: client port; addr: client address */
  TF_EV_HELLO = 2,     /* data: the octets read (a complete hello, or what came before EOF / an invalid header); a: 1 at EOF */
  TF_EV_CONNECTED = 3, /* the backend connection is up; the hello is being sent */
  TF_EV_ANSWER = 4,    /* data: the server's first octets (peeked, still in the socket): splice or close */
  TF_EV_FAILED = 5,    /* a: enum tf_failure, b: errno (0: closed); the connection is gone, except TF_F_CONNECT */
  TF_EV_ACCEPT_ERROR = 6, /* b: errno of accept(); the listener pauses until tf_rearm */
  TF_EV_OVERFLOW = 7,  /* a connection accepted and closed at once: the table is full */
  /* Offload only. ANSWER there has no data: the server's first octets are on their way. */
  TF_EV_SECURE = 8,    /* the TLS handshake is complete; addr: the protocol ("TLSv1.3") */
  TF_EV_ENDED = 9,     /* the tunnel is over and gone: a: errno (0: both sides ended); data: the
                          octets relayed to the server and to the client, two doubles, then
                          for a TLS error (EPROTO) OpenSSL's reason as text */
};

enum tf_failure {
  TF_F_CLIENT = 1,       /* the client closed or failed (read error, hang-up) */
  TF_F_TOO_LARGE = 2,    /* more than max_hello octets without a complete hello */
  TF_F_HELLO_MEMORY = 3, /* the hello memory budget is spent */
  TF_F_CONNECT = 4,      /* the backend connection failed; the client is kept: dial again or close */
  TF_F_BACKEND = 5,      /* the backend closed or failed before its first octets */
  TF_F_TLS_EOF = 6,      /* offload: the client closed before the TLS handshake was complete; addr: how */
  TF_F_TLS = 7,          /* offload: the TLS handshake failed; addr: why */
};

typedef void (*tf_emit_fn)(void *ctx, int kind, double id, double a, double b, const uint8_t *data, size_t len, const char *addr);

typedef struct tf_front tf_front;

typedef struct {
  int family; /* 4 or 6 */
  uint8_t addr[16];
  uint16_t port;
  int backlog;
  int reuse_port; /* SO_REUSEPORT: listen beside other processes' fronts (worker processes) */
  uint32_t max_conns;
  uint32_t max_hello_length; /* a ClientHello announcing more is passed on at once (JavaScript refuses it) */
  uint32_t max_hello;   /* octets held per connection before TF_F_TOO_LARGE */
  uint32_t small_hello; /* octets per connection not counted in the budget */
  uint64_t budget;      /* octets beyond small_hello, all connections together */
  tt_ctx *tls;          /* offload: the TLS context, the front's from tf_create on (even when it fails) */
} tf_options;

/* NULL with *err_no and *what set on failure. */
tf_front *tf_create(const tf_options *o, tf_emit_fn emit, void *ctx, int *err_no, const char **what);
int tf_fd(const tf_front *f);
int tf_port(const tf_front *f);
/* Handles what is ready (at most `budget` epoll events, and about TF_RUN_MS: the epoll
 * descriptor stays readable for what is left). */
void tf_run(tf_front *f, int budget);
/* 0, or -errno (-ESTALE: no such connection waiting for a backend). An attempt still
 * connecting is abandoned first (JavaScript's connectTimeout). */
int tf_dial(tf_front *f, double id, int family, const uint8_t addr[16], uint16_t port);
/* The engine's slot (the sockets are the engine's now), or a negative ts_add code, or -100 (no
 * such connection with an answer). */
int tf_splice(tf_front *f, double id, ts_engine *engine);
/* Reads more of the hello (JavaScript's reader needs more than the framing said). 0 or -1. */
int tf_more(tf_front *f, double id);
/* Closes a connection's sockets. 0, or -1 when it is not (or no longer) here. */
int tf_close(tf_front *f, double id);
/* Offload: the octets a tunnel relayed so far (to the server, to the client). 0, or -1 when it
 * is not (or not yet) relaying. */
int tf_counters(tf_front *f, double id, double out[2]);
/* Offload: up to `max` ids of tunnels with no octet relayed for `idle_ms`; how many. */
uint32_t tf_idle(tf_front *f, double idle_ms, double *ids, uint32_t max);
/* Listens again after TF_EV_ACCEPT_ERROR. */
void tf_rearm(tf_front *f);
/* Hello octets held beyond small_hello, and connections held. */
uint64_t tf_held(const tf_front *f);
uint32_t tf_count(const tf_front *f);
/* Stops accepting and handling events (tf_run returns at once): a stop from within an event. */
void tf_halt(tf_front *f);
/* Closes the listener and every connection, and frees. */
void tf_destroy(tf_front *f);

#endif
