/*
 * The netlink side of counters.h: no libmnl/libnftnl, only the kernel's UAPI headers (what
 * node-gyp's toolchain already brings: linux-libc-dev).
 */
#define _GNU_SOURCE
#include "counters.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#define RECV_BUFFER (256 * 1024)
/* A dump the kernel marks inconsistent (the ruleset changed under it) is read again. */
#define DUMP_ATTEMPTS 3

void nc_free(nc_list *list) {
  free(list->items);
  list->items = NULL;
  list->len = list->cap = 0;
}

static int push(nc_list *list, const nc_counter *c) {
  if (list->len == list->cap) {
    size_t cap = list->cap ? list->cap * 2 : 32;
    nc_counter *items = realloc(list->items, cap * sizeof *items);
    if (items == NULL) return -ENOMEM;
    list->items = items;
    list->cap = cap;
  }
  list->items[list->len++] = *c;
  return 0;
}

/* A socket in the namespace at `netns_path`: the thread enters it, opens, and goes back. */
static int open_socket(const char *netns_path) {
  int own = -1;
  if (netns_path != NULL && netns_path[0] != '\0') {
    own = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (own < 0) return -errno;
    int target = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (target < 0) {
      int err = -errno;
      close(own);
      return err;
    }
    int rc = setns(target, CLONE_NEWNET);
    int err = -errno;
    close(target);
    if (rc < 0) {
      close(own);
      return err;
    }
  }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  int err = fd < 0 ? -errno : 0;
  if (own >= 0) {
    /* Going back to a namespace this thread was in cannot fail short of a kernel bug; a thread
     * left in the wrong namespace would open every later socket there: stop rather than that. */
    if (setns(own, CLONE_NEWNET) < 0) abort();
    close(own);
  }
  if (fd < 0) return err;
  struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static size_t put_attr(char *at, uint16_t type, const void *data, size_t len) {
  struct nlattr *a = (struct nlattr *)at;
  a->nla_type = type;
  a->nla_len = (uint16_t)(NLA_HDRLEN + len);
  memcpy(at + NLA_HDRLEN, data, len);
  memset(at + NLA_HDRLEN + len, 0, NLA_ALIGN(len) - len);
  return NLA_HDRLEN + NLA_ALIGN(len);
}

static int send_dump(int fd, uint8_t family, const char *table, uint32_t seq) {
  union {
    char buf[NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)) + 2 * NLA_HDRLEN + NC_NAME_MAX + 8];
    struct nlmsghdr align;
  } req;
  memset(&req, 0, sizeof req);
  struct nlmsghdr *nh = &req.align;
  nh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETOBJ;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nh->nlmsg_seq = seq;
  struct nfgenmsg *nf = NLMSG_DATA(nh);
  nf->nfgen_family = family;
  nf->version = NFNETLINK_V0;
  nf->res_id = 0;
  size_t len = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *nf);
  if (table[0] != '\0') len += put_attr(req.buf + len, NFTA_OBJ_TABLE, table, strlen(table) + 1);
  uint32_t type = htobe32(NFT_OBJECT_COUNTER);
  len += put_attr(req.buf + len, NFTA_OBJ_TYPE, &type, sizeof type);
  nh->nlmsg_len = (uint32_t)len;
  struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
  ssize_t sent;
  do {
    sent = sendto(fd, req.buf, len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return -errno;
  return sent == (ssize_t)len ? 0 : -EIO;
}

static int copy_string(char *dst, const char *src, size_t len) {
  if (len == 0 || len > NC_NAME_MAX || src[len - 1] != '\0') return -EBADMSG;
  memcpy(dst, src, len);
  return 0;
}

static uint64_t be64_at(const char *p) {
  uint64_t v;
  memcpy(&v, p, sizeof v);
  return be64toh(v);
}

/* Walks the attributes in [p, p + rem), `rem` counting down as it goes. */
#define FOR_EACH_ATTR(a, p, rem)                                                         \
  for (const struct nlattr *a = (const struct nlattr *)(p);                              \
       (rem) >= (long)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && (long)a->nla_len <= (rem); \
       (rem) -= NLA_ALIGN(a->nla_len), a = (const struct nlattr *)((const char *)a + NLA_ALIGN(a->nla_len)))

/* One NFT_MSG_NEWOBJ message: a counter is appended; another object type is skipped. */
static int parse_object(const struct nlmsghdr *nh, const char *table, nc_list *out) {
  if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nfgenmsg))) return -EBADMSG;
  const struct nfgenmsg *nf = NLMSG_DATA(nh);
  nc_counter c;
  memset(&c, 0, sizeof c);
  c.family = nf->nfgen_family;
  int have_name = 0, have_table = 0, is_counter = 0;
  long rem = (long)nh->nlmsg_len - (long)NLMSG_LENGTH(NLMSG_ALIGN(sizeof *nf));
  FOR_EACH_ATTR(a, (const char *)nf + NLMSG_ALIGN(sizeof *nf), rem) {
    const char *data = (const char *)a + NLA_HDRLEN;
    size_t len = a->nla_len - NLA_HDRLEN;
    switch (a->nla_type & NLA_TYPE_MASK) {
      case NFTA_OBJ_TABLE:
        if (copy_string(c.table, data, len) < 0) return -EBADMSG;
        have_table = 1;
        break;
      case NFTA_OBJ_NAME:
        if (copy_string(c.name, data, len) < 0) return -EBADMSG;
        have_name = 1;
        break;
      case NFTA_OBJ_TYPE: {
        uint32_t t;
        if (len != sizeof t) return -EBADMSG;
        memcpy(&t, data, sizeof t);
        is_counter = be32toh(t) == NFT_OBJECT_COUNTER;
        break;
      }
      case NFTA_OBJ_DATA: {
        long inner = (long)len;
        FOR_EACH_ATTR(b, data, inner) {
          const char *v = (const char *)b + NLA_HDRLEN;
          if (b->nla_len - NLA_HDRLEN != sizeof(uint64_t)) continue;
          if ((b->nla_type & NLA_TYPE_MASK) == NFTA_COUNTER_PACKETS) c.packets = be64_at(v);
          if ((b->nla_type & NLA_TYPE_MASK) == NFTA_COUNTER_BYTES) c.bytes = be64_at(v);
        }
        break;
      }
      default:
        break;
    }
  }
  /* Kernels older than the dump filter send every object: filter here as well. */
  if (!is_counter) return 0;
  if (!have_name || !have_table) return -EBADMSG;
  if (table[0] != '\0' && strcmp(table, c.table) != 0) return 0;
  return push(out, &c);
}

static int dump_once(int fd, uint8_t family, const char *table, uint32_t seq, nc_list *out,
                     char *buf, int *interrupted) {
  int rc = send_dump(fd, family, table, seq);
  if (rc < 0) return rc;
  for (;;) {
    ssize_t got = recv(fd, buf, RECV_BUFFER, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    }
    if (got == 0) return -EBADMSG;
    int len = (int)got;
    for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, len);
         nh = NLMSG_NEXT(nh, len)) {
      if (nh->nlmsg_seq != seq) continue;
      if (nh->nlmsg_flags & NLM_F_DUMP_INTR) *interrupted = 1;
      if (nh->nlmsg_type == NLMSG_DONE) return 0;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        if (nh->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr))) return -EBADMSG;
        const struct nlmsgerr *e = NLMSG_DATA(nh);
        return e->error < 0 ? e->error : -EBADMSG;
      }
      if (nh->nlmsg_type == ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWOBJ)) {
        rc = parse_object(nh, table, out);
        if (rc < 0) return rc;
      }
    }
  }
}

int nc_read(uint8_t family, const char *table, const char *netns_path, nc_list *out) {
  if (strlen(table) >= NC_NAME_MAX) return -ENAMETOOLONG;
  int fd = open_socket(netns_path);
  if (fd < 0) return fd;
  char *buf = malloc(RECV_BUFFER);
  if (buf == NULL) {
    close(fd);
    return -ENOMEM;
  }
  int rc = 0;
  size_t start = out->len;
  for (uint32_t attempt = 1; attempt <= DUMP_ATTEMPTS; attempt++) {
    int interrupted = 0;
    out->len = start;
    rc = dump_once(fd, family, table, attempt, out, buf, &interrupted);
    if (rc < 0 || !interrupted) break;
  }
  free(buf);
  close(fd);
  return rc;
}
