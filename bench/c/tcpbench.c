/*
 * tcpbench: TCP passthrough load for the vpnlb benchmarks, with the same byte stream for every
 * contender. Each connection starts the way an SSTP client does: a real TLS 1.2/1.3 ClientHello
 * record (so a ClientHello-inspecting proxy such as vpnlb passthrough can pick a backend), then:
 *
 *   server  -p PORT [-t S]          accept; on the first bytes answer one TLS alert record (7 B)
 *                                   so the client knows the backend is reached; then read and
 *                                   discard until EOF. Prints {connections, bytes, cpu} at exit.
 *   stream  -d DST -p PORT -n N -t S   N connections send the ClientHello then 256 KiB writes as
 *                                   fast as possible for S seconds. Prints {bytes, seconds, cpu}.
 *   connrate -d DST -p PORT -n C -t S  C concurrent slots: connect, send the ClientHello, wait for
 *                                   the server's 7 bytes, close; repeat for S seconds.
 *                                   Prints {completed, failed, seconds, cpu}.
 *
 * Single-threaded epoll; the server's reply is what makes a connection count, so a proxy that
 * accepts but cannot reach a backend does not inflate the figure.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A TLS 1.2 ClientHello record (SNI "vpn.bench.test", ECDHE suites, supported_groups,
 * signature_algorithms): what an SSTP client's first flight looks like on the wire. */
static const unsigned char CLIENT_HELLO[] = {
  0x16, 0x03, 0x01, 0x00, 0x6b, /* record: handshake, TLS 1.0 legacy, length 107 */
  0x01, 0x00, 0x00, 0x67,       /* ClientHello, length 103 */
  0x03, 0x03,                   /* client_version TLS 1.2 */
  0x5a, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xf0,
  0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, /* random */
  0x00,                         /* session_id length 0 */
  0x00, 0x06, 0xc0, 0x2b, 0xc0, 0x2f, 0x00, 0x9c, /* cipher suites */
  0x01, 0x00,                   /* compression: null */
  0x00, 0x38,                   /* extensions length 56 */
  0x00, 0x00, 0x00, 0x13, 0x00, 0x11, 0x00, 0x00, 0x0e, 'v', 'p', 'n', '.', 'b', 'e', 'n', 'c', 'h', '.', 't', 'e', 's', 't', /* SNI (23) */
  0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x17, 0x00, 0x1d, /* supported_groups (10) */
  0x00, 0x0d, 0x00, 0x0a, 0x00, 0x08, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01, 0x05, 0x01, /* signature_algorithms (14) */
  0x00, 0x17, 0x00, 0x00,       /* extended_master_secret (4) */
  0xff, 0x01, 0x00, 0x01, 0x00, /* renegotiation_info (5) */
};
static const unsigned char ALERT[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00};

static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }
static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + ts.tv_nsec / 1e9; }
static void cpu(double *u, double *s) {
  struct rusage ru; getrusage(RUSAGE_SELF, &ru);
  *u = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6; *s = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}
static void nb(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

#define MAXFD 65536
static unsigned char replied[MAXFD];
static int sent_ch[MAXFD];

static int server(int port, double seconds) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) { perror("bind/listen"); return 2; }
  nb(lfd);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  printf("{\"ready\":true}\n"); fflush(stdout);
  static unsigned char buf[1 << 18];
  uint64_t conns = 0, bytes = 0;
  double end = seconds > 0 ? now() + seconds : 0;
  struct epoll_event evs[256];
  while (!stop && (!end || now() < end)) {
    int n = epoll_wait(ep, evs, 256, 200);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (c < 0) break;
          if (c >= MAXFD) { close(c); continue; }
          replied[c] = 0; conns++;
          struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
          epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
        }
        continue;
      }
      for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          bytes += r;
          if (!replied[fd]) { replied[fd] = 1; if (write(fd, ALERT, sizeof ALERT) < 0) { /* peer gone */ } }
          if (r < (ssize_t)sizeof buf) break;
          continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) { close(fd); }
        break;
      }
    }
  }
  double u, s; cpu(&u, &s);
  printf("{\"connections\":%llu,\"bytes\":%llu,\"cpuUser\":%.6f,\"cpuSys\":%.6f}\n", (unsigned long long)conns, (unsigned long long)bytes, u, s);
  return 0;
}

static int dial(struct sockaddr_in *d) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)d, sizeof *d) < 0 && errno != EINPROGRESS) { close(fd); return -1; }
  return fd;
}

static int stream(struct sockaddr_in *d, int n, double seconds) {
  int ep = epoll_create1(0);
  static unsigned char buf[1 << 18];
  memset(buf, 0x5a, sizeof buf);
  for (int i = 0; i < n; i++) {
    int fd = dial(d);
    if (fd < 0 || fd >= MAXFD) { perror("dial"); return 2; }
    sent_ch[fd] = 0;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.fd = fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  uint64_t bytes = 0;
  double t0 = now(), end = t0 + seconds;
  struct epoll_event evs[256];
  while (!stop && now() < end) {
    int k = epoll_wait(ep, evs, 256, 100);
    for (int i = 0; i < k; i++) {
      int fd = evs[i].data.fd;
      if (evs[i].events & EPOLLIN) { unsigned char tmp[512]; while (read(fd, tmp, sizeof tmp) > 0) {} }
      if (evs[i].events & (EPOLLERR | EPOLLHUP)) { fprintf(stderr, "stream: connection closed by peer\n"); epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); continue; }
      if (!(evs[i].events & EPOLLOUT)) continue;
      if (!sent_ch[fd]) {
        if (write(fd, CLIENT_HELLO, sizeof CLIENT_HELLO) == sizeof CLIENT_HELLO) sent_ch[fd] = 1;
        continue;
      }
      ssize_t w = write(fd, buf, sizeof buf);
      if (w > 0) bytes += w;
    }
  }
  double wall = now() - t0, u, s;
  cpu(&u, &s);
  printf("{\"bytes\":%llu,\"seconds\":%.6f,\"cpuUser\":%.6f,\"cpuSys\":%.6f}\n", (unsigned long long)bytes, wall, u, s);
  return 0;
}

static int connrate(struct sockaddr_in *d, int conc, double seconds) {
  int ep = epoll_create1(0);
  uint64_t done = 0, failed = 0;
  double t0 = now(), end = t0 + seconds;
  int live = 0;
  struct epoll_event evs[512];
  for (;;) {
    double t = now();
    while (t < end && live < conc && !stop) {
      int fd = dial(d);
      if (fd < 0 || fd >= MAXFD) { if (fd >= 0) close(fd); failed++; break; }
      sent_ch[fd] = 0;
      struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      live++;
    }
    if ((t >= end || stop) && live == 0) break;
    if (t >= end + 2) break; /* stragglers past the grace period are failures */
    int k = epoll_wait(ep, evs, 512, 50);
    for (int i = 0; i < k; i++) {
      int fd = evs[i].data.fd;
      if (evs[i].events & (EPOLLERR | EPOLLHUP) && !(evs[i].events & EPOLLIN)) { close(fd); live--; failed++; continue; }
      if ((evs[i].events & EPOLLOUT) && !sent_ch[fd]) {
        if (write(fd, CLIENT_HELLO, sizeof CLIENT_HELLO) == sizeof CLIENT_HELLO) {
          sent_ch[fd] = 1;
          struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        } else { close(fd); live--; failed++; }
        continue;
      }
      if (evs[i].events & EPOLLIN) {
        unsigned char tmp[64];
        ssize_t r = read(fd, tmp, sizeof tmp);
        if (r >= (ssize_t)sizeof ALERT) { if (t < end) done++; }
        else if (r < 0 && errno == EAGAIN) continue;
        else failed++;
        close(fd); live--;
      }
    }
  }
  double wall = (now() < end ? now() : end) - t0, u, s;
  cpu(&u, &s);
  printf("{\"completed\":%llu,\"failed\":%llu,\"seconds\":%.6f,\"cpuUser\":%.6f,\"cpuSys\":%.6f}\n", (unsigned long long)done, (unsigned long long)failed, wall, u, s);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: tcpbench server|stream|connrate ...\n"); return 1; }
  const char *mode = argv[1], *dst = "127.0.0.1";
  int port = 443, n = 1, opt;
  double seconds = 3;
  optind = 2;
  while ((opt = getopt(argc, argv, "d:p:n:t:")) != -1) {
    if (opt == 'd') dst = optarg;
    else if (opt == 'p') port = atoi(optarg);
    else if (opt == 'n') n = atoi(optarg);
    else if (opt == 't') seconds = atof(optarg);
    else return 1;
  }
  struct sigaction sa; memset(&sa, 0, sizeof sa); sa.sa_handler = on_sig;
  sigaction(SIGTERM, &sa, NULL); sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct sockaddr_in d = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (!inet_aton(dst, &d.sin_addr)) { fprintf(stderr, "bad -d\n"); return 1; }
  if (!strcmp(mode, "server")) return server(port, 0 * seconds);
  if (!strcmp(mode, "stream")) return stream(&d, n, seconds);
  if (!strcmp(mode, "connrate")) return connrate(&d, n, seconds);
  fprintf(stderr, "unknown mode\n");
  return 1;
}
