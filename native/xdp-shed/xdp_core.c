/* The XDP shedding program and its maps (xdp_shed.h). Plain C and bpf(2): no libbpf. */
#define _GNU_SOURCE
#include "xdp_shed.h"

#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_bpf(int cmd, union bpf_attr *attr) {
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

/* ---- a tiny assembler: instructions, and forward jumps to labels patched at the end ---- */

#define MAX_INSNS 160
enum { L_PASS, L_MATCH, L_CLASS, L_CLAMPED, L_LEVEL, L_COUNT, L_COUNT_LABELS };

typedef struct {
  struct bpf_insn insn[MAX_INSNS];
  int n;
  int label_at[L_COUNT_LABELS];
  int fix_at[MAX_INSNS];
  int fix_label[MAX_INSNS];
  int nfix;
  int overflow;
} prog_buf;

static void emit(prog_buf *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  if (p->n >= MAX_INSNS) {
    p->overflow = 1;
    return;
  }
  struct bpf_insn *i = &p->insn[p->n++];
  memset(i, 0, sizeof *i);
  i->code = code;
  i->dst_reg = dst;
  i->src_reg = src;
  i->off = off;
  i->imm = imm;
}

static void label(prog_buf *p, int l) { p->label_at[l] = p->n; }

/* A jump to label `l`: `code` is the whole opcode (BPF_JMP or BPF_JMP32, op, BPF_K or BPF_X);
 * its offset is patched once the label is placed. */
static void jump(prog_buf *p, uint8_t code, uint8_t dst, uint8_t src, int32_t imm, int l) {
  if (p->nfix < MAX_INSNS) {
    p->fix_at[p->nfix] = p->n;
    p->fix_label[p->nfix++] = l;
  }
  emit(p, code, dst, src, 0, imm);
}

/* Conditional jumps: `op` BPF_JEQ etc.; 32- or 64-bit compare with an immediate, or registers. */
static void jmp32_imm(prog_buf *p, uint8_t op, uint8_t dst, int32_t imm, int l) {
  jump(p, BPF_JMP32 | op | BPF_K, dst, 0, imm, l);
}
static void jmp64_imm(prog_buf *p, uint8_t op, uint8_t dst, int32_t imm, int l) {
  jump(p, BPF_JMP | op | BPF_K, dst, 0, imm, l);
}
static void jmp64_reg(prog_buf *p, uint8_t op, uint8_t dst, uint8_t src, int l) {
  jump(p, BPF_JMP | op | BPF_X, dst, src, 0, l);
}

static void ldx(prog_buf *p, uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  emit(p, BPF_LDX | size | BPF_MEM, dst, src, off, 0);
}
static void stx(prog_buf *p, uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  emit(p, BPF_STX | size | BPF_MEM, dst, src, off, 0);
}
static void mov_imm(prog_buf *p, uint8_t dst, int32_t imm) {
  emit(p, BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm);
}
static void mov_reg(prog_buf *p, uint8_t dst, uint8_t src) {
  emit(p, BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0);
}
static void alu_imm(prog_buf *p, uint8_t op, uint8_t dst, int32_t imm) {
  emit(p, BPF_ALU64 | op | BPF_K, dst, 0, 0, imm);
}
static void ld_map_fd(prog_buf *p, uint8_t dst, int fd) {
  emit(p, BPF_LD | BPF_DW | BPF_IMM, dst, BPF_PSEUDO_MAP_FD, 0, fd);
  emit(p, 0, 0, 0, 0, 0);
}
static void call(prog_buf *p, int32_t helper) { emit(p, BPF_JMP | BPF_CALL, 0, 0, 0, helper); }
static void ret(prog_buf *p, int32_t v) {
  mov_imm(p, BPF_REG_0, v);
  emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static int patch(prog_buf *p) {
  if (p->overflow) return -1;
  for (int i = 0; i < p->nfix; i++) {
    int at = p->fix_at[i];
    p->insn[at].off = (int16_t)(p->label_at[p->fix_label[i]] - at - 1);
  }
  return 0;
}

/* A u32 / u16 read from packet bytes as the program's little-endian load sees them. */
static int32_t le32(const uint8_t *b) {
  return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24);
}
static int32_t net16(uint16_t host) { return (int32_t)(((host & 0xff) << 8) | (host >> 8)); }

/*
 * r2 = data, r3 = data_end. Checks the frame; on a match leaves the flow key on the stack at
 * `key_off` from r10 and falls through, else jumps to L_PASS. Returns the key's offset.
 */
static int16_t emit_match(prog_buf *p, int family, const uint8_t *vip, const uint16_t *ports,
                          int nports) {
  const uint8_t R2 = BPF_REG_2, R3 = BPF_REG_3, R4 = BPF_REG_4, R5 = BPF_REG_5, R7 = BPF_REG_7;
  const int l3 = 14;
  const int l4 = family == 4 ? l3 + 20 : l3 + 40;
  mov_reg(p, R4, R2);
  alu_imm(p, BPF_ADD, R4, l4 + 8);
  jmp64_reg(p, BPF_JGT, R4, R3, L_PASS);
  ldx(p, BPF_H, R5, R2, 12);
  jmp32_imm(p, BPF_JNE, R5, family == 4 ? 0x0008 : 0xDD86, L_PASS);
  if (family == 4) {
    ldx(p, BPF_B, R5, R2, l3);
    jmp32_imm(p, BPF_JNE, R5, 0x45, L_PASS); /* version 4, no options */
    ldx(p, BPF_B, R5, R2, l3 + 9);
    jmp32_imm(p, BPF_JNE, R5, 17, L_PASS);
    ldx(p, BPF_H, R5, R2, l3 + 6);
    alu_imm(p, BPF_AND, R5, 0xFF1F); /* fragment offset (network order, read little-endian) */
    jmp32_imm(p, BPF_JNE, R5, 0, L_PASS);
    ldx(p, BPF_W, R5, R2, l3 + 16);
    jmp32_imm(p, BPF_JNE, R5, le32(vip), L_PASS);
  } else {
    ldx(p, BPF_B, R5, R2, l3 + 6);
    jmp32_imm(p, BPF_JNE, R5, 17, L_PASS);
    for (int w = 0; w < 4; w++) {
      ldx(p, BPF_W, R5, R2, (int16_t)(l3 + 24 + 4 * w));
      jmp32_imm(p, BPF_JNE, R5, le32(vip + 4 * w), L_PASS);
    }
  }
  ldx(p, BPF_H, R5, R2, (int16_t)(l4 + 2));
  for (int i = 0; i < nports; i++) jmp32_imm(p, BPF_JEQ, R5, net16(ports[i]), L_MATCH);
  jmp64_imm(p, BPF_JA, 0, 0, L_PASS);
  label(p, L_MATCH);
  /* key: source address, source port, destination port (network order) */
  const int alen = family == 4 ? 4 : 16;
  const int16_t key = (int16_t)-(alen + 4 + 4); /* 8-byte aligned below r10 */
  for (int w = 0; w < alen / 4; w++) {
    ldx(p, BPF_W, R7, R2, (int16_t)((family == 4 ? l3 + 12 : l3 + 8) + 4 * w));
    stx(p, BPF_W, BPF_REG_10, R7, (int16_t)(key + 4 * w));
  }
  ldx(p, BPF_H, R7, R2, (int16_t)l4);
  stx(p, BPF_H, BPF_REG_10, R7, (int16_t)(key + alen));
  stx(p, BPF_H, BPF_REG_10, R5, (int16_t)(key + alen + 2));
  return key;
}

static int build(prog_buf *p, int family, const uint8_t *vip, const uint16_t *ports, int nports,
                 int flows_fd, int state_fd) {
  memset(p, 0, sizeof *p);
  ldx(p, BPF_W, BPF_REG_2, BPF_REG_1, 0); /* data */
  ldx(p, BPF_W, BPF_REG_3, BPF_REG_1, 4); /* data_end */
  int16_t key = emit_match(p, family, vip, ports, nports);
  /* established when the flow is known */
  ld_map_fd(p, BPF_REG_1, flows_fd);
  mov_reg(p, BPF_REG_2, BPF_REG_10);
  alu_imm(p, BPF_ADD, BPF_REG_2, key);
  call(p, BPF_FUNC_map_lookup_elem);
  mov_imm(p, BPF_REG_7, 0);
  jmp64_imm(p, BPF_JNE, BPF_REG_0, 0, L_CLASS);
  mov_imm(p, BPF_REG_7, (int32_t)sizeof(xs_class));
  label(p, L_CLASS);
  /* the class's slot in the state map */
  emit(p, BPF_ST | BPF_W | BPF_MEM, BPF_REG_10, 0, (int16_t)(key - 8), 0);
  ld_map_fd(p, BPF_REG_1, state_fd);
  mov_reg(p, BPF_REG_2, BPF_REG_10);
  alu_imm(p, BPF_ADD, BPF_REG_2, key - 8);
  call(p, BPF_FUNC_map_lookup_elem);
  jmp64_imm(p, BPF_JEQ, BPF_REG_0, 0, L_PASS);
  mov_reg(p, BPF_REG_8, BPF_REG_0);
  emit(p, BPF_ALU64 | BPF_ADD | BPF_X, BPF_REG_8, BPF_REG_7, 0, 0);
  ldx(p, BPF_DW, BPF_REG_6, BPF_REG_8, offsetof(xs_class, limit));
  jmp64_imm(p, BPF_JEQ, BPF_REG_6, 0, L_PASS);
  /* The refill, once per window: the level falls by `limit` for each window since the last one
   * (at most XS_BURST_WINDOWS + 1 count, so the product cannot overflow; a window in other
   * units after a change of shift refills the bucket once). Plain stores: an admission another
   * CPU counts between this load and store is forgotten, which is harmless. */
  call(p, BPF_FUNC_ktime_get_ns);
  ldx(p, BPF_DW, BPF_REG_1, BPF_REG_8, offsetof(xs_class, shift));
  emit(p, BPF_ALU64 | BPF_AND | BPF_K, BPF_REG_1, 0, 0, 63);
  emit(p, BPF_ALU64 | BPF_RSH | BPF_X, BPF_REG_0, BPF_REG_1, 0, 0);
  ldx(p, BPF_DW, BPF_REG_2, BPF_REG_8, offsetof(xs_class, window));
  jmp64_reg(p, BPF_JEQ, BPF_REG_2, BPF_REG_0, L_COUNT);
  stx(p, BPF_DW, BPF_REG_8, BPF_REG_0, offsetof(xs_class, window));
  emit(p, BPF_ALU64 | BPF_SUB | BPF_X, BPF_REG_0, BPF_REG_2, 0, 0);
  jmp64_imm(p, BPF_JLE, BPF_REG_0, XS_BURST_WINDOWS + 1, L_CLAMPED);
  mov_imm(p, BPF_REG_0, XS_BURST_WINDOWS + 1);
  label(p, L_CLAMPED);
  emit(p, BPF_ALU64 | BPF_MUL | BPF_X, BPF_REG_0, BPF_REG_6, 0, 0);
  ldx(p, BPF_DW, BPF_REG_1, BPF_REG_8, offsetof(xs_class, level));
  mov_imm(p, BPF_REG_2, 0);
  jmp64_reg(p, BPF_JLE, BPF_REG_1, BPF_REG_0, L_LEVEL);
  mov_reg(p, BPF_REG_2, BPF_REG_1);
  emit(p, BPF_ALU64 | BPF_SUB | BPF_X, BPF_REG_2, BPF_REG_0, 0, 0);
  label(p, L_LEVEL);
  stx(p, BPF_DW, BPF_REG_8, BPF_REG_2, offsetof(xs_class, level));
  /* Admitted while the level is under the depth; a dropped frame gives its count back, so a
   * flood does not keep the bucket empty after it ends. */
  label(p, L_COUNT);
  mov_imm(p, BPF_REG_3, 1);
  emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, BPF_REG_8, BPF_REG_3, offsetof(xs_class, level),
       BPF_ADD | BPF_FETCH);
  ldx(p, BPF_DW, BPF_REG_4, BPF_REG_8, offsetof(xs_class, depth));
  jmp64_reg(p, BPF_JLT, BPF_REG_3, BPF_REG_4, L_PASS);
  mov_imm(p, BPF_REG_3, -1);
  emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, BPF_REG_8, BPF_REG_3, offsetof(xs_class, level), BPF_ADD);
  mov_imm(p, BPF_REG_3, 1);
  emit(p, BPF_STX | BPF_DW | BPF_ATOMIC, BPF_REG_8, BPF_REG_3, offsetof(xs_class, drops), BPF_ADD);
  ret(p, XDP_DROP);
  label(p, L_PASS);
  ret(p, XDP_PASS);
  return patch(p);
}

static int map_create(uint32_t type, uint32_t key_size, uint32_t value_size, uint32_t max,
                      uint32_t flags, const char *name) {
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_type = type;
  a.key_size = key_size;
  a.value_size = value_size;
  a.max_entries = max;
  a.map_flags = flags;
  strncpy(a.map_name, name, sizeof a.map_name - 1);
  long fd = sys_bpf(BPF_MAP_CREATE, &a);
  return fd < 0 ? -errno : (int)fd;
}

static void init_shed(xs_shed *s) {
  memset(s, 0, sizeof *s);
  s->prog_fd = s->flows_fd = s->state_fd = -1;
  s->state = NULL;
}

int xs_open(xs_shed *s, int family, const uint8_t *vip, const uint16_t *ports, int nports,
            uint32_t max_flows, char *err, size_t errsz) {
  init_shed(s);
  if ((family != 4 && family != 6) || nports < 1 || nports > XS_MAX_PORTS || max_flows < 1) {
    snprintf(err, errsz, "bad arguments");
    return -EINVAL;
  }
  s->family = family;
  const uint32_t alen = family == 4 ? 4 : 16;
  int fd = map_create(BPF_MAP_TYPE_HASH, alen + 4, 1, max_flows, BPF_F_NO_PREALLOC, "vpnlb_flows");
  if (fd < 0) {
    snprintf(err, errsz, "cannot create the flows map: %s", strerror(-fd));
    return fd;
  }
  s->flows_fd = fd;
  fd = map_create(BPF_MAP_TYPE_ARRAY, 4, sizeof(xs_state), 1, BPF_F_MMAPABLE, "vpnlb_shed");
  if (fd < 0) {
    snprintf(err, errsz, "cannot create the state map: %s", strerror(-fd));
    xs_close(s);
    return fd;
  }
  s->state_fd = fd;
  void *m = mmap(NULL, (size_t)sysconf(_SC_PAGESIZE), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) {
    int e = errno;
    snprintf(err, errsz, "cannot map the state map: %s", strerror(e));
    xs_close(s);
    return -e;
  }
  s->state = m;
  prog_buf p;
  if (build(&p, family, vip, ports, nports, s->flows_fd, s->state_fd) < 0) {
    snprintf(err, errsz, "program too long");
    xs_close(s);
    return -E2BIG;
  }
  static char log[65536];
  log[0] = 0;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.prog_type = BPF_PROG_TYPE_XDP;
  a.insns = (uint64_t)(uintptr_t)p.insn;
  a.insn_cnt = (uint32_t)p.n;
  a.license = (uint64_t)(uintptr_t) "GPL";
  a.log_buf = (uint64_t)(uintptr_t)log;
  a.log_size = sizeof log;
  a.log_level = 1;
  strncpy(a.prog_name, "vpnlb_shed", sizeof a.prog_name - 1);
  long pfd = sys_bpf(BPF_PROG_LOAD, &a);
  if (pfd < 0) {
    int e = errno;
    size_t len = strlen(log);
    const char *tail = len > 600 ? log + len - 600 : log;
    snprintf(err, errsz, "the kernel refused the program: %s%s%s", strerror(e), *tail ? ": " : "",
             tail);
    xs_close(s);
    return -e;
  }
  s->prog_fd = (int)pfd;
  return 0;
}

int xs_attach(xs_shed *s, const char *ifname, int allow_generic, char *err, size_t errsz) {
  if (s->nlinks >= XS_MAX_LINKS) {
    snprintf(err, errsz, "more than %d interfaces", XS_MAX_LINKS);
    return -E2BIG;
  }
  unsigned idx = if_nametoindex(ifname);
  if (idx == 0) {
    int e = errno;
    snprintf(err, errsz, "no interface %s: %s", ifname, strerror(e));
    return -e;
  }
  for (int generic = 0; generic <= 1; generic++) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.link_create.prog_fd = (uint32_t)s->prog_fd;
    a.link_create.target_ifindex = idx;
    a.link_create.attach_type = BPF_XDP;
    a.link_create.flags = generic ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
    long l = sys_bpf(BPF_LINK_CREATE, &a);
    if (l >= 0) {
      s->links[s->nlinks] = (int)l;
      s->generic[s->nlinks] = generic;
      snprintf(s->ifnames[s->nlinks], XS_IFNAME_MAX, "%s", ifname);
      s->nlinks++;
      return generic;
    }
    int e = errno;
    if (generic || !allow_generic || e == EBUSY) {
      snprintf(err, errsz, "cannot attach to %s%s: %s%s", ifname, generic ? " (generic mode)" : "",
               strerror(e), e == EBUSY ? " (another XDP program is attached)" : "");
      return -e;
    }
  }
  return -EINVAL; /* not reached */
}

/* The class's refill per window for `per_s` datagrams/s (0: unlimited), and its depth; the shift
 * and depth before the limit: a datagram seeing the new limit with the old window or depth is
 * harmless (one window). */
static void set_class(xs_class *c, uint64_t per_s) {
  if (per_s == 0) {
    c->limit = 0;
    return;
  }
  unsigned shift = XS_WINDOW_SHIFT_MIN;
  while (shift < XS_WINDOW_SHIFT_MAX &&
         ((unsigned __int128)per_s << shift) < (unsigned __int128)XS_MIN_PER_WINDOW * 1000000000u)
    shift++;
  /* ceil(per_s * 2^shift / 1e9), at least 1 */
  unsigned __int128 w = ((unsigned __int128)per_s << shift) + 999999999u;
  uint64_t v = (uint64_t)(w / 1000000000u);
  if (v == 0) v = 1;
  c->shift = shift;
  c->depth = v * XS_BURST_WINDOWS;
  c->limit = v;
}

void xs_set_limits(xs_shed *s, uint64_t established_per_s, uint64_t unknown_per_s) {
  if (!s->state) return;
  set_class(&s->state->established, established_per_s);
  set_class(&s->state->unknown, unknown_per_s);
}

int xs_flow(xs_shed *s, const uint8_t *addr, uint16_t sport, uint16_t dport, int add) {
  uint8_t key[20];
  const size_t alen = s->family == 4 ? 4 : 16;
  memcpy(key, addr, alen);
  key[alen] = (uint8_t)(sport >> 8);
  key[alen + 1] = (uint8_t)sport;
  key[alen + 2] = (uint8_t)(dport >> 8);
  key[alen + 3] = (uint8_t)dport;
  uint8_t one = 1;
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.map_fd = (uint32_t)s->flows_fd;
  a.key = (uint64_t)(uintptr_t)key;
  if (add) {
    a.value = (uint64_t)(uintptr_t)&one;
    a.flags = BPF_ANY;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &a) < 0 ? -errno : 0;
  }
  if (sys_bpf(BPF_MAP_DELETE_ELEM, &a) < 0 && errno != ENOENT) return -errno;
  return 0;
}

void xs_counts(const xs_shed *s, uint64_t *established_drops, uint64_t *unknown_drops) {
  *established_drops = s->state ? s->state->established.drops : 0;
  *unknown_drops = s->state ? s->state->unknown.drops : 0;
}

int xs_run(xs_shed *s, const uint8_t *frame, uint32_t len, uint32_t repeat, uint64_t *dropped,
           char *err, size_t errsz) {
  uint64_t e0, u0, e1, u1;
  xs_counts(s, &e0, &u0);
  union bpf_attr a;
  memset(&a, 0, sizeof a);
  a.test.prog_fd = (uint32_t)s->prog_fd;
  a.test.data_in = (uint64_t)(uintptr_t)frame;
  a.test.data_size_in = len;
  a.test.repeat = repeat;
  if (sys_bpf(BPF_PROG_TEST_RUN, &a) < 0) {
    int e = errno;
    snprintf(err, errsz, "cannot run the program: %s", strerror(e));
    return -e;
  }
  xs_counts(s, &e1, &u1);
  *dropped = (e1 - e0) + (u1 - u0);
  return 0;
}

void xs_close(xs_shed *s) {
  for (int i = 0; i < s->nlinks; i++) close(s->links[i]);
  s->nlinks = 0;
  if (s->state) munmap(s->state, (size_t)sysconf(_SC_PAGESIZE));
  if (s->prog_fd >= 0) close(s->prog_fd);
  if (s->flows_fd >= 0) close(s->flows_fd);
  if (s->state_fd >= 0) close(s->state_fd);
  init_shed(s);
}
