/*
 * udpsink: counts the ESP-in-UDP / IKE packets a benchmark delivers to the servers.
 *
 * Binds UDP PORT on every address of its namespace, reads with recvmmsg(2) in batches and
 * classifies each datagram by RFC 3948 §2.2: first 4 bytes zero = IKE (non-ESP marker),
 * otherwise ESP. Runs until SIGTERM/SIGINT (or -t seconds) and prints one JSON line with the
 * counts and its own CPU time.
 *
 * usage: udpsink [-p 4500] [-t SECONDS]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
static volatile sig_atomic_t stop;
static void on_sig(int s) { (void)s; stop = 1; }

int main(int argc, char **argv) {
  int port = 4500, opt;
  double seconds = 0;
  while ((opt = getopt(argc, argv, "p:t:")) != -1) {
    if (opt == 'p') port = atoi(optarg);
    else if (opt == 't') seconds = atof(optarg);
    else return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sig; /* no SA_RESTART: recvmmsg returns EINTR */
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  if (seconds > 0) alarm((unsigned)(seconds + 0.999)), sigaction(SIGALRM, &sa, NULL);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int one = 1, rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr = {htonl(INADDR_ANY)}};
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("bind"); return 2; }
  printf("{\"ready\":true}\n");
  fflush(stdout);
  static unsigned char bufs[BATCH][2048];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = bufs[i];
    iov[i].iov_len = sizeof bufs[i];
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  uint64_t ike = 0, esp = 0, bytes = 0;
  while (!stop) {
    int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("recvmmsg");
      return 2;
    }
    for (int i = 0; i < n; i++) {
      unsigned len = msgs[i].msg_len;
      bytes += len;
      if (len >= 4 && !bufs[i][0] && !bufs[i][1] && !bufs[i][2] && !bufs[i][3]) ike++;
      else esp++;
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"ike\":%llu,\"esp\":%llu,\"bytes\":%llu,\"cpuUser\":%.6f,\"cpuSys\":%.6f}\n", (unsigned long long)ike,
         (unsigned long long)esp, (unsigned long long)bytes, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6,
         ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
  return 0;
}
