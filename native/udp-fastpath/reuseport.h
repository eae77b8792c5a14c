/* SO_REUSEPORT groups steered by source address (reuseport.c). */
#ifndef VPNLB_REUSEPORT_H
#define VPNLB_REUSEPORT_H

#include <stddef.h>

#define RP_MAX_SOCKETS 64

/* Opens `count` UDP sockets bound to address:port (family 4 or 6; port 0: a free port, the same
 * for all) with SO_REUSEPORT and the source-address program attached to the group. Fills
 * `fds` and `bound_port`; on failure returns -1 with errno set, `err` saying what failed, and
 * no socket left open. */
int rp_group(int family, const char *address, int port, int count, int *fds, int *bound_port,
             char *err, size_t errlen);

#endif
