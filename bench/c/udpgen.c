/*
 * udpgen: IKEv2 / ESP-in-UDP (RFC 3948) traffic generator for the vpnlb benchmarks.
 *
 * Sends through one raw socket (IP_HDRINCL) with sendmmsg(2) so that every packet can carry its
 * own flow: flow i has source address base+(i / ports) and source port 10000+(i % ports), and
 * its own SPI. Phase 1 (warm-up) sends IKE packets (4-byte zero non-ESP marker + a 28-byte IKEv2
 * header whose initiator SPI is the flow's) so that a balancer creates its flow/conntrack state
 * from IKE, as real clients do; phase 2 (measured) sends ESP packets (non-zero SPI first, then a
 * sequence number) round-robin over the flows, at a fixed rate or as fast as possible (-r 0).
 *
 * With -u S, the ESP traffic first runs S seconds uncounted (the same packets at the same rate:
 * a contender that was just started, a JIT'd Node process above all, reaches its steady state
 * before the window), then the line {"phase":"measure"} is printed and flushed so the caller
 * starts its window exactly when the measured phase starts.
 *
 * Prints one JSON line at the end: packets sent in each phase, send errors, the measured phase's
 * wall time and the generator's own CPU time (getrusage, whole run), so the report can show
 * generator CPU.
 *
 * usage: udpgen -d DST -s SRC_BASE [-p 4500] [-l PAYLOAD] [-r PPS] [-t SECONDS] [-f FLOWS]
 *               [-P PORTS_PER_IP] [-w WARMUP_ROUNDS] [-W WARMUP_PPS] [-u ESP_WARMUP_SECONDS]
 *               [-i] (IKE only: no ESP phase)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXPKT 2048

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t flow_spi(uint32_t flow) { return 0x10000000u + flow * 2654435761u % 0x0fffffffu + 1; }

struct gen {
  int fd;
  struct sockaddr_in dst;
  uint32_t src_base; /* host order */
  uint16_t dport;
  uint32_t flows, ports;
  int payload;
  unsigned char pkts[BATCH][MAXPKT];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  uint64_t seq;
};

/* Builds one packet for flow `flow`: IPv4 + UDP (checksum 0: allowed for IPv4, RFC 768) + payload. */
static int build(struct gen *g, unsigned char *p, uint32_t flow, int ike) {
  struct iphdr *ip = (struct iphdr *)p;
  struct udphdr *udp = (struct udphdr *)(p + sizeof *ip);
  unsigned char *pl = p + sizeof *ip + sizeof *udp;
  int len = g->payload;
  if (ike && len < 32) len = 32;
  if (!ike && len < 16) len = 16;
  memset(p, 0, sizeof *ip + sizeof *udp + 36);
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->saddr = htonl(g->src_base + flow / g->ports);
  ip->daddr = g->dst.sin_addr.s_addr;
  ip->tot_len = htons(sizeof *ip + sizeof *udp + len); /* the kernel fills it and the checksum */
  udp->source = htons(10000 + flow % g->ports);
  udp->dest = htons(g->dport);
  udp->len = htons(sizeof *udp + len);
  uint32_t spi = htonl(flow_spi(flow));
  if (ike) {
    /* RFC 3948 §2.2 non-ESP marker, then RFC 7296 §3.1 header: SPIi, SPIr=0, next payload SA(33),
     * version 2.0, exchange IKE_SA_INIT (34), flags Initiator, message id 0, length. */
    memset(pl, 0, 4);
    memcpy(pl + 4, &spi, 4);
    memcpy(pl + 8, &spi, 4);
    memset(pl + 12, 0, 8);
    pl[20] = 33; pl[21] = 0x20; pl[22] = 34; pl[23] = 0x08;
    memset(pl + 24, 0, 4);
    uint32_t l = htonl(len - 4);
    memcpy(pl + 28, &l, 4);
  } else {
    /* RFC 4303 §2: SPI (non-zero), sequence number, then opaque bytes. */
    memcpy(pl, &spi, 4);
    uint32_t s = htonl((uint32_t)++g->seq);
    memcpy(pl + 4, &s, 4);
  }
  return sizeof *ip + sizeof *udp + len;
}

static uint64_t send_phase(struct gen *g, int ike, double rate, double seconds, uint64_t max_pkts, uint64_t *errors) {
  uint64_t sent = 0;
  uint32_t flow = 0;
  double t0 = now(), end = t0 + seconds;
  for (int i = 0; i < BATCH; i++) memset(g->pkts[i] + 28, 0xab, MAXPKT - 28);
  for (;;) {
    double t = now();
    if (t >= end || (max_pkts && sent >= max_pkts)) break;
    int n = BATCH;
    if (rate > 0) {
      double due = (t - t0) * rate - (double)sent; /* packets owed at this instant */
      if (due < 1) {
        /* Ahead of schedule: sleep a little (short sleeps keep pacing smooth at high rates). */
        struct timespec ts = {0, due < -64 ? 200000 : 20000};
        nanosleep(&ts, NULL);
        continue;
      }
      if (due < n) n = (int)due;
    }
    if (max_pkts && sent + n > max_pkts) n = (int)(max_pkts - sent);
    for (int i = 0; i < n; i++) {
      g->iov[i].iov_len = build(g, g->pkts[i], flow, ike);
      flow = (flow + 1) % g->flows;
    }
    int r = sendmmsg(g->fd, g->msgs, n, 0);
    if (r < 0) {
      (*errors)++;
      if (errno != ENOBUFS && errno != EAGAIN) { perror("sendmmsg"); exit(2); }
      continue;
    }
    sent += r;
  }
  return sent;
}

int main(int argc, char **argv) {
  static struct gen g;
  const char *dst = NULL, *src = NULL;
  double rate = 0, seconds = 3, warm_rate = 200000, esp_warm = 0;
  int warmup_rounds = 2, ike_only = 0, opt;
  g.dport = 4500; g.payload = 100; g.flows = 256; g.ports = 50000;
  while ((opt = getopt(argc, argv, "d:s:p:l:r:t:f:P:w:W:u:i")) != -1) {
    switch (opt) {
      case 'd': dst = optarg; break;
      case 's': src = optarg; break;
      case 'p': g.dport = atoi(optarg); break;
      case 'l': g.payload = atoi(optarg); break;
      case 'r': rate = atof(optarg); break;
      case 't': seconds = atof(optarg); break;
      case 'f': g.flows = strtoul(optarg, NULL, 10); break;
      case 'P': g.ports = strtoul(optarg, NULL, 10); break;
      case 'w': warmup_rounds = atoi(optarg); break;
      case 'W': warm_rate = atof(optarg); break;
      case 'u': esp_warm = atof(optarg); break;
      case 'i': ike_only = 1; break;
      default: fprintf(stderr, "bad option\n"); return 1;
    }
  }
  if (!dst || !src || g.flows == 0 || g.ports == 0 || g.payload > MAXPKT - 28) { fprintf(stderr, "usage: see source\n"); return 1; }
  struct in_addr a;
  if (!inet_aton(src, &a)) { fprintf(stderr, "bad -s\n"); return 1; }
  g.src_base = ntohl(a.s_addr);
  g.dst.sin_family = AF_INET;
  if (!inet_aton(dst, &g.dst.sin_addr)) { fprintf(stderr, "bad -d\n"); return 1; }
  g.fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW); /* IPPROTO_RAW implies IP_HDRINCL */
  if (g.fd < 0) { perror("socket"); return 2; }
  int sndbuf = 4 << 20;
  setsockopt(g.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  for (int i = 0; i < BATCH; i++) {
    g.iov[i].iov_base = g.pkts[i];
    g.msgs[i].msg_hdr.msg_iov = &g.iov[i];
    g.msgs[i].msg_hdr.msg_iovlen = 1;
    g.msgs[i].msg_hdr.msg_name = &g.dst;
    g.msgs[i].msg_hdr.msg_namelen = sizeof g.dst;
  }
  uint64_t errors = 0, warm = 0;
  /* Warm-up: each flow sends IKE packets first, paced (-W, default 200 kpps) so nobody drops them. */
  for (int r = 0; r < warmup_rounds; r++) warm += send_phase(&g, 1, warm_rate, 60, g.flows, &errors);
  struct timespec settle = {0, 200000000};
  nanosleep(&settle, NULL);
  uint64_t esp_warm_sent = 0;
  if (!ike_only && esp_warm > 0) esp_warm_sent = send_phase(&g, 0, rate, esp_warm, 0, &errors);
  printf("{\"phase\":\"measure\"}\n");
  fflush(stdout);
  double t0 = now();
  uint64_t sent = ike_only ? 0 : send_phase(&g, 0, rate, seconds, 0, &errors);
  double wall = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"warmupSent\":%llu,\"espWarmupSent\":%llu,\"sent\":%llu,\"errors\":%llu,\"seconds\":%.6f,\"cpuUser\":%.6f,\"cpuSys\":%.6f}\n",
         (unsigned long long)warm, (unsigned long long)esp_warm_sent, (unsigned long long)sent, (unsigned long long)errors, wall,
         ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  return 0;
}
