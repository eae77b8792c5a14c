/**
 * `icmp` monitor: one ICMP echo request, up on the echo reply (IPv4 RFC 792, IPv6 RFC 4443 §4).
 *
 * How it sends ICMP: through the system `ping` (Debian `iputils-ping`), one child process per
 * probe: `ping -n -c 1 -W <timeout s> -4|-6 <address>`. Node has no raw or ICMP sockets, and the
 * npm raw-socket addons (`raw-socket`, `net-ping`) are unmaintained native modules that need
 * root or CAP_NET_RAW for the whole Node process. iputils `ping` needs no privilege of its own
 * beyond what the distribution gives it: it uses an unprivileged ICMP datagram socket when the
 * process's group is inside `net.ipv4.ping_group_range`, else the raw socket its file
 * capability `cap_net_raw=ep` allows (Debian installs it so). Without either, ping fails with
 * "Operation not permitted" and every probe reports that (down, with the reason) — the
 * balancer does not crash. `ping` checks the reply's identifier, sequence and checksum itself,
 * so a forged or stray ICMP message cannot count as a reply. A process per probe costs a few
 * milliseconds of CPU every `interval`: negligible next to the farm's traffic, and fully
 * asynchronous (the event loop only sees the exit). The probe kills the child at its own
 * deadline as well, in case `-W` is not honoured; that deadline runs from the moment the child
 * process exists, so that a busy balancer's slow fork does not count as the server's silence.
 */
import { spawn } from 'node:child_process';
import type { Probe, ProbeResult, ProbeTarget } from '../../monitor.js';
import { settleProbe, targetProblem } from '../settle.js';
import { missingCapabilityMessage } from '../../../platform/capabilities.js';

/** Options of the `icmp` probe. */
export interface IcmpProbeOptions {
  /**
   * The command that runs ping, default `['ping']`; arguments are appended. The lab runs it
   * inside a namespace (`['ip', 'netns', 'exec', NS, 'ping']`).
   */
  readonly command?: readonly string[];
}

/** Whether ping's failure output says it lacks the privilege to open its socket. */
function isPermissionProblem(text: string): boolean {
  return /Operation not permitted|Permission denied|socket: |cap_net_raw/i.test(text);
}

/**
 * Why ping could not even start. EPERM from execve is the kernel refusing a program whose file
 * capabilities (Debian's ping: cap_net_raw=ep) it cannot grant — the bounding set lacks
 * CAP_NET_RAW, or no_new_privs limits it to what vpnlb holds (capabilities(7): a
 * "capability-dumb" binary fails rather than run without them).
 */
function spawnFailure(cmd: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return `icmp probe: "${cmd}" not found (install iputils-ping)`;
  if (err.code === 'EPERM')
    return `icmp probe: cannot run ${cmd}: ${missingCapabilityMessage('CAP_NET_RAW', `the kernel refused to start ${cmd} (spawn EPERM)`)}`;
  return `icmp probe: cannot run ${cmd}: ${err.message}`;
}

/** Creates the `icmp` probe. */
export function createIcmpProbe(options: IcmpProbeOptions = {}): Probe {
  const [cmd = 'ping', ...prefix] = options.command ?? ['ping'];
  return {
    type: 'icmp',
    probe(target: ProbeTarget, signal: AbortSignal, timeoutMs: number): Promise<ProbeResult> {
      return settleProbe(
        signal,
        timeoutMs,
        (finish, ready) => {
          const problem = targetProblem(target, false);
          if (problem !== undefined) {
            finish(false, `icmp probe: ${problem}`);
            return;
          }
          // iputils: -W accepts fractional seconds; -n: no reverse lookup of the reply's source.
          const waitSec = Math.max(0.001, timeoutMs / 1000).toFixed(3);
          let child: ReturnType<typeof spawn>;
          try {
            child = spawn(
              cmd,
              [...prefix, '-n', '-c', '1', '-W', waitSec, `-${target.family}`, target.address],
              {
                stdio: ['ignore', 'pipe', 'pipe'],
              },
            );
          } catch (err) {
            finish(false, spawnFailure(cmd, err as NodeJS.ErrnoException));
            return undefined;
          }
          let output = '';
          const collect = (d: Buffer) => {
            if (output.length < 4096) output += d.toString();
          };
          child.stdout?.on('data', collect);
          child.stderr?.on('data', collect);
          // The deadline runs from here: fork and exec on a loaded host are the balancer's own
          // delay, and 20 probes started at once must not time out before their ping runs.
          child.once('spawn', ready);
          child.once('error', (err: NodeJS.ErrnoException) =>
            finish(false, spawnFailure(cmd, err)),
          );
          child.once('close', (code) => {
            if (code === 0) {
              const rtt = /time[=<]([0-9.]+) ?ms/.exec(output);
              const latency = rtt ? Number(rtt[1]) : undefined;
              finish(
                true,
                `icmp echo reply from ${target.address}${rtt ? ` in ${rtt[1]} ms` : ''}`,
                latency,
              );
            } else if (code === 1) {
              finish(
                false,
                `icmp probe: no echo reply within ${timeoutMs} ms${/Unreachable|Prohibited|exceeded/i.test(output) ? ` (${lastLine(output, /Unreachable|Prohibited|exceeded/i)})` : ''}`,
              );
            } else {
              const why = lastLine(output) || `exit code ${String(code)}`;
              finish(
                false,
                `icmp probe: ping failed: ${why}${isPermissionProblem(why) ? ` (${missingCapabilityMessage('CAP_NET_RAW', 'ping could not open its ICMP socket')}, or let the vpnlb group use ICMP datagram sockets: net.ipv4.ping_group_range)` : ''}`,
              );
            }
          });
          return () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          };
        },
        () => `icmp probe: no echo reply within ${timeoutMs} ms`,
        { clockStartsAt: 'ready' },
      );
    },
  };
}

function lastLine(text: string, match?: RegExp): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && (!match || match.test(l)));
  return lines[lines.length - 1] ?? '';
}
