/*
 * The splice thread (splice.h). Each tunnel is two directions, each src -> pipe -> dst with
 * splice(2): the kernel moves page references from one socket to the pipe and from the pipe to
 * the other socket, never through a user-space buffer.
 *
 * Sockets are registered edge-triggered (EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET) and any
 * event of either socket pumps both directions until each blocks: a direction blocks either
 * on its source (EAGAIN reading with the pipe empty) or on its destination (EAGAIN writing the
 * pipe out) — that is the backpressure: while the pipe holds octets nothing more is read, so
 * the source's receive window closes and the peer slows down (TCP flow control). A pump that
 * uses up its budget (TS_BUDGET rounds) without blocking is queued in `ready` and resumed after
 * the other events, since an edge-triggered fd would not report the octets it still holds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "splice.h"

#define WAKE_TOKEN UINT64_MAX

int64_t ts_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* epoll data: generation (32) | slot (31) | side (1). */
static uint64_t token(uint32_t gen, uint32_t slot, int side) {
  return ((uint64_t)gen << 32) | ((uint64_t)slot << 1) | (uint64_t)side;
}

static void push_ready(ts_engine *e, uint32_t slot) {
  ts_tunnel *t = &e->t[slot];
  if (t->in_ready) return;
  t->in_ready = 1;
  /* At most one entry per tunnel: the ring never holds more than max_tunnels. */
  e->ready[(e->ready_head + e->nready) % e->max_tunnels] = slot;
  e->nready++;
}

enum { PUMP_BLOCKED, PUMP_BUDGET, PUMP_FINISHED, PUMP_ERROR };

/* Moves what it can of one direction. *err is set on PUMP_ERROR. */
static int pump_dir(ts_engine *e, ts_tunnel *t, ts_dir *d, int *err) {
  if (d->shut) return PUMP_FINISHED;
  for (int round = 0; round < TS_BUDGET; round++) {
    while (d->pending > 0) {
      ssize_t n = splice(d->pipe_r, NULL, d->dst, NULL, d->pending, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        d->pending -= (uint32_t)n;
        d->bytes += (uint64_t)n;
        t->last_ms = ts_now_ms();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return PUMP_BLOCKED; /* EPOLLOUT on dst resumes */
      *err = n == 0 ? EPIPE : errno;
      return PUMP_ERROR;
    }
    if (d->eof) {
      /* Half-close: the peer of dst sees our FIN after every octet before it; the other
       * direction keeps flowing. ENOTCONN: dst is already gone, which its own read reports. */
      if (shutdown(d->dst, SHUT_WR) != 0 && errno != ENOTCONN) {
        *err = errno;
        return PUMP_ERROR;
      }
      d->shut = 1;
      return PUMP_FINISHED;
    }
    /* The pipe is empty here, so EAGAIN means "src has nothing", never "pipe full". */
    ssize_t n = splice(d->src, NULL, d->pipe_w, NULL, e->pipe_size, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      d->pending = (uint32_t)n;
      continue;
    }
    if (n == 0) {
      d->eof = 1;
      round--; /* the shutdown is not a round */
      continue;
    }
    if (errno == EINTR) {
      round--;
      continue;
    }
    if (errno == EAGAIN) return PUMP_BLOCKED; /* EPOLLIN on src resumes */
    *err = errno;
    return PUMP_ERROR;
  }
  return PUMP_BUDGET;
}

static void unregister(ts_engine *e, ts_tunnel *t) {
  epoll_ctl(e->epfd, EPOLL_CTL_DEL, t->dir[0].src, NULL);
  epoll_ctl(e->epfd, EPOLL_CTL_DEL, t->dir[1].src, NULL);
}

static void end_tunnel(ts_engine *e, ts_tunnel *t, int state, int err) {
  /* The thread stops watching the sockets now; JS removes the tunnel (pipes) and closes them.
   * Sockets the engine owns are closed at the removal, which takes them out of the set: until
   * then their events are ignored (the tunnel is no longer running). */
  if (!t->owns) unregister(e, t);
  t->state = (uint8_t)state;
  t->err = err;
  t->reported = 0;
  if (e->nended == e->max_tunnels) {
    /* Only stale entries (tunnels removed since) can make it full: drop them. */
    uint32_t k = 0;
    for (uint32_t i = 0; i < e->nended; i++) {
      uint32_t s = (uint32_t)e->ended[i];
      if (e->t[s].gen == (uint32_t)(e->ended[i] >> 32) && e->t[s].state >= TS_DONE) e->ended[k++] = e->ended[i];
    }
    e->nended = k;
  }
  e->ended[e->nended++] = ((uint64_t)t->gen << 32) | (uint64_t)(t - e->t);
}

/* Called with the lock held. Returns 1 when the tunnel ended. */
static int pump(ts_engine *e, uint32_t slot) {
  ts_tunnel *t = &e->t[slot];
  if (t->state != TS_RUNNING) return 0;
  int err = 0;
  int a = pump_dir(e, t, &t->dir[0], &err);
  int b = a == PUMP_ERROR ? PUMP_ERROR : pump_dir(e, t, &t->dir[1], &err);
  if (a == PUMP_ERROR || b == PUMP_ERROR) {
    end_tunnel(e, t, TS_ERROR, err);
    return 1;
  }
  if (a == PUMP_FINISHED && b == PUMP_FINISHED) {
    end_tunnel(e, t, TS_DONE, 0);
    return 1;
  }
  if (a == PUMP_BUDGET || b == PUMP_BUDGET) push_ready(e, slot);
  return 0;
}

/* One epoll iteration (waiting at most `timeout` ms): the number of events, or -1 when the
 * engine stops or epoll fails. *ended: tunnels ended. */
static int run_once(ts_engine *e, int timeout, int *ended_out) {
  struct epoll_event ev[TS_MAX_EVENTS];
  int n = epoll_wait(e->epfd, ev, TS_MAX_EVENTS, timeout);
  if (n < 0 && errno != EINTR) return -1;
  if (atomic_load(&e->stopping)) return -1;
  if (n < 0) n = 0;
  int ended = 0;
  {
    pthread_mutex_lock(&e->lock);
    for (int i = 0; i < n; i++) {
      uint64_t tok = ev[i].data.u64;
      if (tok == WAKE_TOKEN) {
        uint64_t v;
        ssize_t r = read(e->wakefd, &v, sizeof(v));
        (void)r;
        continue;
      }
      uint32_t slot = (uint32_t)(tok >> 1) & 0x7fffffffu;
      /* An event collected before a remove (and maybe a new add in the same slot): ignore. */
      if (slot >= e->max_tunnels || e->t[slot].gen != (uint32_t)(tok >> 32)) continue;
      ended |= pump(e, slot);
    }
    /* Resume the tunnels that ran out of budget (those queued before this round only). */
    for (uint32_t k = e->nready; k > 0 && e->nready > 0; k--) {
      uint32_t slot = e->ready[e->ready_head];
      e->ready_head = (e->ready_head + 1) % e->max_tunnels;
      e->nready--;
      e->t[slot].in_ready = 0;
      ended |= pump(e, slot);
    }
    pthread_mutex_unlock(&e->lock);
  }
  *ended_out = ended;
  return n;
}

static void *thread_main(void *arg) {
  ts_engine *e = arg;
  for (;;) {
    int ended;
    if (run_once(e, e->nready > 0 ? 0 : -1, &ended) < 0) break;
    if (ended && e->notify != NULL && atomic_exchange(&e->notify_pending, 1) == 0) e->notify(e->notify_ctx);
  }
  return NULL;
}

int ts_run(ts_engine *e, int *ended) {
  *ended = 0;
  int64_t start = ts_now_ms();
  /* Bounded in rounds and in time: bulk tunnels must not hold up JavaScript. */
  for (int round = 0; round < TS_LOOP_ROUNDS && ts_now_ms() - start < TS_LOOP_MS; round++) {
    int r;
    int n = run_once(e, 0, &r);
    if (n < 0) return 0;
    *ended |= r;
    /* A full batch may leave events behind; otherwise only queued pumps bring us back. */
    if (n < TS_MAX_EVENTS && e->nready == 0) return 0;
  }
  return e->nready > 0;
}

ts_engine *ts_create(uint32_t max_tunnels, uint32_t pipe_size, int in_loop, ts_notify_fn notify, void *ctx, const char **err) {
  if (max_tunnels == 0 || max_tunnels > TS_MAX_TUNNELS) {
    *err = "maxTunnels out of range";
    return NULL;
  }
  ts_engine *e = calloc(1, sizeof(*e));
  if (e == NULL) {
    *err = "out of memory";
    return NULL;
  }
  e->epfd = e->wakefd = -1;
  e->max_tunnels = max_tunnels;
  e->pipe_size = pipe_size < TS_MIN_PIPE ? TS_MIN_PIPE : pipe_size > TS_MAX_PIPE ? TS_MAX_PIPE : pipe_size;
  e->notify = notify;
  e->notify_ctx = ctx;
  e->t = calloc(max_tunnels, sizeof(ts_tunnel));
  e->free_slots = malloc(sizeof(uint32_t) * max_tunnels);
  e->ready = malloc(sizeof(uint32_t) * max_tunnels);
  e->ended = malloc(sizeof(uint64_t) * max_tunnels);
  if (e->t == NULL || e->free_slots == NULL || e->ready == NULL || e->ended == NULL) {
    *err = "out of memory";
    goto fail;
  }
  for (uint32_t i = 0; i < max_tunnels; i++) e->free_slots[i] = max_tunnels - 1 - i; /* slot 0 first */
  e->nfree = max_tunnels;
  pthread_mutex_init(&e->lock, NULL);
  e->epfd = epoll_create1(EPOLL_CLOEXEC);
  e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e->epfd < 0 || e->wakefd < 0) {
    *err = "epoll_create1/eventfd failed";
    goto fail_lock;
  }
  struct epoll_event wev = {.events = EPOLLIN, .data.u64 = WAKE_TOKEN};
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &wev) != 0) {
    *err = "epoll_ctl(eventfd) failed";
    goto fail_lock;
  }
  e->in_loop = in_loop;
  if (!in_loop) {
    if (pthread_create(&e->thread, NULL, thread_main, e) != 0) {
      *err = "pthread_create failed";
      goto fail_lock;
    }
    e->started = 1;
  }
  return e;
fail_lock:
  pthread_mutex_destroy(&e->lock);
fail:
  if (e->epfd >= 0) close(e->epfd);
  if (e->wakefd >= 0) close(e->wakefd);
  free(e->t);
  free(e->free_slots);
  free(e->ready);
  free(e->ended);
  free(e);
  return NULL;
}

static void wake(ts_engine *e) {
  uint64_t one = 1;
  ssize_t r = write(e->wakefd, &one, sizeof(one));
  (void)r;
}

static int open_pipe(ts_engine *e, int p[2]) {
  if (e->npool > 0) { /* an empty pipe of an earlier tunnel: no pipe2, fcntl or close per tunnel */
    e->npool--;
    p[0] = e->pool[2 * e->npool];
    p[1] = e->pool[2 * e->npool + 1];
    return 0;
  }
  if (pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
  /* Larger than the default 64 KiB: fewer splices per MiB. Refused (per-user pipe quota):
   * the default stays, which only costs more system calls. */
  if (e->pipe_size > TS_MIN_PIPE) fcntl(p[1], F_SETPIPE_SZ, (int)e->pipe_size);
  return 0;
}

/* Empty pipes go back to the pool (while it has room); a pipe still holding octets is closed. */
static void close_pipes(ts_engine *e, ts_tunnel *t) {
  for (int d = 0; d < 2; d++) {
    ts_dir *x = &t->dir[d];
    if (x->pipe_r >= 0 && x->pipe_w >= 0 && x->pending == 0 && e->npool < TS_PIPE_POOL) {
      e->pool[2 * e->npool] = x->pipe_r;
      e->pool[2 * e->npool + 1] = x->pipe_w;
      e->npool++;
    } else {
      if (x->pipe_r >= 0) close(x->pipe_r);
      if (x->pipe_w >= 0) close(x->pipe_w);
    }
    x->pipe_r = x->pipe_w = -1;
  }
}

int ts_add(ts_engine *e, int client_fd, int backend_fd, int owns) {
  if (client_fd < 0 || backend_fd < 0 || client_fd == backend_fd) return -4;
  pthread_mutex_lock(&e->lock);
  int rc;
  if (atomic_load(&e->stopping)) {
    rc = -5;
    goto out;
  }
  if (e->nfree == 0) {
    rc = -1;
    goto out;
  }
  uint32_t slot = e->free_slots[e->nfree - 1];
  ts_tunnel *t = &e->t[slot];
  uint32_t gen = t->gen + 1;
  /* A removed tunnel may still have an entry in the ready ring: keep in_ready, so that entry
   * pumps the new tunnel and a slot never has two (the ring holds one per slot at most). */
  uint8_t in_ready = t->in_ready;
  memset(t, 0, sizeof(*t));
  t->gen = gen;
  t->in_ready = in_ready;
  int p0[2], p1[2];
  if (open_pipe(e, p0) != 0) {
    rc = -2;
    goto out;
  }
  if (open_pipe(e, p1) != 0) {
    close(p0[0]);
    close(p0[1]);
    rc = -2;
    goto out;
  }
  t->dir[0] = (ts_dir){.src = client_fd, .dst = backend_fd, .pipe_r = p0[0], .pipe_w = p0[1]};
  t->dir[1] = (ts_dir){.src = backend_fd, .dst = client_fd, .pipe_r = p1[0], .pipe_w = p1[1]};
  t->last_ms = ts_now_ms();
  t->state = TS_RUNNING;
  t->owns = (uint8_t)(owns != 0);
  struct epoll_event ec = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = token(gen, slot, 0)};
  struct epoll_event eb = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u64 = token(gen, slot, 1)};
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, client_fd, &ec) != 0) {
    close_pipes(e, t);
    t->state = TS_FREE;
    rc = -3;
    goto out;
  }
  if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, backend_fd, &eb) != 0) {
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, client_fd, NULL);
    close_pipes(e, t);
    t->state = TS_FREE;
    rc = -3;
    goto out;
  }
  e->nfree--;
  e->ntunnels++;
  /* Octets may already wait in the kernel: a first pump, on the thread. No wake-up needed:
   * adding a connected socket whose send buffer has room reports EPOLLOUT to the thread at once. */
  push_ready(e, slot);
  rc = (int)slot;
out:
  pthread_mutex_unlock(&e->lock);
  return rc;
}

int ts_remove(ts_engine *e, int slot, double out[3]) {
  pthread_mutex_lock(&e->lock);
  if (slot < 0 || (uint32_t)slot >= e->max_tunnels || e->t[slot].state == TS_FREE) {
    pthread_mutex_unlock(&e->lock);
    return -1;
  }
  ts_tunnel *t = &e->t[slot];
  /* Closing owned sockets removes them from the epoll set (they are not duplicated). */
  if (t->state == TS_RUNNING && !t->owns) unregister(e, t);
  close_pipes(e, t);
  if (t->owns) {
    close(t->dir[0].src);
    close(t->dir[0].dst);
  }
  out[0] = (double)t->dir[0].bytes;
  out[1] = (double)t->dir[1].bytes;
  out[2] = (double)t->last_ms;
  e->total_bytes[0] += t->dir[0].bytes;
  e->total_bytes[1] += t->dir[1].bytes;
  t->state = TS_FREE;
  t->gen++; /* events already collected for this tunnel are now stale */
  e->free_slots[e->nfree++] = (uint32_t)slot;
  e->ntunnels--;
  pthread_mutex_unlock(&e->lock);
  return 0;
}

uint32_t ts_finished(ts_engine *e, double *out, uint32_t cap) {
  uint32_t n = 0;
  /* Cleared first: a tunnel ending from now on triggers a new notification. */
  atomic_store(&e->notify_pending, 0);
  pthread_mutex_lock(&e->lock);
  uint32_t k = 0;
  for (uint32_t i = 0; i < e->nended; i++) {
    uint32_t slot = (uint32_t)e->ended[i];
    ts_tunnel *t = &e->t[slot];
    /* Removed (or removed and re-added) since it ended: nothing to report. */
    if (t->gen != (uint32_t)(e->ended[i] >> 32) || t->state < TS_DONE || t->reported) continue;
    if (n == cap) {
      e->ended[k++] = e->ended[i]; /* kept for the next call */
      continue;
    }
    t->reported = 1;
    out[3 * n] = slot;
    out[3 * n + 1] = t->state;
    out[3 * n + 2] = t->err;
    n++;
  }
  e->nended = k;
  pthread_mutex_unlock(&e->lock);
  return n;
}

int ts_counters(ts_engine *e, int slot, double out[3]) {
  pthread_mutex_lock(&e->lock);
  if (slot < 0 || (uint32_t)slot >= e->max_tunnels || e->t[slot].state == TS_FREE) {
    pthread_mutex_unlock(&e->lock);
    return -1;
  }
  ts_tunnel *t = &e->t[slot];
  out[0] = (double)t->dir[0].bytes;
  out[1] = (double)t->dir[1].bytes;
  out[2] = (double)t->last_ms;
  pthread_mutex_unlock(&e->lock);
  return 0;
}

uint32_t ts_stats(ts_engine *e, double *out, uint32_t cap) {
  uint32_t n = 0;
  pthread_mutex_lock(&e->lock);
  for (uint32_t i = 0, seen = 0; i < e->max_tunnels && seen < e->ntunnels && n < cap; i++) {
    ts_tunnel *t = &e->t[i];
    if (t->state == TS_FREE) continue;
    seen++;
    out[4 * n] = i;
    out[4 * n + 1] = (double)t->dir[0].bytes;
    out[4 * n + 2] = (double)t->dir[1].bytes;
    out[4 * n + 3] = (double)t->last_ms;
    n++;
  }
  pthread_mutex_unlock(&e->lock);
  return n;
}

void ts_stop(ts_engine *e) {
  if (atomic_exchange(&e->stopping, 1)) return;
  wake(e);
  if (e->started) pthread_join(e->thread, NULL);
  e->started = 0;
}

void ts_destroy(ts_engine *e) {
  ts_stop(e);
  for (uint32_t i = 0; i < e->max_tunnels; i++)
    if (e->t[i].state != TS_FREE) {
      close_pipes(e, &e->t[i]);
      if (e->t[i].owns) { /* not removed before the engine's end: its sockets go with it */
        close(e->t[i].dir[0].src);
        close(e->t[i].dir[0].dst);
      }
    }
  for (uint32_t i = 0; i < 2 * e->npool; i++) close(e->pool[i]);
  close(e->epfd);
  close(e->wakefd);
  pthread_mutex_destroy(&e->lock);
  free(e->t);
  free(e->free_slots);
  free(e->ready);
  free(e->ended);
  free(e);
}
