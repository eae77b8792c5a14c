/*
 * The native front (front.h), on the JavaScript thread, per connection:
 * - passthrough: HELLO -> DECIDING -> CONNECTING -> SENDING -> ANSWER -> handed to the splice
 *   engine;
 * - offload: TLS (handshake) -> DECIDING -> CONNECTING -> RELAY (front_tls.c) until it ends.
 *
 * Both sockets are registered once, edge-triggered, for everything they will report (no
 * EPOLL_CTL_MOD per phase: each system call is a measurable part of a connection's cost).
 * The client is read until its hello is complete; after that, octets it sends wait in the
 * kernel (no new edge is acted on but a hang-up) until the splice engine moves them. The
 * server's answer is peeked, never read: it is still there for the splice engine.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "front.h"

enum { C_FREE = 0, C_HELLO, C_DECIDING, C_CONNECTING, C_SENDING, C_ANSWER, C_TLS, C_RELAY };

#define LISTEN_TOKEN UINT64_MAX
#define ID_SLOT_BITS 21
#define INITIAL_BUF 2048
#define ACCEPTS_PER_EVENT 64

typedef struct {
  int cfd, bfd;
  uint32_t gen;
  uint8_t state;
  uint8_t out_armed; /* offload: the client socket is watched for writing too */
  uint8_t *buf;
  uint32_t len, cap, sent;
  tt_ssl *ssl;      /* offload */
  tt_relay *relay;  /* offload, from RELAY on */
  int64_t last;     /* offload: when the relay last moved octets (ts_now_ms) */
} tf_conn;

struct tf_front {
  int lfd, epfd, listening, halted;
  int port;
  tf_conn *c;
  uint32_t max_conns, used; /* slots ever used (c[0..used)) */
  uint32_t *free_slots, nfree, count;
  uint32_t max_hello_length, max_hello, small_hello;
  uint64_t budget, held;
  tt_ctx *tls; /* offload */
  int64_t now; /* ts_now_ms() at the start of the current run */
  tf_emit_fn emit;
  void *ctx;
};

static uint64_t token(uint32_t gen, uint32_t slot, int side) {
  return ((uint64_t)gen << 32) | ((uint64_t)slot << 1) | (uint64_t)side;
}

static double id_of(const tf_conn *c, uint32_t slot) {
  return (double)c->gen * (double)(1u << ID_SLOT_BITS) + (double)slot;
}

/* The connection an id names, or NULL when it is gone (slot reused or freed). */
static tf_conn *by_id(tf_front *f, double id, uint32_t *slot_out) {
  if (!(id >= 0) || id > 9007199254740991.0 || id != (double)(uint64_t)id) return NULL;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v & ((1u << ID_SLOT_BITS) - 1));
  uint32_t gen = (uint32_t)(v >> ID_SLOT_BITS);
  if (slot >= f->used) return NULL;
  tf_conn *c = &f->c[slot];
  if (c->state == C_FREE || c->gen != gen) return NULL;
  *slot_out = slot;
  return c;
}

static uint64_t over_small(const tf_front *f, uint32_t len) {
  return len > f->small_hello ? len - f->small_hello : 0;
}

static void drop_buf(tf_front *f, tf_conn *c) {
  f->held -= over_small(f, c->len);
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = c->sent = 0;
}

/* Frees the slot; closes the sockets unless they were handed on (fd -1). */
static void release(tf_front *f, tf_conn *c, uint32_t slot) {
  if (c->cfd >= 0) close(c->cfd); /* close() also removes it from the epoll set */
  if (c->bfd >= 0) close(c->bfd);
  drop_buf(f, c);
  if (c->ssl != NULL) tt_free(c->ssl); /* its socket BIO does not close the socket */
  if (c->relay != NULL) {
    tt_relay_free(c->relay);
    free(c->relay);
  }
  c->ssl = NULL;
  c->relay = NULL;
  c->out_armed = 0;
  c->cfd = c->bfd = -1;
  c->state = C_FREE;
  c->gen++;
  f->free_slots[f->nfree++] = slot;
  f->count--;
}

static int watch(tf_front *f, int op, int fd, uint32_t events, tf_conn *c, uint32_t slot, int side) {
  struct epoll_event ev = {.events = events, .data.u64 = token(c->gen, slot, side)};
  return epoll_ctl(f->epfd, op, fd, &ev);
}

static void fail_with(tf_front *f, tf_conn *c, uint32_t slot, int why, int err, const char *detail) {
  double id = id_of(c, slot);
  release(f, c, slot);
  f->emit(f->ctx, TF_EV_FAILED, id, why, err, NULL, 0, detail);
}

static void fail(tf_front *f, tf_conn *c, uint32_t slot, int why, int err) {
  fail_with(f, c, slot, why, err, NULL);
}

/* Whether `buf` holds what JavaScript must see now: a complete first handshake message, or
 * anything its reader refuses at once (another record type, a bad length, a handshake message
 * that is no ClientHello or announces more than max_hello_length). */
static int hello_ready(const tf_front *f, const uint8_t *buf, size_t len) {
  size_t off = 0, hs = 0, need = 0;
  uint8_t hdr[4];
  while (off + 5 <= len) {
    if (buf[off] != 22 || buf[off + 1] != 3) return 1; /* JavaScript's reader refuses it */
    size_t rlen = ((size_t)buf[off + 3] << 8) | buf[off + 4];
    if (rlen == 0 || rlen > 16384 + 2048) return 1;
    size_t avail = len - off - 5 < rlen ? len - off - 5 : rlen;
    for (size_t i = 0; i < avail && hs + i < 4; i++) hdr[hs + i] = buf[off + 5 + i];
    hs += avail;
    if (need == 0 && hs >= 4) {
      if (hdr[0] != 1) return 1;
      need = 4 + (((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3]);
      if (need - 4 > f->max_hello_length) return 1;
    }
    if (need > 0 && hs >= need) return 1;
    if (avail < rlen) return 0;
    off += 5 + rlen;
  }
  return 0;
}

static void on_accept(tf_front *f) {
  for (int k = 0; k < ACCEPTS_PER_EVENT && !f->halted; k++) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(f->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      /* EMFILE, ENFILE, ENOBUFS, ENOMEM: stop listening (a level-triggered listener would spin)
       * until JavaScript's next tick re-arms it. */
      int e = errno;
      epoll_ctl(f->epfd, EPOLL_CTL_DEL, f->lfd, NULL);
      f->listening = 0;
      f->emit(f->ctx, TF_EV_ACCEPT_ERROR, -1, 0, e, NULL, 0, NULL);
      return;
    }
    if (f->nfree == 0 && f->used == f->max_conns) {
      close(fd);
      f->emit(f->ctx, TF_EV_OVERFLOW, -1, 0, 0, NULL, 0, NULL);
      continue;
    }
    uint32_t slot = f->nfree > 0 ? f->free_slots[--f->nfree] : f->used++;
    tf_conn *c = &f->c[slot];
    c->cfd = fd;
    c->bfd = -1;
    c->state = f->tls != NULL ? C_TLS : C_HELLO;
    f->count++;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((f->tls != NULL && (c->ssl = tt_new(f->tls, fd)) == NULL) ||
        watch(f, EPOLL_CTL_ADD, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, c, slot, 0) != 0) {
      release(f, c, slot);
      continue;
    }
    char addr[INET6_ADDRSTRLEN] = "";
    int port = 0;
    if (ss.ss_family == AF_INET) {
      struct sockaddr_in *a = (struct sockaddr_in *)&ss;
      inet_ntop(AF_INET, &a->sin_addr, addr, sizeof addr);
      port = ntohs(a->sin_port);
    } else if (ss.ss_family == AF_INET6) {
      struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
      inet_ntop(AF_INET6, &a->sin6_addr, addr, sizeof addr);
      port = ntohs(a->sin6_port);
    }
    f->emit(f->ctx, TF_EV_ACCEPT, id_of(c, slot), port, 0, NULL, 0, addr);
  }
}

static void on_hello(tf_front *f, tf_conn *c, uint32_t slot) {
  for (;;) {
    if (c->len == c->cap) {
      uint32_t cap = c->cap == 0 ? INITIAL_BUF : c->cap * 2;
      if (cap > f->max_hello) cap = f->max_hello;
      if (cap <= c->len) return fail(f, c, slot, TF_F_TOO_LARGE, 0);
      uint8_t *b = realloc(c->buf, cap);
      if (b == NULL) return fail(f, c, slot, TF_F_HELLO_MEMORY, ENOMEM);
      c->buf = b;
      c->cap = cap;
    }
    ssize_t n = read(c->cfd, c->buf + c->len, c->cap - c->len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      return fail(f, c, slot, TF_F_CLIENT, errno);
    }
    if (n == 0) {
      /* End of the client's stream: JavaScript tells why (nothing sent, or an incomplete hello). */
      c->state = C_DECIDING;
      f->emit(f->ctx, TF_EV_HELLO, id_of(c, slot), 1, 0, c->buf, c->len, NULL);
      return;
    }
    uint64_t more = over_small(f, c->len + (uint32_t)n) - over_small(f, c->len);
    if (more > 0 && f->held + more > f->budget) return fail(f, c, slot, TF_F_HELLO_MEMORY, 0);
    f->held += more;
    c->len += (uint32_t)n;
    if (hello_ready(f, c->buf, c->len)) {
      c->state = C_DECIDING;
      f->emit(f->ctx, TF_EV_HELLO, id_of(c, slot), 0, 0, c->buf, c->len, NULL);
      return;
    }
    if (c->len >= f->max_hello) return fail(f, c, slot, TF_F_TOO_LARGE, 0);
  }
}

static void peek_answer(tf_front *f, tf_conn *c, uint32_t slot);
static void relay(tf_front *f, tf_conn *c, uint32_t slot, int side, uint32_t events);

/* Sends what is left of the hello; then waits for the server's first octets (`events`: what the
 * backend socket reported, possibly its answer already). */
static void send_hello(tf_front *f, tf_conn *c, uint32_t slot, uint32_t events) {
  while (c->sent < c->len) {
    ssize_t n = send(c->bfd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return; /* EPOLLOUT again */
      return fail(f, c, slot, TF_F_BACKEND, errno);
    }
    c->sent += (uint32_t)n;
  }
  drop_buf(f, c);
  c->state = C_ANSWER;
  /* Edge-triggered: an answer that came with this event gets no edge of its own. */
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) peek_answer(f, c, slot);
}

static void on_backend(tf_front *f, tf_conn *c, uint32_t slot, uint32_t events) {
  if (c->state == C_CONNECTING) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    if (events & (EPOLLERR | EPOLLHUP)) { /* SO_ERROR says why (only asked on failure) */
      socklen_t el = sizeof err;
      if (getsockopt(c->bfd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
      if (err == 0) err = ECONNRESET;
    }
    if (err != 0) {
      close(c->bfd);
      c->bfd = -1;
      c->state = C_DECIDING;
      f->emit(f->ctx, TF_EV_FAILED, id_of(c, slot), TF_F_CONNECT, err, NULL, 0, NULL);
      return;
    }
    if (c->ssl != NULL) { /* offload: the relay starts (the client may have sent already) */
      if ((c->relay = calloc(1, sizeof *c->relay)) == NULL) return fail(f, c, slot, TF_F_BACKEND, ENOMEM);
      c->state = C_RELAY;
      c->last = f->now;
    } else {
      c->state = C_SENDING;
    }
    uint8_t state = c->state;
    double id = id_of(c, slot);
    f->emit(f->ctx, TF_EV_CONNECTED, id, 0, 0, NULL, 0, NULL);
    if (by_id(f, id, &slot) != c || c->state != state) return; /* closed by JavaScript */
    return state == C_RELAY ? relay(f, c, slot, 1, events) : send_hello(f, c, slot, events);
  }
  if (c->state == C_RELAY) return relay(f, c, slot, 1, events);
  if (c->state == C_SENDING) return send_hello(f, c, slot, events);
  if (c->state == C_ANSWER && (events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) peek_answer(f, c, slot);
}

/* The server's first octets, peeked (they stay for the splice engine), go to JavaScript. */
static void peek_answer(tf_front *f, tf_conn *c, uint32_t slot) {
  uint8_t peek[TF_PEEK_BYTES];
  ssize_t n = recv(c->bfd, peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) return fail(f, c, slot, TF_F_BACKEND, n < 0 ? errno : 0);
  double id = id_of(c, slot);
  f->emit(f->ctx, TF_EV_ANSWER, id, 0, 0, peek, (size_t)n, NULL);
  /* JavaScript splices or closes it; a connection left here would be reported again at once. */
  if (by_id(f, id, &slot) == c) release(f, c, slot);
}

/* Offload: watches the client socket for writing too (TLS waits for it); kept from then on. */
static void arm_client_out(tf_front *f, tf_conn *c, uint32_t slot) {
  if (watch(f, EPOLL_CTL_MOD, c->cfd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, c, slot, 0) == 0) c->out_armed = 1;
}

static void on_handshake(tf_front *f, tf_conn *c, uint32_t slot) {
  int err = 0;
  char why[300];
  switch (tt_handshake(c->ssl, &err, why, sizeof why)) {
  case TT_WAIT:
    return;
  case TT_WAIT_WRITE:
    if (!c->out_armed) arm_client_out(f, c, slot);
    return;
  case TT_EOF:
    return fail_with(f, c, slot, TF_F_TLS_EOF, err, why);
  case TT_FAILED:
    return fail_with(f, c, slot, TF_F_TLS, err, why);
  }
  c->state = C_DECIDING;
  f->emit(f->ctx, TF_EV_SECURE, id_of(c, slot), 0, 0, NULL, 0, tt_version(c->ssl));
}

/* Offload: relays what both sides allow; reports the server's first octets and the end.
 * `events`: what the socket of `side` reported. */
static void relay(tf_front *f, tf_conn *c, uint32_t slot, int side, uint32_t events) {
  int err = 0;
  char why[200];
  why[0] = 0;
  int r = tt_pump(c->relay, c->ssl, c->cfd, c->bfd, &err, why, sizeof why);
  if (!(r & (TT_R_ENDED | TT_R_ERROR)) && (events & EPOLLERR)) {
    /* A socket in error (a reset) that the pump did not touch, its direction having ended:
     * nothing else would notice until the other side moves or the tunnel idles out. (A hang-up
     * alone is both directions closed in order: the pump finishes that by itself.) */
    int fd = side == 0 ? c->cfd : c->bfd;
    socklen_t el = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err != 0) r |= TT_R_ERROR;
  }
  if (r & TT_R_ACTIVE) c->last = f->now;
  if (r & TT_R_ANSWER) {
    double id = id_of(c, slot);
    f->emit(f->ctx, TF_EV_ANSWER, id, 0, 0, NULL, 0, NULL);
    if (by_id(f, id, &slot) != c || c->state != C_RELAY) return; /* closed by JavaScript */
  }
  if (r & (TT_R_ENDED | TT_R_ERROR)) {
    double id = id_of(c, slot);
    int code = (r & TT_R_ERROR) ? (err != 0 ? err : EIO) : 0;
    /* The final octet counts (two doubles), then OpenSSL's reason for a TLS error. */
    uint8_t data[2 * sizeof(double) + sizeof why];
    double counts[2] = {(double)c->relay->to_backend, (double)c->relay->to_client};
    size_t len = sizeof counts, text = code == EPROTO ? strlen(why) : 0;
    memcpy(data, counts, sizeof counts);
    memcpy(data + len, why, text);
    release(f, c, slot);
    f->emit(f->ctx, TF_EV_ENDED, id, code, 0, data, len + text, NULL);
    return;
  }
  if (r & TT_R_MORE) {
    /* Re-arming reports what is ready now: both sockets, so whichever side has work left gets
     * its event (work may wait in TLS's buffer, which no socket edge announces). */
    arm_client_out(f, c, slot);
    watch(f, EPOLL_CTL_MOD, c->bfd, EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, c, slot, 1);
  } else if ((r & TT_R_CLIENT_OUT) && !c->out_armed) {
    arm_client_out(f, c, slot);
  }
}

void tf_run(tf_front *f, int budget) {
  struct epoll_event evs[64];
  int64_t start = f->now = ts_now_ms();
  while (budget > 0 && !f->halted && ts_now_ms() - start < TF_RUN_MS) {
    int n = epoll_wait(f->epfd, evs, budget < 64 ? budget : 64, 0);
    if (n <= 0) return;
    budget -= n;
    for (int i = 0; i < n && !f->halted; i++) {
      uint64_t tok = evs[i].data.u64;
      if (tok == LISTEN_TOKEN) {
        on_accept(f);
        continue;
      }
      uint32_t slot = (uint32_t)(tok & 0xffffffffu) >> 1, gen = (uint32_t)(tok >> 32);
      int side = (int)(tok & 1);
      if (slot >= f->used) continue;
      tf_conn *c = &f->c[slot];
      if (c->state == C_FREE || c->gen != gen) continue; /* closed meanwhile */
      uint32_t ev = evs[i].events;
      if (side == 1) {
        on_backend(f, c, slot, ev);
        continue;
      }
      if (c->state == C_RELAY)
        relay(f, c, slot, 0, ev);
      else if (c->state == C_TLS)
        on_handshake(f, c, slot);
      else if (c->state == C_HELLO && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        on_hello(f, c, slot);
      else if (c->ssl != NULL ? (ev & (EPOLLHUP | EPOLLERR)) : (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
        /* The client left while JavaScript or the backend was busy. Offload: a client that only
         * stopped sending (its request is read at the relay's start) is still there. */
        fail(f, c, slot, TF_F_CLIENT, 0);
    }
    if (n < 64) return;
  }
}

tf_front *tf_create(const tf_options *o, tf_emit_fn emit, void *ctx, int *err_no, const char **what) {
  tf_front *f = calloc(1, sizeof *f);
  uint32_t max = o->max_conns == 0 || o->max_conns > TF_MAX_CONNS ? TF_MAX_CONNS : o->max_conns;
  if (f == NULL) goto nomem;
  f->lfd = f->epfd = -1;
  f->tls = o->tls;
  f->c = calloc(max, sizeof *f->c);
  f->free_slots = malloc(sizeof *f->free_slots * max);
  if (f->c == NULL || f->free_slots == NULL) goto nomem;
  f->max_conns = max;
  f->max_hello_length = o->max_hello_length;
  f->max_hello = o->max_hello;
  f->small_hello = o->small_hello;
  f->budget = o->budget;
  f->emit = emit;
  f->ctx = ctx;
  *what = "epoll_create1";
  if ((f->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) goto sys;
  int family = o->family == 6 ? AF_INET6 : AF_INET;
  *what = "socket";
  if ((f->lfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) goto sys;
  int one = 1;
  setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  *what = "setsockopt SO_REUSEPORT";
  if (o->reuse_port && setsockopt(f->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) goto sys;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (family == AF_INET6) {
    setsockopt(f->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, o->addr, 16);
    a->sin6_port = htons(o->port);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    memcpy(&a->sin_addr, o->addr, 4);
    a->sin_port = htons(o->port);
    sl = sizeof *a;
  }
  *what = "bind";
  if (bind(f->lfd, (struct sockaddr *)&ss, sl) != 0) goto sys;
  *what = "listen";
  if (listen(f->lfd, o->backlog > 0 ? o->backlog : 511) != 0) goto sys;
  sl = sizeof ss;
  *what = "getsockname";
  if (getsockname(f->lfd, (struct sockaddr *)&ss, &sl) != 0) goto sys;
  f->port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  f->listening = 1;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTEN_TOKEN};
  *what = "epoll_ctl";
  if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd, &ev) != 0) goto sys;
  return f;
nomem:
  errno = ENOMEM;
  *what = "allocation";
sys:
  *err_no = errno;
  if (f == NULL) tt_ctx_free(o->tls);
  if (f != NULL) {
    tt_ctx_free(f->tls);
    if (f->lfd >= 0) close(f->lfd);
    if (f->epfd >= 0) close(f->epfd);
    free(f->c);
    free(f->free_slots);
    free(f);
  }
  return NULL;
}

int tf_fd(const tf_front *f) { return f->epfd; }
int tf_port(const tf_front *f) { return f->port; }
uint64_t tf_held(const tf_front *f) { return f->held; }
uint32_t tf_count(const tf_front *f) { return f->count; }

int tf_dial(tf_front *f, double id, int family, const uint8_t addr[16], uint16_t port) {
  uint32_t slot;
  tf_conn *c = by_id(f, id, &slot);
  if (c == NULL || (c->state != C_DECIDING && c->state != C_CONNECTING)) return -ESTALE;
  if (c->bfd >= 0) { /* an attempt JavaScript gave up on (connectTimeout) */
    close(c->bfd);
    c->bfd = -1;
    c->state = C_DECIDING;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sl;
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    memcpy(&a->sin6_addr, addr, 16);
    a->sin6_port = htons(port);
    sl = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    memcpy(&a->sin_addr, addr, 4);
    a->sin_port = htons(port);
    sl = sizeof *a;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  if (connect(fd, (struct sockaddr *)&ss, sl) != 0 && errno != EINPROGRESS) {
    int e = errno;
    close(fd);
    return -e;
  }
  c->bfd = fd;
  c->sent = 0;
  c->state = C_CONNECTING;
  if (watch(f, EPOLL_CTL_ADD, fd, EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, c, slot, 1) != 0) {
    int e = errno;
    close(fd);
    c->bfd = -1;
    c->state = C_DECIDING;
    return -e;
  }
  return 0;
}

int tf_splice(tf_front *f, double id, ts_engine *engine) {
  uint32_t slot;
  tf_conn *c = by_id(f, id, &slot);
  if (c == NULL || c->state != C_ANSWER) return -100;
  epoll_ctl(f->epfd, EPOLL_CTL_DEL, c->cfd, NULL);
  epoll_ctl(f->epfd, EPOLL_CTL_DEL, c->bfd, NULL);
  int rc = ts_add(engine, c->cfd, c->bfd, 1);
  if (rc < 0) return rc; /* still ours: JavaScript closes it */
  c->cfd = c->bfd = -1;
  release(f, c, slot);
  return rc;
}

int tf_more(tf_front *f, double id) {
  uint32_t slot;
  tf_conn *c = by_id(f, id, &slot);
  if (c == NULL || c->state != C_DECIDING || c->bfd >= 0 || c->ssl != NULL) return -1;
  c->state = C_HELLO;
  /* Edge-triggered: re-arming reports octets that are already waiting. */
  return watch(f, EPOLL_CTL_MOD, c->cfd, EPOLLIN | EPOLLRDHUP | EPOLLET, c, slot, 0) == 0 ? 0 : -1;
}

int tf_close(tf_front *f, double id) {
  uint32_t slot;
  tf_conn *c = by_id(f, id, &slot);
  if (c == NULL) return -1;
  release(f, c, slot);
  return 0;
}

int tf_counters(tf_front *f, double id, double out[2]) {
  uint32_t slot;
  tf_conn *c = by_id(f, id, &slot);
  if (c == NULL || c->state != C_RELAY) return -1;
  out[0] = (double)c->relay->to_backend;
  out[1] = (double)c->relay->to_client;
  return 0;
}

uint32_t tf_idle(tf_front *f, double idle_ms, double *ids, uint32_t max) {
  int64_t now = ts_now_ms();
  uint32_t n = 0;
  for (uint32_t s = 0; s < f->used && n < max; s++)
    if (f->c[s].state == C_RELAY && (double)(now - f->c[s].last) >= idle_ms) ids[n++] = id_of(&f->c[s], s);
  return n;
}

void tf_halt(tf_front *f) {
  f->halted = 1;
}

void tf_rearm(tf_front *f) {
  if (f->listening || f->halted) return;
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTEN_TOKEN};
  if (epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd, &ev) == 0) f->listening = 1;
}

void tf_destroy(tf_front *f) {
  for (uint32_t s = 0; s < f->used; s++)
    if (f->c[s].state != C_FREE) release(f, &f->c[s], s);
  close(f->lfd);
  close(f->epfd);
  tt_ctx_free(f->tls);
  free(f->c);
  free(f->free_slots);
  free(f);
}
