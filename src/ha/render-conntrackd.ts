/**
 * conntrackd.conf for one node: FTFW (the reliable mode of conntrack-tools, preferred by its
 * manual) over UDP on the dedicated sync link.
 *
 * Choices, with their evidence (DESIGN §6, a reference pair measured on this kind of machine):
 * - `DisableExternalCache on`: replicated entries go straight into the standby's kernel table,
 *   so at takeover there is nothing to commit and the first packet of every tunnel finds its
 *   NATed entry. The textbook external cache + `conntrackd -c` at takeover lost 10 of 23
 *   tunnels once: packets that arrive before the commit create fresh entries that clash.
 * - `Protocol Accept { UDP }`: IKEv2 and ESP-in-UDP (RFC 3948) are UDP; the shipped FTFW example
 *   accepts only TCP. SSTP is left out on purpose: its TCP connections end in the node's own
 *   userspace proxy, whose sockets cannot move to the peer (SSTP clients reconnect).
 * - `Address Ignore`: conntrackd matches the original source and the reply source (the client and
 *   the server, never the VIP); ignoring loopback and the pair's own sync and VRRP addresses keeps
 *   the node's own flows (sync traffic, health probes from the gateway address) out of the peer.
 */
import { isIP } from 'node:net';
import type { HaConfig, HaNode } from '../config/types.js';
import { parseCidr } from '../config/ha.js';
import type { HaPaths } from './paths.js';

export interface ConntrackdInput {
  readonly ha: HaConfig;
  readonly self: HaNode;
  readonly peer: HaNode;
  readonly paths: HaPaths;
  readonly source: string;
}

export function renderConntrackdConf(input: ConntrackdInput): string {
  const { ha, self, peer, paths } = input;
  const v6 = isIP(self.syncAddress) === 6;
  const fam = v6 ? 'IPv6' : 'IPv4';
  const ignore = [
    '127.0.0.1',
    '::1',
    self.syncAddress,
    peer.syncAddress,
    ...[...ha.vrrp.outside.addresses, ...ha.vrrp.inside.addresses].map(
      (a) => parseCidr(a)?.address ?? a,
    ),
  ];
  const out = [
    `# vpnlb ${self.name} (peer ${peer.name}), rendered from ${input.source} by \`vpnlb ha render\`: edit that file, not this one.`,
    'Sync {',
    '\tMode FTFW {',
    '\t\tDisableExternalCache on',
    // Ask the peer for its whole table at start: a node that comes back must hold every
    // tunnel's entry before `preempt_delay` ends and it takes the addresses back.
    '\t\tStartupResync on',
    '\t}',
    '\tUDP {',
    `\t\t${fam}_address ${self.syncAddress}`,
    `\t\t${fam}_Destination_Address ${peer.syncAddress}`,
    `\t\tPort ${ha.sync.port}`,
    `\t\tInterface ${ha.sync.interface}`,
    '\t\tSndSocketBuffer 1249280',
    '\t\tRcvSocketBuffer 1249280',
    '\t\tChecksum on',
    '\t}',
    '}',
    'General {',
    '\tHashSize 32768',
    '\tHashLimit 131072',
    `\tLogFile ${paths.conntrackdLog}`,
    '\tSyslog off',
    `\tLockFile ${paths.conntrackdLock}`,
    '\tUNIX {',
    `\t\tPath ${paths.conntrackdSocket}`,
    '\t}',
    '\tNetlinkBufferSize 2097152',
    '\tNetlinkBufferSizeMaxGrowth 8388608',
    '\tFilter From Userspace {',
    '\t\tProtocol Accept {',
    '\t\t\tUDP',
    '\t\t}',
    '\t\tAddress Ignore {',
    ...[...new Set(ignore)].map((a) => `\t\t\t${isIP(a) === 6 ? 'IPv6' : 'IPv4'}_address ${a}`),
    '\t\t}',
    '\t}',
    '}',
  ];
  return `${out.join('\n')}\n`;
}
