/*
 * TLS for the native front in offload mode (front_tls.h).
 *
 * The context mirrors the proxy's Node front (sstp-proxy.ts FRONT_TLS_OPTIONS): TLS 1.2 and
 * 1.3, the server's cipher order, the same lists, session tickets on with keys per process and
 * no server-side session cache (Node's front keeps none either). Renegotiation is refused (a
 * client could make the balancer redo public-key work at will), and a client that closes
 * without close_notify ends its stream like one that sends it (Windows does not always send it).
 *
 * Reads are ahead (one read(2) takes as many records as OpenSSL's buffer holds, not one header
 * and one body at a time) and writes may be partial, so a full socket never holds a whole buffer
 * back. Idle tunnels give their buffers back, OpenSSL's (SSL_MODE_RELEASE_BUFFERS, as nginx and
 * Node set it) and the relay's own: SSTP tunnels are mostly idle, and there are many.
 *
 * OpenSSL's error queue is per thread and this is the JavaScript thread, which Node's own TLS
 * shares: it is cleared before every call here and left empty after.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "front_tls.h"

struct tt_ctx {
  SSL_CTX *ctx;
};

/* Rounds of a pump before it yields (tt_pump): 32 records per direction, 512 KiB. */
#define PUMP_ROUNDS 32

static void say(char *err, size_t len, const char *what) {
  unsigned long e = ERR_peek_last_error();
  char detail[256] = "";
  if (e != 0) ERR_error_string_n(e, detail, sizeof detail);
  snprintf(err, len, "%s%s%s", what, e != 0 ? ": " : "", detail);
  ERR_clear_error();
}

/* An encrypted private key would make OpenSSL ask the terminal for its passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

static int load_pem(SSL_CTX *ctx, const tt_options *o, char *err, size_t len) {
  BIO *bio = BIO_new_mem_buf(o->cert, (int)o->cert_len);
  if (bio == NULL) return say(err, len, "certificate"), -1;
  X509 *x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
  int ok = x != NULL && SSL_CTX_use_certificate(ctx, x) == 1;
  X509_free(x);
  if (!ok) {
    BIO_free(bio);
    return say(err, len, "certificate"), -1;
  }
  /* The rest of the file: the chain, sent after the certificate as Node sends it. */
  X509 *ca;
  while ((ca = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
    if (SSL_CTX_add0_chain_cert(ctx, ca) != 1) {
      X509_free(ca);
      BIO_free(bio);
      return say(err, len, "certificate chain"), -1;
    }
  }
  ERR_clear_error(); /* the end of the file ("no start line") */
  BIO_free(bio);
  bio = BIO_new_mem_buf(o->key, (int)o->key_len);
  if (bio == NULL) return say(err, len, "private key"), -1;
  EVP_PKEY *k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
  ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1;
  EVP_PKEY_free(k);
  BIO_free(bio);
  if (!ok) return say(err, len, "private key"), -1;
  if (SSL_CTX_check_private_key(ctx) != 1) return say(err, len, "the private key does not match the certificate"), -1;
  return 0;
}

tt_ctx *tt_ctx_new(const tt_options *o, char *err, size_t err_len) {
  ERR_clear_error();
  tt_ctx *t = calloc(1, sizeof *t);
  if (t == NULL) {
    snprintf(err, err_len, "out of memory");
    return NULL;
  }
  SSL_CTX *ctx = t->ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == NULL) {
    say(err, err_len, "SSL_CTX_new");
    free(t);
    return NULL;
  }
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_read_ahead(ctx, 1);
  const char *what = NULL;
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) what = "minimum version";
  else if (SSL_CTX_set_cipher_list(ctx, o->ciphers) != 1) what = "ciphers";
  else if (SSL_CTX_set_ciphersuites(ctx, o->ciphersuites) != 1) what = "TLS 1.3 cipher suites";
  else if (SSL_CTX_set1_groups_list(ctx, o->groups) != 1) what = "groups";
  if (what != NULL) say(err, err_len, what);
  if (what != NULL || load_pem(ctx, o, err, err_len) != 0) {
    tt_ctx_free(t);
    return NULL;
  }
  return t;
}

void tt_ctx_free(tt_ctx *t) {
  if (t == NULL) return;
  SSL_CTX_free(t->ctx);
  free(t);
}

tt_ssl *tt_new(tt_ctx *t, int fd) {
  SSL *s = SSL_new(t->ctx);
  if (s != NULL && SSL_set_fd(s, fd) == 1) {
    SSL_set_accept_state(s);
    return s;
  }
  SSL_free(s);
  ERR_clear_error();
  return NULL;
}

void tt_free(tt_ssl *s) {
  SSL_free(s);
}

int tt_handshake(tt_ssl *s, int *err_no, char *err, size_t err_len) {
  ERR_clear_error();
  errno = 0;
  int rc = SSL_do_handshake(s);
  if (rc == 1) {
    ERR_clear_error(); /* a success may leave entries (a ticket that did not decrypt...) */
    return TT_DONE;
  }
  int e = SSL_get_error(s, rc);
  int saved = errno;
  if (e == SSL_ERROR_WANT_READ) return TT_WAIT;
  if (e == SSL_ERROR_WANT_WRITE) return TT_WAIT_WRITE;
  if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
    *err_no = e == SSL_ERROR_SYSCALL ? saved : 0;
    ERR_clear_error();
    /* Nothing read at all: a client that connected and left (a port scan, a health check). */
    snprintf(err, err_len, "%s%s%s",
             BIO_number_read(SSL_get_rbio(s)) == 0 ? "client closed without sending anything"
                                                   : "client closed before completing the TLS handshake",
             *err_no != 0 ? ": " : "", *err_no != 0 ? strerror(*err_no) : "");
    return TT_EOF;
  }
  say(err, err_len, "TLS handshake");
  return TT_FAILED;
}

const char *tt_version(const tt_ssl *s) {
  return SSL_get_version(s);
}

/* Whether an SSL call's failure is only "wait for an edge" (TT_R_CLIENT_OUT added to *out when
 * the edge is the client socket's writability). Otherwise *err_no says why (EPROTO for a TLS
 * error, whose reason stays in OpenSSL's queue for tt_pump to read). */
static int tls_waits(tt_ssl *s, int rc, int *out, int *err_no) {
  int e = SSL_get_error(s, rc);
  if (e == SSL_ERROR_WANT_WRITE) *out |= TT_R_CLIENT_OUT;
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 1;
  *err_no = e == SSL_ERROR_SYSCALL && errno != 0 ? errno : EPROTO;
  return 0;
}

static int socket_waits(int *err_no) {
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 1;
  *err_no = errno;
  return 0;
}

static int pump(tt_relay *r, tt_ssl *s, int cfd, int bfd, int *err_no);

int tt_pump(tt_relay *r, tt_ssl *s, int cfd, int bfd, int *err_no, char *why, size_t why_len) {
  if (r->up == NULL && (r->up = malloc(TT_BUF)) == NULL) return *err_no = ENOMEM, TT_R_ERROR;
  if (r->down == NULL && (r->down = malloc(TT_BUF)) == NULL) return *err_no = ENOMEM, TT_R_ERROR;
  int out = pump(r, s, cfd, bfd, err_no);
  /* Every SSL call in the pump starts from an empty queue: what is in it now is the error that
   * ended the pump. */
  if ((out & TT_R_ERROR) && *err_no == EPROTO && why_len > 0 && ERR_peek_last_error() != 0)
    say(why, why_len, "TLS");
  ERR_clear_error();
  if (r->up_len == 0 && r->down_len == 0) tt_relay_free(r); /* nothing waits: an idle tunnel holds no buffer */
  return out;
}

static int pump(tt_relay *r, tt_ssl *s, int cfd, int bfd, int *err_no) {
  int out = 0;
  for (int round = 0; round < PUMP_ROUNDS; round++) {
    int moved = 0;
    /* Client to server: what was decrypted goes out first, then the next record is read. */
    if (!r->up_eof) {
      if (r->up_off < r->up_len) {
        ssize_t n = send(bfd, r->up + r->up_off, r->up_len - r->up_off, MSG_NOSIGNAL);
        if (n > 0) {
          r->up_off += (uint32_t)n;
          r->to_backend += (uint64_t)n;
          moved = 1;
        } else if (n < 0 && !socket_waits(err_no)) {
          return out | TT_R_ERROR;
        }
      }
      if (r->up_off == r->up_len) {
        r->up_off = r->up_len = 0;
        size_t got = 0;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_read_ex(s, r->up, TT_BUF, &got);
        if (rc == 1) {
          r->up_len = (uint32_t)got;
          moved = 1;
        } else if (SSL_get_error(s, rc) == SSL_ERROR_ZERO_RETURN) {
          ERR_clear_error();
          r->up_eof = 1; /* the client is done sending: so is the server's side of the tunnel */
          shutdown(bfd, SHUT_WR);
          moved = 1;
        } else if (!tls_waits(s, rc, &out, err_no)) {
          return out | TT_R_ERROR;
        }
      }
    }
    /* Server to client: what was read is encrypted out first, then the server is read again. */
    if (!r->down_eof) {
      if (r->down_off < r->down_len) {
        size_t w = 0;
        ERR_clear_error();
        errno = 0;
        int rc = SSL_write_ex(s, r->down + r->down_off, r->down_len - r->down_off, &w);
        if (rc == 1) {
          r->down_off += (uint32_t)w;
          r->to_client += (uint64_t)w;
          moved = 1;
        } else if (!tls_waits(s, rc, &out, err_no)) {
          return out | TT_R_ERROR;
        }
      }
      if (r->down_off == r->down_len) {
        r->down_off = r->down_len = 0;
        ssize_t n = read(bfd, r->down, TT_BUF);
        if (n > 0) {
          r->down_len = (uint32_t)n;
          moved = 1;
          if (!r->answered) {
            r->answered = 1;
            out |= TT_R_ANSWER;
          }
        } else if (n == 0) {
          r->down_eof = 1; /* the server is done: close_notify goes next */
          moved = 1;
        } else if (!socket_waits(err_no)) {
          return out | TT_R_ERROR;
        }
      }
    }
    /* close_notify, then the client's half of the TCP connection; the alert may have to wait
     * for room in the client's socket like any record (a FIN before it would cut it). */
    if (r->down_eof == 1) {
      ERR_clear_error();
      errno = 0;
      int rc = SSL_shutdown(s);
      if (rc >= 0 || !tls_waits(s, rc, &out, err_no)) {
        ERR_clear_error();
        r->down_eof = 2; /* sent, or the client is gone (its direction will say so) */
        shutdown(cfd, SHUT_WR);
        moved = 1;
      }
    }
    if (r->up_eof && r->down_eof == 2) return out | TT_R_ENDED;
    if (!moved) return out;
    out |= TT_R_ACTIVE;
  }
  return out | TT_R_MORE;
}

void tt_relay_free(tt_relay *r) {
  free(r->up);
  free(r->down);
  r->up = r->down = NULL;
}
