/*
 * The relay's listening sockets for worker processes (src/dataplane/workers/): `count` UDP
 * sockets bound to one address and port with SO_REUSEPORT, and a classic BPF program on the
 * group that picks the socket by a hash of the datagram's source address. Socket i is served
 * by worker i, so every datagram of one client address (its IKE on 500, its IKE and ESP on
 * 4500: two groups, the same hash) reaches the same worker, which holds that client's flows.
 *
 * Node 20's dgram cannot set SO_REUSEPORT (DESIGN §6), hence this file. The main process keeps
 * every socket of the group open for the service's life: a worker that dies leaves its socket
 * (and its index) in place for the worker that replaces it, so no other client moves.
 */
#define _GNU_SOURCE
#include "reuseport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

/* Fibonacci hashing: the address (IPv6: its four words XORed) times 2^32 / phi, whose top 16
 * bits are scaled to the group's size ((h * count) >> 16, not a modulo: consecutive addresses
 * then spread evenly for any count). The same arithmetic is in
 * src/dataplane/workers/reuseport-group.ts. */
#define RP_MULTIPLIER 0x9E3779B1u

static int attach_program(int fd, int family, unsigned count, char *err, size_t errlen) {
  struct sock_filter v4[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)SKF_NET_OFF + 12), /* source address */
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, RP_MULTIPLIER),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, count),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_filter v6[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)SKF_NET_OFF + 8), /* source address, word 0 */
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)SKF_NET_OFF + 12),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)SKF_NET_OFF + 16),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_MISC | BPF_TAX, 0),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (unsigned)SKF_NET_OFF + 20),
      BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, RP_MULTIPLIER),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, count),
      BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
      BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_fprog prog;
  if (family == 6) {
    prog.len = sizeof(v6) / sizeof(v6[0]);
    prog.filter = v6;
  } else {
    prog.len = sizeof(v4) / sizeof(v4[0]);
    prog.filter = v4;
  }
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) != 0) {
    snprintf(err, errlen, "attaching the source-address program to the SO_REUSEPORT group: %s",
             strerror(errno));
    return -1;
  }
  return 0;
}

int rp_group(int family, const char *address, int port, int count, int *fds, int *bound_port,
             char *err, size_t errlen) {
  struct sockaddr_storage ss;
  socklen_t len;
  memset(&ss, 0, sizeof(ss));
  if (count < 1 || count > RP_MAX_SOCKETS) {
    snprintf(err, errlen, "a group holds 1 to %d sockets, not %d", RP_MAX_SOCKETS, count);
    return -1;
  }
  if (family == 6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, address, &a->sin6_addr) != 1) {
      snprintf(err, errlen, "not an IPv6 address: %s", address);
      return -1;
    }
    len = sizeof(*a);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, address, &a->sin_addr) != 1) {
      snprintf(err, errlen, "not an IPv4 address: %s", address);
      return -1;
    }
    len = sizeof(*a);
  }
  int n = 0;
  for (; n < count; n++) {
    int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      snprintf(err, errlen, "socket: %s", strerror(errno));
      goto fail;
    }
    fds[n] = fd;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      snprintf(err, errlen, "SO_REUSEPORT: %s", strerror(errno));
      n++;
      goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
      int e = errno;
      snprintf(err, errlen, "bind %s port %d: %s", address, port, strerror(e));
      errno = e;
      n++;
      goto fail;
    }
    if (n == 0) {
      /* Port 0: every other socket joins the port the first one got. */
      struct sockaddr_storage got;
      socklen_t glen = sizeof(got);
      if (getsockname(fd, (struct sockaddr *)&got, &glen) != 0) {
        snprintf(err, errlen, "getsockname: %s", strerror(errno));
        n++;
        goto fail;
      }
      uint16_t p = family == 6 ? ((struct sockaddr_in6 *)&got)->sin6_port
                               : ((struct sockaddr_in *)&got)->sin_port;
      if (family == 6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = p;
      else
        ((struct sockaddr_in *)&ss)->sin_port = p;
      *bound_port = ntohs(p);
    }
  }
  if (attach_program(fds[0], family, (unsigned)count, err, errlen) != 0) goto fail;
  return 0;
fail : {
  int e = errno;
  for (int i = 0; i < n; i++) close(fds[i]);
  errno = e;
  return -1;
}
}
