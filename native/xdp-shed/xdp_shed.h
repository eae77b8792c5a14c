/*
 * The userspace IKEv2 relay's flood shedding at the network driver (XDP). One program per relay
 * service, written here as eBPF instructions (no BPF compiler needed to build vpnlb), loaded with
 * bpf(2) and attached with a BPF link per interface: the kernel detaches it when the last file
 * descriptor closes, so a killed relay leaves nothing behind.
 *
 * What the program does with each received frame (everything else is passed to the stack):
 * an untagged Ethernet frame carrying UDP (IPv4 without options and not a later fragment, or
 * IPv6 with UDP as the first next header) to the service's virtual IP and one of its ports is
 * classed as `established` when (source address, source port, destination port) is in the
 * flows map, `unknown` otherwise. Each class has a token bucket: it refills by `limit`
 * datagrams every window of 2^shift ns and holds XS_BURST_WINDOWS windows' worth; a frame
 * finding it empty is dropped and counted. Limit 0: no limit. The window is the shortest (from
 * 2^20 ns, 1.05 ms) that lets at least XS_MIN_PER_WINDOW datagrams through: short windows and a
 * shallow bucket admit a smooth stream instead of a burst the relay's receive queue would
 * overflow on, while the bucket's depth lets the bursts that NAPI polling makes of a steady
 * stream (a batch of frames within microseconds, then none) use what earlier windows left over.
 */
#ifndef VPNLB_XDP_SHED_H
#define VPNLB_XDP_SHED_H

#include <stddef.h>
#include <stdint.h>

#define XS_MAX_PORTS 8
#define XS_MAX_LINKS 16
#define XS_IFNAME_MAX 16
/* Shortest and longest window, log2 of nanoseconds; fewest datagrams a window admits. */
#define XS_WINDOW_SHIFT_MIN 20
#define XS_WINDOW_SHIFT_MAX 34
#define XS_MIN_PER_WINDOW 32
/* The bucket's depth, in windows of the limit. */
#define XS_BURST_WINDOWS 4

/* One class's slot in the shared state (the program's layout; userspace maps it). */
typedef struct {
  volatile uint64_t limit; /* datagrams per window (the refill); 0: unlimited */
  volatile uint64_t shift; /* the window is 2^shift ns */
  volatile uint64_t window; /* the window of the last refill */
  volatile uint64_t level;  /* datagrams admitted and not yet refilled: the bucket is empty at depth */
  volatile uint64_t depth;  /* limit × XS_BURST_WINDOWS */
  volatile uint64_t drops;
} xs_class;

typedef struct {
  xs_class established;
  xs_class unknown;
} xs_state;

typedef struct {
  int family; /* 4 or 6 */
  int prog_fd;
  int flows_fd;
  int state_fd;
  xs_state *state; /* mmap of the state map */
  int nlinks;
  int links[XS_MAX_LINKS];
  int generic[XS_MAX_LINKS];
  char ifnames[XS_MAX_LINKS][XS_IFNAME_MAX];
} xs_shed;

/* Creates the maps and loads the program. Returns 0, or -errno with a message in `err`
 * (the verifier's log tail when it refused the program). */
int xs_open(xs_shed *s, int family, const uint8_t *vip, const uint16_t *ports, int nports,
            uint32_t max_flows, char *err, size_t errsz);
/* Attaches to an interface of the calling thread's network namespace: native (driver) mode,
 * else generic mode when `allow_generic`. Returns 0 (native), 1 (generic) or -errno. */
int xs_attach(xs_shed *s, const char *ifname, int allow_generic, char *err, size_t errsz);
/* Datagrams per second for each class (0: unlimited), converted to per-window counts. */
void xs_set_limits(xs_shed *s, uint64_t established_per_s, uint64_t unknown_per_s);
/* Adds (add != 0) or removes a flow; `addr` is 4 or 16 bytes in network order, ports in host
 * order. Returns 0 or -errno (removing an absent flow is 0). */
int xs_flow(xs_shed *s, const uint8_t *addr, uint16_t sport, uint16_t dport, int add);
void xs_counts(const xs_shed *s, uint64_t *established_drops, uint64_t *unknown_drops);
/* Runs the program `repeat` times on one frame without a device (BPF_PROG_TEST_RUN), as a
 * driver would in a burst, and reports how many it dropped (from the drop counters: exact on a
 * shed that is not attached anywhere). Returns 0 or -errno. */
int xs_run(xs_shed *s, const uint8_t *frame, uint32_t len, uint32_t repeat, uint64_t *dropped,
           char *err, size_t errsz);
/* Detaches from every interface and frees everything. */
void xs_close(xs_shed *s);

#endif
