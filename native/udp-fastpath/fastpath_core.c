/*
 * The fast path's flow table and forwarding thread (see fastpath.h for the contract).
 *
 * Per epoll iteration the thread:
 *  - reads each readable listener with recvmmsg (up to FP_LISTENER_ROUNDS x FP_BATCH): a
 *    datagram of a known flow passes the relay's quick check (mirrors relay-drops.ts
 *    checkIkeAt / checkNatTDatagram) and is sent on the flow's connected upstream socket —
 *    consecutive datagrams of one flow with one sendmmsg; anything else is handed to JS;
 *  - reads each readable upstream socket with recvmmsg into a shared reply batch, and sends the
 *    batch to the clients with one sendmmsg per run of one listener (unconnected: an address per
 *    message), which is where batching saves the most system calls.
 * Nothing here allocates per datagram except the copies handed to JS (bounded in count and
 * bytes: FP_HANDOFF_QUEUE, FP_HANDOFF_MAX_BYTES).
 */
#define _GNU_SOURCE
#include "fastpath.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* epoll tags outside the slot range (slots are < FP_MAX_FLOWS). */
#define TAG_LISTENER 0xFFFFFFF0u
#define TAG_WAKE 0xFFFFFFFEu

/* RFC 7296 §3.1: the IKE header is 28 octets; major version in the high nibble of octet 17. */
#define IKE_HEADER_LENGTH 28
#define IKE_MAJOR_VERSION 2

int64_t fp_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* relay-drops.ts checkIkeAt: header present, major version 2, Length = what remains. */
static int check_ike_at(const uint8_t *d, size_t n, size_t off) {
  size_t len = n - off;
  if (len < IKE_HEADER_LENGTH) return FP_R_IKE_TOO_SHORT;
  if ((d[off + 17] >> 4) != IKE_MAJOR_VERSION) return FP_R_IKE_BAD_VERSION;
  uint32_t declared = ((uint32_t)d[off + 24] << 24) | ((uint32_t)d[off + 25] << 16) | ((uint32_t)d[off + 26] << 8) | d[off + 27];
  if (declared != len) return FP_R_IKE_LENGTH_MISMATCH;
  return -1;
}

/* relay-drops.ts checkNatTDatagram, RFC 3948 §2: keepalive (0xFF), non-ESP marker + IKE, ESP >= 8. */
int fp_check(int kind, const uint8_t *d, size_t n) {
  if (kind == FP_KIND_IKE) return check_ike_at(d, n, 0);
  if (n == 0) return FP_R_EMPTY;
  if (n == 1) return d[0] == 0xff ? -1 : FP_R_ESP_TOO_SHORT;
  if (n >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0) return check_ike_at(d, n, 4);
  return n < 8 ? FP_R_ESP_TOO_SHORT : -1;
}

/* FNV-1a over the key: cheap, and the table is bounded, so a skewed chain costs only time. */
static uint32_t key_hash(const fp_key *k) {
  const uint8_t *p = (const uint8_t *)k;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < sizeof(*k); i++) h = (h ^ p[i]) * 16777619u;
  return h;
}

static void key_from_sockaddr(fp_key *k, int kind, const struct sockaddr *sa) {
  memset(k, 0, sizeof(*k));
  k->kind = (uint8_t)kind;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
    k->addr[10] = k->addr[11] = 0xff; /* v4-mapped */
    memcpy(&k->addr[12], &s4->sin_addr, 4);
    k->port = s4->sin_port;
  } else {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
    memcpy(k->addr, &s6->sin6_addr, 16);
    k->port = s6->sin6_port;
  }
}

static int32_t lookup(fp_relay *r, const fp_key *k) {
  int32_t i = r->buckets[key_hash(k) & (r->nbuckets - 1)];
  while (i >= 0 && memcmp(&r->flows[i].key, k, sizeof(*k)) != 0) i = r->flows[i].next;
  return i;
}

static void mark_dirty(fp_relay *r, int32_t slot) {
  fp_flow *f = &r->flows[slot];
  if (f->dirty) return;
  f->dirty = 1;
  if (r->ndirty < r->max_flows) r->dirty[r->ndirty++] = slot;
  else r->dirty_overflow = 1;
}

static void count_drop(fp_relay *r, int reason, const struct sockaddr *from) {
  r->drops[reason]++;
  if (from == NULL) return;
  const void *a = from->sa_family == AF_INET ? (const void *)&((const struct sockaddr_in *)from)->sin_addr : (const void *)&((const struct sockaddr_in6 *)from)->sin6_addr;
  inet_ntop(from->sa_family, a, r->drop_from[reason], sizeof(r->drop_from[reason]));
}

/* --- install / remove (JS thread) -------------------------------------------------------- */

int fp_install(fp_relay *r, int kind, const char *address, int port, int fd) {
  if ((kind != FP_KIND_IKE && kind != FP_KIND_NATT) || port <= 0 || port > 65535 || fd < 0) return -2;
  struct sockaddr_in6 sa;
  socklen_t len;
  memset(&sa, 0, sizeof(sa));
  if (r->family == AF_INET) {
    struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &s4->sin_addr) != 1) return -2;
    len = sizeof(*s4);
  } else {
    /* Node prints a link-local peer as "fe80::1%eth0": split off the zone. */
    char host[64];
    size_t n = strnlen(address, sizeof(host));
    if (n >= sizeof(host)) return -2;
    memcpy(host, address, n + 1);
    char *zone = strchr(host, '%');
    if (zone != NULL) {
      *zone++ = '\0';
      sa.sin6_scope_id = if_nametoindex(zone);
      if (sa.sin6_scope_id == 0) return -2;
    }
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &sa.sin6_addr) != 1) return -2;
    len = sizeof(sa);
  }
  fp_key key;
  key_from_sockaddr(&key, kind, (struct sockaddr *)&sa);

  int rc;
  pthread_mutex_lock(&r->lock);
  if (atomic_load(&r->stopping)) {
    rc = -5;
  } else if (lookup(r, &key) >= 0) {
    rc = -4;
  } else if (r->free_head < 0) {
    rc = -1;
  } else {
    int32_t slot = r->free_head;
    fp_flow *f = &r->flows[slot];
    uint32_t gen = f->gen + 1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ((uint64_t)gen << 32) | (uint32_t)slot};
    if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      rc = -3;
    } else {
      r->free_head = f->next;
      memset(f, 0, sizeof(*f));
      f->fd = fd;
      f->gen = gen;
      f->kind = (uint8_t)kind;
      f->key = key;
      f->client = sa;
      f->client_len = len;
      f->last_seen_ms = fp_now_ms();
      uint32_t b = key_hash(&key) & (r->nbuckets - 1);
      f->next = r->buckets[b];
      r->buckets[b] = slot;
      r->nflows++;
      rc = slot;
    }
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}

int fp_remove(fp_relay *r, int slot, double out[5]) {
  int rc = -1;
  pthread_mutex_lock(&r->lock);
  if (slot >= 0 && (uint32_t)slot < r->max_flows && r->flows[slot].fd >= 0) {
    fp_flow *f = &r->flows[slot];
    /* The fd is still open (JS closes it after this returns): DEL cannot hit another file. */
    epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, f->fd, NULL);
    int32_t *p = &r->buckets[key_hash(&f->key) & (r->nbuckets - 1)];
    while (*p >= 0 && *p != slot) p = &r->flows[*p].next;
    if (*p == slot) *p = f->next;
    out[0] = (double)f->pkts_in;
    out[1] = (double)f->bytes_in;
    out[2] = (double)f->pkts_out;
    out[3] = (double)f->bytes_out;
    out[4] = (double)f->errors;
    f->fd = -1;
    f->dirty = 0; /* a stale dirty-list entry is skipped by poll (fd < 0 or dirty == 0) */
    f->next = r->free_head;
    r->free_head = slot;
    r->nflows--;
    rc = 0;
  }
  pthread_mutex_unlock(&r->lock);
  return rc;
}

/* --- the forwarding thread --------------------------------------------------------------- */

typedef struct {
  struct mmsghdr msgs[FP_BATCH];
  struct iovec iov[FP_BATCH];
  struct sockaddr_in6 from[FP_BATCH];
  int32_t slot[FP_BATCH]; /* rx: the flow; reply: the flow the datagram came from */
} fp_batch;

typedef struct {
  fp_relay *r;
  fp_batch rx, tx, reply;
  uint32_t nreply;
  fp_handoff *handoff;
} fp_thread;

static void handoff_flush(fp_thread *t) {
  fp_handoff *h = t->handoff;
  if (h == NULL || h->count == 0) return;
  t->handoff = NULL;
  if (t->r->deliver(t->r->deliver_ctx, h) == 0) return;
  /* The queue towards JS is full: new flows are shed, like the relay's own `new-flow-shed`. */
  atomic_fetch_sub(&t->r->handoff_bytes, h->bytes);
  t->r->drops[FP_R_HANDOFF_FULL] += h->count;
  for (uint32_t i = 0; i < h->count; i++) free(h->pkt[i].data);
  free(h);
}

static void handoff_add(fp_thread *t, int kind, const struct sockaddr *from, const uint8_t *d, uint32_t n) {
  fp_relay *r = t->r;
  if (atomic_load(&r->handoff_bytes) + n > FP_HANDOFF_MAX_BYTES) {
    count_drop(r, FP_R_HANDOFF_FULL, from);
    return;
  }
  if (t->handoff == NULL && (t->handoff = calloc(1, sizeof(fp_handoff))) == NULL) {
    count_drop(r, FP_R_HANDOFF_FULL, from);
    return;
  }
  fp_handoff_pkt *p = &t->handoff->pkt[t->handoff->count];
  p->data = malloc(n > 0 ? n : 1);
  if (p->data == NULL) {
    count_drop(r, FP_R_HANDOFF_FULL, from);
    return;
  }
  memcpy(p->data, d, n);
  p->len = n;
  p->kind = (uint8_t)kind;
  if (from->sa_family == AF_INET) {
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)from;
    inet_ntop(AF_INET, &s4->sin_addr, p->address, sizeof(p->address));
    p->port = ntohs(s4->sin_port);
  } else {
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)from;
    inet_ntop(AF_INET6, &s6->sin6_addr, p->address, sizeof(p->address));
    char zone[IF_NAMESIZE];
    size_t used = strlen(p->address);
    if (s6->sin6_scope_id != 0 && if_indextoname(s6->sin6_scope_id, zone) != NULL && used + 1 + strlen(zone) < sizeof(p->address)) {
      p->address[used] = '%';
      memcpy(&p->address[used + 1], zone, strlen(zone) + 1);
    }
    p->port = ntohs(s6->sin6_port);
  }
  atomic_fetch_add(&r->handoff_bytes, n);
  t->handoff->bytes += n;
  if (++t->handoff->count == FP_BATCH) handoff_flush(t);
}

static void batch_prepare(fp_batch *b, uint8_t *buf, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    b->iov[i].iov_base = buf + (size_t)i * FP_MAX_DATAGRAM;
    b->iov[i].iov_len = FP_MAX_DATAGRAM;
    memset(&b->msgs[i].msg_hdr, 0, sizeof(b->msgs[i].msg_hdr));
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
    b->msgs[i].msg_hdr.msg_name = &b->from[i];
    b->msgs[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
  }
}

/* Sends msgs[0..n) on fd; calls back per datagram with success (1) or failure (0). */
static void send_all(fp_relay *r, int fd, struct mmsghdr *msgs, const int32_t *slots, uint32_t n, int to_client) {
  uint32_t done = 0;
  while (done < n) {
    int k = sendmmsg(fd, &msgs[done], n - done, MSG_DONTWAIT);
    if (k < 0) {
      if (errno == EINTR) continue;
      /* One datagram failed (EAGAIN: buffer full; ECONNREFUSED: an ICMP error arrived): count
       * it against its flow (`socket-error` in JS, as Node's send error would be) and go on. */
      fp_flow *f = &r->flows[slots[done]];
      f->errors++;
      mark_dirty(r, slots[done]);
      done++;
      continue;
    }
    for (int i = 0; i < k; i++) {
      fp_flow *f = &r->flows[slots[done + i]];
      uint32_t len = (uint32_t)msgs[done + i].msg_hdr.msg_iov[0].iov_len;
      if (to_client) {
        f->pkts_out++;
        f->bytes_out += len;
        r->forwarded_out++;
      } else {
        f->pkts_in++;
        f->bytes_in += len;
        r->forwarded_in++;
      }
      mark_dirty(r, slots[done + i]);
    }
    done += (uint32_t)k;
  }
}

/* Client -> server: one listener's datagrams (returns how many were read). */
static int on_listener(fp_thread *t, int kind, int64_t now) {
  fp_relay *r = t->r;
  fp_batch *rx = &t->rx;
  batch_prepare(rx, r->rx_buf, FP_BATCH);
  int n = recvmmsg(r->listen_fd[kind], rx->msgs, FP_BATCH, MSG_DONTWAIT, NULL);
  if (n <= 0) return 0;
  uint32_t ntx = 0;
  for (int i = 0; i < n; i++) {
    struct msghdr *h = &rx->msgs[i].msg_hdr;
    const uint8_t *d = rx->iov[i].iov_base;
    uint32_t len = rx->msgs[i].msg_len;
    fp_key key;
    key_from_sockaddr(&key, kind, (struct sockaddr *)h->msg_name);
    int32_t slot = lookup(r, &key);
    if (slot < 0) {
      handoff_add(t, kind, (struct sockaddr *)h->msg_name, d, len);
      continue;
    }
    int bad = fp_check(kind, d, len);
    if (bad >= 0) {
      count_drop(r, bad, (struct sockaddr *)h->msg_name);
      continue;
    }
    fp_flow *f = &r->flows[slot];
    f->last_seen_ms = now;
    mark_dirty(r, slot);
    /* Connected socket: no address. Consecutive datagrams of one flow share one sendmmsg. */
    t->tx.iov[ntx].iov_base = (void *)d;
    t->tx.iov[ntx].iov_len = len;
    memset(&t->tx.msgs[ntx], 0, sizeof(t->tx.msgs[ntx]));
    t->tx.msgs[ntx].msg_hdr.msg_iov = &t->tx.iov[ntx];
    t->tx.msgs[ntx].msg_hdr.msg_iovlen = 1;
    t->tx.slot[ntx] = slot;
    ntx++;
  }
  for (uint32_t i = 0; i < ntx;) {
    uint32_t j = i + 1;
    while (j < ntx && t->tx.slot[j] == t->tx.slot[i]) j++;
    send_all(r, r->flows[t->tx.slot[i]].fd, &t->tx.msgs[i], &t->tx.slot[i], j - i, 0);
    i = j;
  }
  return n;
}

/* Server -> client: flush the reply batch, one sendmmsg per run of one listener. */
static void reply_flush(fp_thread *t) {
  fp_relay *r = t->r;
  for (uint32_t i = 0; i < t->nreply;) {
    int kind = r->flows[t->reply.slot[i]].kind;
    uint32_t j = i + 1;
    while (j < t->nreply && r->flows[t->reply.slot[j]].kind == kind) j++;
    send_all(r, r->listen_fd[kind], &t->reply.msgs[i], &t->reply.slot[i], j - i, 1);
    i = j;
  }
  t->nreply = 0;
}

static void on_upstream(fp_thread *t, int32_t slot, int64_t now) {
  fp_relay *r = t->r;
  fp_flow *f = &r->flows[slot];
  if (t->nreply == FP_BATCH) reply_flush(t);
  uint32_t base = t->nreply, room = FP_BATCH - base;
  fp_batch *b = &t->reply;
  for (uint32_t i = base; i < FP_BATCH; i++) {
    b->iov[i].iov_base = r->reply_buf + (size_t)i * FP_MAX_DATAGRAM;
    b->iov[i].iov_len = FP_MAX_DATAGRAM;
    memset(&b->msgs[i], 0, sizeof(b->msgs[i]));
    b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
    b->msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int n = recvmmsg(f->fd, &b->msgs[base], room, MSG_DONTWAIT, NULL);
  if (n < 0) {
    /* ECONNREFUSED & co (an ICMP error on a connected socket): Node reports it as an 'error'
     * event, the relay counts `socket-error` and keeps the flow. */
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      f->errors++;
      mark_dirty(r, slot);
    }
    return;
  }
  for (int i = 0; i < n; i++) {
    uint32_t k = base + (uint32_t)i;
    b->iov[k].iov_len = b->msgs[k].msg_len; /* send exactly what was received */
    b->msgs[k].msg_hdr.msg_name = &f->client;
    b->msgs[k].msg_hdr.msg_namelen = f->client_len;
    b->slot[k] = slot;
  }
  if (n > 0) {
    f->last_seen_ms = now;
    mark_dirty(r, slot);
  }
  t->nreply += (uint32_t)n;
}

static void *thread_main(void *arg) {
  fp_thread *t = arg;
  fp_relay *r = t->r;
  struct epoll_event ev[FP_MAX_EVENTS];
  while (!atomic_load(&r->stopping)) {
    int n = epoll_wait(r->epoll_fd, ev, FP_MAX_EVENTS, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    pthread_mutex_lock(&r->lock);
    int64_t now = fp_now_ms();
    for (int i = 0; i < n && !atomic_load(&r->stopping); i++) {
      uint64_t tag = ev[i].data.u64;
      uint32_t slot = (uint32_t)tag;
      if (slot == TAG_WAKE) continue;
      if (slot == TAG_LISTENER + FP_KIND_IKE || slot == TAG_LISTENER + FP_KIND_NATT) {
        int kind = (int)(slot - TAG_LISTENER);
        for (int round = 0; round < FP_LISTENER_ROUNDS; round++) {
          if (on_listener(t, kind, now) < FP_BATCH) break;
        }
        continue;
      }
      /* Removed (and maybe reinstalled) since epoll_wait returned: skip the stale event. */
      if (slot >= r->max_flows || r->flows[slot].fd < 0 || r->flows[slot].gen != (uint32_t)(tag >> 32)) continue;
      on_upstream(t, (int32_t)slot, now);
    }
    reply_flush(t);
    handoff_flush(t);
    pthread_mutex_unlock(&r->lock);
  }
  if (t->handoff != NULL) {
    for (uint32_t i = 0; i < t->handoff->count; i++) free(t->handoff->pkt[i].data);
    free(t->handoff);
  }
  free(t);
  return NULL;
}

/* --- lifecycle --------------------------------------------------------------------------- */

fp_relay *fp_create(int ike_fd, int natt_fd, uint32_t max_flows, fp_deliver_fn deliver, void *ctx, const char **err) {
  if (max_flows < 1 || max_flows > FP_MAX_FLOWS) {
    *err = "maxFlows out of range for the fast path";
    return NULL;
  }
  struct sockaddr_storage ss;
  socklen_t sl = sizeof(ss);
  if (getsockname(ike_fd, (struct sockaddr *)&ss, &sl) != 0 || (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
    *err = "the listener fd is not a bound UDP socket";
    return NULL;
  }
  fp_relay *r = calloc(1, sizeof(*r));
  if (r == NULL) return *err = "out of memory", NULL;
  r->listen_fd[FP_KIND_IKE] = ike_fd;
  r->listen_fd[FP_KIND_NATT] = natt_fd;
  r->family = ss.ss_family;
  r->max_flows = max_flows;
  r->nbuckets = 1;
  while (r->nbuckets < max_flows * 2u) r->nbuckets <<= 1;
  r->deliver = deliver;
  r->deliver_ctx = ctx;
  r->epoll_fd = r->wake_fd = -1;
  pthread_mutex_init(&r->lock, NULL);
  r->flows = calloc(max_flows, sizeof(fp_flow));
  r->buckets = malloc(sizeof(int32_t) * r->nbuckets);
  r->dirty = malloc(sizeof(int32_t) * max_flows);
  r->rx_buf = malloc((size_t)FP_BATCH * FP_MAX_DATAGRAM);
  r->reply_buf = malloc((size_t)FP_BATCH * FP_MAX_DATAGRAM);
  fp_thread *t = calloc(1, sizeof(*t));
  if (!r->flows || !r->buckets || !r->dirty || !r->rx_buf || !r->reply_buf || !t) {
    free(t);
    fp_destroy(r);
    return *err = "out of memory", NULL;
  }
  for (uint32_t i = 0; i < r->nbuckets; i++) r->buckets[i] = -1;
  for (uint32_t i = 0; i < max_flows; i++) {
    r->flows[i].fd = -1;
    r->flows[i].next = i + 1 < max_flows ? (int32_t)(i + 1) : -1;
  }
  r->free_head = 0;
  r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  struct epoll_event e0 = {.events = EPOLLIN, .data.u64 = TAG_LISTENER + FP_KIND_IKE};
  struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = TAG_LISTENER + FP_KIND_NATT};
  struct epoll_event ew = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
  if (r->epoll_fd < 0 || r->wake_fd < 0 || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, ike_fd, &e0) != 0 ||
      epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, natt_fd, &e1) != 0 || epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, r->wake_fd, &ew) != 0) {
    free(t);
    fp_destroy(r);
    return *err = "epoll/eventfd setup failed", NULL;
  }
  t->r = r;
  if (pthread_create(&r->thread, NULL, thread_main, t) != 0) {
    free(t);
    fp_destroy(r);
    return *err = "cannot start the forwarding thread", NULL;
  }
  r->thread_started = 1;
  return r;
}

void fp_stop(fp_relay *r) {
  if (!r->thread_started) return;
  atomic_store(&r->stopping, 1);
  uint64_t one = 1;
  /* Wakes epoll_wait; the thread sees `stopping` and leaves after at most one iteration. */
  if (write(r->wake_fd, &one, sizeof(one)) < 0) { /* eventfd cannot fail here but for overflow */ }
  pthread_join(r->thread, NULL);
  r->thread_started = 0;
}

void fp_destroy(fp_relay *r) {
  fp_stop(r);
  if (r->epoll_fd >= 0) close(r->epoll_fd);
  if (r->wake_fd >= 0) close(r->wake_fd);
  pthread_mutex_destroy(&r->lock);
  free(r->flows);
  free(r->buckets);
  free(r->dirty);
  free(r->rx_buf);
  free(r->reply_buf);
  free(r);
}
