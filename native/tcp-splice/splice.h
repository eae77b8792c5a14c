/*
 * The SSTP proxy's native splice path: established passthrough tunnels (two connected TCP
 * sockets: client <-> backend) relayed by a native thread with splice(2) through one pipe per
 * direction, so the octets never reach user space (no copy_from_iter / copy_to_iter).
 *
 * JavaScript (src/dataplane/sstp/sstp-splice.ts) keeps every decision: it adds a tunnel
 * once the hellos are parsed and Node's buffers are empty, and removes it (closed, idle, drain
 * deadline, backend down, stop) *before* it closes the sockets. The thread reports tunnels that
 * ended by themselves (both directions at EOF, or an error) through ts_engine.notify.
 *
 * Locking: one mutex guards the table, its counters and the fds it holds. The thread takes it
 * for one epoll iteration (bounded: TS_MAX_EVENTS events, TS_BUDGET splices per direction); the
 * JS thread takes it for add/remove/poll. Holding it across the system calls is what makes "JS
 * closes an fd only after remove() returned" sufficient against use-after-close.
 */
#ifndef VPNLB_TCP_SPLICE_H
#define VPNLB_TCP_SPLICE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

/* epoll events handled per iteration (bounds how long the JS thread may wait for the lock). */
#define TS_MAX_EVENTS 64
/* Socket -> pipe -> socket rounds per direction per pump (fairness between tunnels). */
#define TS_BUDGET 8
/* Hard cap on tunnels (6 fds each: 2 sockets + 2 pipes). */
#define TS_MAX_TUNNELS (1 << 20)
/* Pipe capacity bounds (F_SETPIPE_SZ); the kernel rounds up to a power-of-two of pages. */
#define TS_MIN_PIPE (64 * 1024)
#define TS_MAX_PIPE (1024 * 1024)
/* Empty pipes kept for the next tunnels (each holds two descriptors). */
#define TS_PIPE_POOL 256
/* Loop mode: epoll iterations per ts_run call before yielding to the event loop. */
#define TS_LOOP_ROUNDS 8
/* Loop mode: at most this long (ms) per ts_run call; what is left runs at the next turn. */
#define TS_LOOP_MS 2

enum ts_state { TS_FREE = 0, TS_RUNNING, TS_DONE, TS_ERROR };

/* One direction: src -> pipe -> dst. */
typedef struct {
  int src, dst;
  int pipe_r, pipe_w;
  uint32_t pending;   /* octets in the pipe */
  uint8_t eof;        /* read 0 from src */
  uint8_t shut;       /* shutdown(dst, SHUT_WR) done */
  uint64_t bytes;     /* octets written to dst */
} ts_dir;

typedef struct {
  ts_dir dir[2];      /* 0: client -> backend, 1: backend -> client */
  uint32_t gen;       /* bumped at each add: stale epoll events are recognised */
  uint8_t state;      /* enum ts_state */
  uint8_t reported;   /* an ended tunnel was returned by ts_finished() */
  uint8_t in_ready;
  uint8_t owns;       /* ts_add(..., owns): closed at ts_remove */
  int err;            /* errno of TS_ERROR */
  int64_t last_ms;    /* monotonic ms of the last octet moved (or of the add) */
} ts_tunnel;

typedef struct ts_engine ts_engine;

/* Called on the splice thread (without the lock) when tunnels ended since the last call. */
typedef void (*ts_notify_fn)(void *ctx);

struct ts_engine {
  pthread_mutex_t lock;
  pthread_t thread;
  int epfd, wakefd;
  int started;
  int in_loop;           /* no thread: the caller runs ts_run from its event loop */
  atomic_int stopping;
  atomic_int notify_pending;
  uint32_t max_tunnels, pipe_size;
  uint32_t ntunnels;
  uint32_t nfree;
  uint32_t *free_slots;  /* stack of free slots */
  uint32_t *ready;       /* tunnels whose pump ran out of budget (ring, bounded by max_tunnels) */
  uint32_t ready_head, nready;
  uint64_t *ended;       /* (gen << 32 | slot) of tunnels that ended, not yet reported */
  uint32_t nended;
  ts_tunnel *t;
  ts_notify_fn notify;
  void *notify_ctx;
  uint64_t total_bytes[2];
  int pool[2 * TS_PIPE_POOL]; /* empty pipes (read end, write end), under the lock */
  uint32_t npool;
};

int64_t ts_now_ms(void);
/* NULL and *err set on failure. `in_loop`: no thread; the caller polls ts_epoll_fd() in its own
 * event loop and calls ts_run() (one CPU: a thread would only add context switches and lock
 * hand-overs between it and the caller). `notify` is then not called: ts_run says. */
ts_engine *ts_create(uint32_t max_tunnels, uint32_t pipe_size, int in_loop, ts_notify_fn notify, void *ctx, const char **err);
/* Loop mode: relays what is ready (at most TS_LOOP_ROUNDS iterations). *ended: tunnels ended
 * (call ts_finished). Returns 1 when tunnels still have work queued (call again soon). */
int ts_run(ts_engine *e, int *ended);
/* Slot >= 0, or: -1 table full, -2 pipe() failed, -3 epoll_ctl failed, -4 bad fd, -5 stopped.
 * `owns`: the engine closes the two sockets at ts_remove (the native front's tunnels, whose
 * sockets no Node object holds); otherwise the caller closes them after ts_remove. */
int ts_add(ts_engine *e, int client_fd, int backend_fd, int owns);
/* Stops using the tunnel's sockets (closes its pipes, and the sockets it owns); out = [toBackend, toClient, lastMs].
 * 0, or -1 when the slot is not in use. */
int ts_remove(ts_engine *e, int slot, double out[3]);
/* Ended tunnels not yet reported: 3 doubles each (slot, state, errno); returns the count. */
uint32_t ts_finished(ts_engine *e, double *out, uint32_t cap);
/* One tunnel's counters: out = [toBackend, toClient, lastMs]; 0, or -1 when not in use. */
int ts_counters(ts_engine *e, int slot, double out[3]);
/* Every tunnel in use: 4 doubles each (slot, toBackend, toClient, lastMs); returns the count. */
uint32_t ts_stats(ts_engine *e, double *out, uint32_t cap);
/* Stops and joins the thread (idempotent). Tunnels stay removable. */
void ts_stop(ts_engine *e);
/* Stops, closes every pipe still held (never a socket) and frees. */
void ts_destroy(ts_engine *e);

#endif
