/*
 * The userspace IKEv2 relay's native fast path: the forwarding of *established* flows
 * (client address:port on one virtual port <-> a connected upstream UDP socket) on a native
 * thread, with recvmmsg/sendmmsg batches, without a call into JavaScript per datagram.
 *
 * JavaScript (src/dataplane/relay/udp-relay.ts) keeps every decision: it places new flows,
 * installs them here once their upstream socket is connected, and removes them (idle expiry,
 * backend down, eviction, stop) *before* it closes their sockets. Datagrams from a client this
 * table does not know are handed to JavaScript in batches (fp_handoff), unchanged.
 *
 * Locking: one mutex guards the flow table, its counters and the fds it holds. The forwarding
 * thread takes it for one epoll iteration (bounded: FP_MAX_EVENTS events, FP_BATCH datagrams
 * each); the JS thread takes it for install/remove/poll. Holding it across the system calls is
 * what makes "JS closes an fd only after remove() returned" sufficient against use-after-close.
 */
#ifndef VPNLB_FASTPATH_H
#define VPNLB_FASTPATH_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

/* Datagrams per recvmmsg/sendmmsg call, and per hand-off batch. */
#define FP_BATCH 32
/* The largest UDP payload (IPv4: 65507; IPv6 without jumbograms: 65527): never truncate. */
#define FP_MAX_DATAGRAM 65535
/* epoll events handled per iteration (bounds the time the JS thread may wait for the lock). */
#define FP_MAX_EVENTS 16
/* Rounds of FP_BATCH read from one listener per iteration (fairness with replies). */
#define FP_LISTENER_ROUNDS 4
/* Hard cap on flows (the relay's maxFlows is validated below it). */
#define FP_MAX_FLOWS (1 << 21)
/* Most hand-off batches queued towards JS, and most bytes they may hold. */
#define FP_HANDOFF_QUEUE 64
#define FP_HANDOFF_MAX_BYTES (16u << 20)

/* Virtual ports: the IKE port (500) and the NAT-T port (4500). */
enum { FP_KIND_IKE = 0, FP_KIND_NATT = 1 };

/*
 * Drop reasons counted here; the names are the relay's (relay-drops.ts), in this order
 * (fast-path.ts maps them). FP_R_HANDOFF_FULL is reported as `new-flow-shed`; FP_R_SEND_ERROR
 * and FP_R_RECV_ERROR are per flow (socket-error) and also summed here for the log line.
 */
enum fp_reason {
  FP_R_EMPTY,
  FP_R_ESP_TOO_SHORT,
  FP_R_IKE_TOO_SHORT,
  FP_R_IKE_BAD_VERSION,
  FP_R_IKE_LENGTH_MISMATCH,
  FP_R_HANDOFF_FULL,
  FP_R_COUNT
};

/* A client endpoint as the table keys it (IPv4 addresses stored v4-mapped). */
typedef struct {
  uint8_t addr[16];
  uint16_t port; /* network order */
  uint8_t kind;
  uint8_t pad;
} fp_key;

typedef struct {
  int fd; /* connected upstream socket; -1: slot free */
  uint32_t gen; /* bumped on every install: stale epoll events are recognised */
  int32_t next; /* hash chain, or free list when free */
  uint8_t kind;
  uint8_t dirty; /* counters changed since the last poll (in the dirty list) */
  fp_key key;
  struct sockaddr_in6 client; /* where replies go (sockaddr_in when the relay is IPv4) */
  socklen_t client_len;
  /* Deltas since the last poll / remove (the JS side adds them to its totals). */
  uint64_t pkts_in, bytes_in, pkts_out, bytes_out, errors;
  int64_t last_seen_ms; /* CLOCK_MONOTONIC_COARSE */
} fp_flow;

/* One datagram handed to JS (a new flow, or a flow JS has not installed yet). */
typedef struct {
  uint8_t kind;
  uint16_t port; /* host order */
  char address[64];
  uint32_t len;
  uint8_t *data;
} fp_handoff_pkt;

typedef struct {
  uint32_t count;
  uint32_t bytes;
  fp_handoff_pkt pkt[FP_BATCH];
} fp_handoff;

typedef struct fp_relay fp_relay;

/* Delivers a hand-off batch to JS; returns 0 when queued (ownership passes), else -1. */
typedef int (*fp_deliver_fn)(void *ctx, fp_handoff *batch);

struct fp_relay {
  /* Immutable after fp_create. */
  int listen_fd[2];
  int family; /* AF_INET or AF_INET6, from the listeners */
  int epoll_fd;
  int wake_fd; /* eventfd: stop */
  uint32_t max_flows;
  uint32_t nbuckets; /* power of two */
  fp_deliver_fn deliver;
  void *deliver_ctx;
  pthread_t thread;
  int thread_started;
  /* Guarded by `lock`. */
  pthread_mutex_t lock;
  fp_flow *flows;
  int32_t *buckets;
  int32_t free_head;
  uint32_t nflows;
  int32_t *dirty;
  uint32_t ndirty;
  int dirty_overflow; /* the dirty list overflowed: the next poll scans every slot */
  uint64_t drops[FP_R_COUNT];
  char drop_from[FP_R_COUNT][64];
  uint64_t forwarded_in, forwarded_out; /* totals, for tests and troubleshooting */
  /* Thread-private buffers (allocated once; FP_BATCH x FP_MAX_DATAGRAM each). */
  uint8_t *rx_buf, *reply_buf;
  /* Shared with the deliver callback's owner (JS thread). */
  atomic_uint handoff_bytes;
  atomic_int stopping;
};

/* Creates the relay and starts its thread; NULL with *err set on failure. */
fp_relay *fp_create(int ike_fd, int natt_fd, uint32_t max_flows, fp_deliver_fn deliver, void *ctx, const char **err);
/* Stops and joins the thread (idempotent). The table stays readable (remove, poll). */
void fp_stop(fp_relay *r);
/* Frees everything (after fp_stop). Does not close the flows' or listeners' fds: JS owns them. */
void fp_destroy(fp_relay *r);
/* Installs a flow; returns its slot, or -1 table full, -2 bad address, -3 epoll failed, -4 exists, -5 stopped. */
int fp_install(fp_relay *r, int kind, const char *address, int port, int fd);
/* Removes a flow (no more use of its fd once this returns); copies its last deltas into out[5]. */
int fp_remove(fp_relay *r, int slot, double out[5]);
/* Monotonic milliseconds (the clock of last_seen_ms). */
int64_t fp_now_ms(void);
/* Quick validation of a datagram of an established flow: -1 when acceptable, else an fp_reason. */
int fp_check(int kind, const uint8_t *d, size_t n);

#endif
