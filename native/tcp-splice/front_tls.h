/*
 * TLS termination for the native front (front.h) in offload mode: the front's TLS context,
 * each client's handshake, and the relay of an established tunnel (plaintext to and from the
 * server, TLS to and from the client), with the OpenSSL that Node itself carries (its headers
 * come with Node's; its symbols are the running node's).
 *
 * Nothing here decides anything: the front (front_core.c) calls these on the JavaScript thread
 * and tells JavaScript of each step.
 */
#ifndef VPNLB_TCP_FRONT_TLS_H
#define VPNLB_TCP_FRONT_TLS_H

#include <stddef.h>
#include <stdint.h>

/* Plaintext octets buffered per direction of a tunnel (one TLS record's worth). */
#define TT_BUF 16384

typedef struct tt_ctx tt_ctx;
typedef struct ssl_st tt_ssl;

typedef struct {
  const uint8_t *cert, *key; /* PEM: the certificate (then its chain), and its private key */
  size_t cert_len, key_len;
  const char *ciphers;      /* TLS 1.2 cipher list */
  const char *ciphersuites; /* TLS 1.3 suites */
  const char *groups;       /* key-exchange groups, in order of preference */
} tt_options;

/* The context, or NULL with `err` (a sentence from OpenSSL) filled in. */
tt_ctx *tt_ctx_new(const tt_options *o, char *err, size_t err_len);
void tt_ctx_free(tt_ctx *t);

/* A server-side TLS connection on `fd` (NULL when out of memory). */
tt_ssl *tt_new(tt_ctx *t, int fd);
void tt_free(tt_ssl *s);

enum { TT_WAIT = 0, TT_DONE = 1, TT_EOF = 2, TT_FAILED = 3, TT_WAIT_WRITE = 4 };

/* Advances the handshake: TT_DONE, TT_WAIT (a read edge will come), TT_WAIT_WRITE (the socket
 * must be watched for writing), TT_EOF (the client closed or reset before it completed; *err_no
 * the errno, 0 on a plain close) or TT_FAILED; `err` says why for both. */
int tt_handshake(tt_ssl *s, int *err_no, char *err, size_t err_len);
/* The negotiated protocol ("TLSv1.3"...). */
const char *tt_version(const tt_ssl *s);

/* One tunnel's relay state: what is waiting to be written in each direction (the buffers are
 * allocated while octets wait, freed when none do). */
typedef struct {
  uint8_t *up, *down; /* client -> server plaintext, server -> client plaintext (TT_BUF each) */
  uint32_t up_len, up_off, down_len, down_off;
  uint8_t up_eof, answered;
  uint8_t down_eof; /* 1: the server ended, close_notify not yet out; 2: it is, and the FIN */
  uint64_t to_backend, to_client;
} tt_relay;

enum {
  TT_R_ANSWER = 1, /* the server's first octets came in this pump */
  TT_R_ENDED = 2,  /* both directions ended (cleanly): close the tunnel */
  TT_R_ERROR = 4,  /* a socket or TLS error: close the tunnel (*err_no; 0 for a TLS error) */
  TT_R_ACTIVE = 8, /* octets moved */
  TT_R_MORE = 16,  /* it yielded with work left: no edge will say so, the caller re-arms */
  TT_R_CLIENT_OUT = 32, /* TLS waits until the client's socket can be written */
};

/* Moves what both sides allow, until neither socket can go further without an edge or a bound
 * of rounds is reached (TT_R_MORE: one bulk tunnel must not hold up the others). A flag set
 * (TT_R_*). Allocates the buffers on first use (TT_R_ERROR, ENOMEM, when it cannot). On a TLS
 * error (*err_no EPROTO) `why` receives OpenSSL's reason (a bad record MAC, the client's alert). */
int tt_pump(tt_relay *r, tt_ssl *s, int cfd, int bfd, int *err_no, char *why, size_t why_len);
void tt_relay_free(tt_relay *r);

#endif
