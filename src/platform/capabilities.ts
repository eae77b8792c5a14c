/**
 * The Linux capabilities vpnlb needs, and what it can tell about its own (capabilities(7)).
 *
 * vpnlb runs as its own unprivileged user with exactly three capabilities, given by systemd
 * (`AmbientCapabilities=`, `CapabilityBoundingSet=`) or by `setpriv`:
 * - `CAP_NET_ADMIN`: nftables (`nft`) and conntrack (`conntrack -L/-D`) over netlink;
 * - `CAP_NET_RAW`: the `icmp` monitor's `ping` (a raw ICMP socket);
 * - `CAP_NET_BIND_SERVICE`: listeners on ports below 1024 (SSTP 443, IKEv2 500 and 4500).
 *
 * The helper programs (`nft`, `conntrack`, `ping`) are separate processes, and that is where
 * the set that matters differs from Node's own: capabilities(7), "Transformation of
 * capabilities during execve()": a program without file capabilities, started by a non-root
 * user, gets P'(permitted) = P'(ambient) only. So for an unprivileged vpnlb the AMBIENT set is
 * what nft and conntrack receive (systemd's `AmbientCapabilities=` fills it; `setpriv
 * --ambient-caps` too, which also needs the capability in the inheritable set). `ping` carries
 * the file capability `cap_net_raw=ep` on Debian, which the bounding set still limits; under
 * `NoNewPrivileges=yes` it gets at most what vpnlb holds itself (prctl(2), PR_SET_NO_NEW_PRIVS).
 * When uid 0 runs a program, the kernel treats its file sets as full: the helpers get the
 * bounding set (unless the SECBIT_NOROOT securebit is set, which vpnlb does not use).
 */
import { readFileSync } from 'node:fs';
import { VpnlbError } from '../errors.js';

/** Capability numbers (linux/capability.h). */
export const CAPABILITY_BITS = {
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_ADMIN: 12,
  CAP_NET_RAW: 13,
} as const;

export type CapabilityName = keyof typeof CAPABILITY_BITS;

/** Why vpnlb needs each capability (used in every "missing capability" message). */
export const CAPABILITY_PURPOSE: Readonly<Record<CapabilityName, string>> = {
  CAP_NET_ADMIN: 'to program nftables and delete conntrack entries (kernel data plane)',
  CAP_NET_RAW: 'to send ICMP echo requests (icmp monitor)',
  CAP_NET_BIND_SERVICE: 'to listen on ports below 1024 (SSTP 443, IKEv2 500 and 4500)',
};

/** The capability sets of a process, from `/proc/<pid>/status` (hex masks). */
export interface ProcessCapabilities {
  /** Real user id (first field of `Uid:`). */
  readonly uid: number;
  readonly effective: bigint;
  readonly permitted: bigint;
  readonly inheritable: bigint;
  readonly bounding: bigint;
  readonly ambient: bigint;
}

/**
 * Parses the `Uid:` and `Cap*:` lines of `/proc/<pid>/status` (proc(5)). Returns undefined
 * when they are missing (not Linux, or a kernel without ambient capabilities, < 4.3).
 */
export function parseProcStatus(text: string): ProcessCapabilities | undefined {
  const field = (name: string): string | undefined =>
    new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(text)?.[1];
  const mask = (name: string): bigint | undefined => {
    const v = field(name);
    return v !== undefined && /^[0-9a-f]+$/i.test(v) ? BigInt(`0x${v}`) : undefined;
  };
  const uid = Number(field('Uid'));
  const effective = mask('CapEff');
  const permitted = mask('CapPrm');
  const inheritable = mask('CapInh');
  const bounding = mask('CapBnd');
  const ambient = mask('CapAmb');
  if (
    !Number.isInteger(uid) ||
    effective === undefined ||
    permitted === undefined ||
    inheritable === undefined ||
    bounding === undefined ||
    ambient === undefined
  ) {
    return undefined;
  }
  return { uid, effective, permitted, inheritable, bounding, ambient };
}

/** This process's capabilities, or undefined where /proc cannot tell. */
export function readProcessCapabilities(
  path = '/proc/self/status',
): ProcessCapabilities | undefined {
  try {
    return parseProcStatus(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

const has = (mask: bigint, cap: CapabilityName): boolean =>
  (mask & (1n << BigInt(CAPABILITY_BITS[cap]))) !== 0n;

/** Whether vpnlb itself (Node: its sockets) holds `cap` in its effective set. */
export function holds(caps: ProcessCapabilities, cap: CapabilityName): boolean {
  return has(caps.effective, cap);
}

/**
 * Whether a helper program without file capabilities (`nft`, `conntrack`) started by this
 * process gets `cap`: root's children get the bounding set, anyone else's the ambient set.
 */
export function helperReceives(caps: ProcessCapabilities, cap: CapabilityName): boolean {
  return caps.uid === 0 ? has(caps.bounding, cap) : has(caps.ambient, cap);
}

/** Names of the capabilities of `mask` that vpnlb cares about, e.g. `CAP_NET_ADMIN,CAP_NET_RAW`. */
export function describeMask(mask: bigint): string {
  const names = (Object.keys(CAPABILITY_BITS) as CapabilityName[]).filter((c) => has(mask, c));
  return names.length > 0 ? names.join(',') : 'none';
}

/**
 * The one wording of a missing capability, e.g. "vpnlb needs CAP_NET_ADMIN to program
 * nftables ...: <what happened>; ...how to grant it".
 */
export function missingCapabilityMessage(cap: CapabilityName, detail: string): string {
  return (
    `vpnlb needs ${cap} ${CAPABILITY_PURPOSE[cap]}: ${detail}; ` +
    `grant it with the packaged unit (AmbientCapabilities=${cap}) or run as root` +
    (cap === 'CAP_NET_RAW' ? '' : ` (for a helper program it must be in vpnlb's ambient set)`)
  );
}

/** Whether a helper's or a socket's error text is the kernel's EPERM / EACCES. */
export function isPermissionError(text: string): boolean {
  return /Operation not permitted|Permission denied|\bEPERM\b|\bEACCES\b/.test(text);
}

/**
 * Appends the capability hint to a helper's error text when it is a permission error
 * (nft and conntrack print "Operation not permitted" and nothing about why).
 */
export function explainPermissionError(text: string, cap: CapabilityName): string {
  return isPermissionError(text)
    ? `${text} (${missingCapabilityMessage(cap, 'the kernel refused the operation')})`
    : text;
}

/**
 * The error of a listener that could not bind: EACCES on a port below 1024 is the missing
 * CAP_NET_BIND_SERVICE (ip(7): "binding to a port number below 1024 requires ... the
 * CAP_NET_BIND_SERVICE capability", unless net.ipv4.ip_unprivileged_port_start is lowered).
 *
 * @param what e.g. `sstp: cannot listen on 198.18.1.1:443`
 */
export function listenError(what: string, port: number, err: Error): VpnlbError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EACCES' && port > 0 && port < 1024) {
    return new VpnlbError(
      'VPNLB_MISSING_CAPABILITY',
      `${what}: ${missingCapabilityMessage('CAP_NET_BIND_SERVICE', `bind returned EACCES`)}`,
      'internal',
      { cause: err },
    );
  }
  return new VpnlbError('VPNLB_LISTEN', `${what}: ${code ?? err.message}`, 'internal', {
    cause: err,
  });
}
