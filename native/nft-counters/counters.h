/*
 * Reads nftables named counters straight from the kernel: one NFT_MSG_GETOBJ dump over a
 * NETLINK_NETFILTER socket, filtered by table and object type. `nft list counters` builds its
 * full cache first, every element of every set included, which costs about 0.7 s of CPU per
 * 65537-slot map on a two-core machine; this dump only carries the counters.
 */
#ifndef VPNLB_NFT_COUNTERS_H
#define VPNLB_NFT_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#define NC_NAME_MAX 256

typedef struct {
  char table[NC_NAME_MAX];
  char name[NC_NAME_MAX];
  uint8_t family; /* NFPROTO_* of the table */
  uint64_t packets;
  uint64_t bytes;
} nc_counter;

typedef struct {
  nc_counter *items;
  size_t len;
  size_t cap;
} nc_list;

/*
 * Dumps the counters of `table` (every table when it is empty) of `family` (NFPROTO_*, 0 for
 * every family), in the network namespace at `netns_path` (the calling thread's when empty; the
 * thread returns to its own namespace before this returns). Appends to `out` (free with
 * nc_free). Returns 0, or a negative errno: a failed socket, setns or send, an error the kernel
 * answered, -ETIMEDOUT after 5 s without an answer, -EBADMSG for a reply it cannot parse.
 */
int nc_read(uint8_t family, const char *table, const char *netns_path, nc_list *out);

void nc_free(nc_list *list);

#endif
