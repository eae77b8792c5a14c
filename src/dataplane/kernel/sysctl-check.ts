/**
 * Host settings the kernel data plane depends on. vpnlb checks and warns; it does not change
 * the host's sysctls (they belong to the administrator and often to configuration management).
 *
 * - Forwarding (`net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`): without it DNATed
 *   packets are not forwarded at all.
 * - Conntrack timeouts: an idle tunnel's 4500 flow lives on NAT-T keepalives, sent every 20 s
 *   (RFC 3948 §4, Windows and strongSwan default). A timeout at or below that lets the entry
 *   expire between keepalives; the next ESP packet then has no entry (it is routed by its pin,
 *   or dropped without one). The ruleset attaches its own `ct timeout` policy to the service's
 *   flows (replied: `flowTimeout`), so the host's `nf_conntrack_udp_timeout_stream` does not
 *   apply to them; what is checked is `flowTimeout` itself.
 * - `net.netfilter.nf_conntrack_max`: every client holds two entries (UDP 500 and 4500).
 */
import type { CommandRunner } from '../../platform/command-runner.js';

/** NAT-T keepalive interval (RFC 3948 §4 suggests 20 s; Windows and strongSwan use it). */
export const NAT_T_KEEPALIVE_SECONDS = 20;

export interface SysctlFinding {
  readonly key: string;
  readonly value: string | undefined;
  readonly severity: 'warning' | 'info';
  readonly message: string;
}

async function read(run: CommandRunner, key: string): Promise<string | undefined> {
  const r = await run('sysctl', ['-n', key]);
  return r.ok ? r.stdout.trim() : undefined;
}

/**
 * Reads the settings and returns what deserves a warning (or a hint).
 *
 * @param expectedFlows the number of client flows the farm should hold (sizing hint).
 * @param flowTimeoutMs the service's `flowTimeout`, which its `ct timeout` policy applies; when
 *   absent, the host's `nf_conntrack_udp_timeout_stream` is checked instead.
 */
export async function checkSysctls(
  run: CommandRunner,
  family: 4 | 6,
  expectedFlows: number,
  flowTimeoutMs?: number,
): Promise<SysctlFinding[]> {
  const out: SysctlFinding[] = [];
  const fwdKey = family === 6 ? 'net.ipv6.conf.all.forwarding' : 'net.ipv4.ip_forward';
  const fwd = await read(run, fwdKey);
  if (fwd !== undefined && fwd !== '1') {
    out.push({
      key: fwdKey,
      value: fwd,
      severity: 'warning',
      message: `${fwdKey} = ${fwd}: the kernel does not forward, so no client reaches a server; set ${fwdKey}=1 (sysctl -w, and in /etc/sysctl.d/ to persist)`,
    });
  }
  if (flowTimeoutMs !== undefined) {
    const s = Math.ceil(flowTimeoutMs / 1000);
    if (s <= NAT_T_KEEPALIVE_SECONDS + 10) {
      out.push({
        key: 'flowTimeout',
        value: `${s}s`,
        severity: 'warning',
        message: `flowTimeout ${s} s is not well above the NAT-T keepalive interval (${NAT_T_KEEPALIVE_SECONDS} s): idle tunnels lose their conntrack entry between keepalives; set it to 120s or more`,
      });
    }
  }
  const streamKey = 'net.netfilter.nf_conntrack_udp_timeout_stream';
  const stream = flowTimeoutMs === undefined ? await read(run, streamKey) : undefined;
  if (stream !== undefined && Number(stream) <= NAT_T_KEEPALIVE_SECONDS + 10) {
    out.push({
      key: streamKey,
      value: stream,
      severity: 'warning',
      message: `${streamKey} = ${stream} s is not well above the NAT-T keepalive interval (${NAT_T_KEEPALIVE_SECONDS} s): idle tunnels lose their conntrack entry between keepalives; set it to 120 or more`,
    });
  }
  const maxKey = 'net.netfilter.nf_conntrack_max';
  const max = await read(run, maxKey);
  if (max !== undefined && Number(max) < 2 * expectedFlows) {
    out.push({
      key: maxKey,
      value: max,
      severity: 'info',
      message: `${maxKey} = ${max}: each VPN client holds 2 conntrack entries (UDP 500 and 4500); for ${expectedFlows} clients set it to at least ${2 * expectedFlows}`,
    });
  }
  return out;
}
