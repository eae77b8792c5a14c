/**
 * The icmp probe's full conformance suite (root): loopback always answers echo, so the dead,
 * silent and "answers with an error" targets live in a namespace. The probe runs `ping` inside
 * the prober's namespace (`ip netns exec`), exactly as in production apart from the prefix.
 *
 *   ns `probe` 198.18.0.1, 2001:db8::1 ── veth ── ns `host` 198.18.0.2, 2001:db8::2
 *   198.18.0.99: nobody (no ARP answer: silence); 198.18.7.7: `host` answers "prohibited".
 */
import { after } from 'node:test';
import { canUseNamespaces, Topology } from '../../lab/netns.js';
import { hasFile, requireOrSkip } from '../../lab/requirements.js';
import { createIcmpProbe } from '../../src/health/checks/icmp/icmp-probe.js';
import type { TestTarget } from '../support/loopback-targets.js';
import { describeProbeConformance } from '../support/probe-conformance.js';

const skipReason = requireOrSkip(
  'health-icmp',
  canUseNamespaces(),
  hasFile('/usr/bin/ping', 'iputils-ping'),
);

let topo: Topology | undefined;
let ready: Promise<Topology> | undefined;
function lab(): Promise<Topology> {
  ready ??= (async () => {
    const t = Topology.create('hicmp');
    topo = t;
    await t.addNamespace('probe');
    await t.addNamespace('host');
    await t.link({
      a: 'probe',
      b: 'host',
      aAddresses: ['198.18.0.1/24', '2001:db8::1/64'],
      bAddresses: ['198.18.0.2/24', '2001:db8::2/64'],
    });
    await t.route('probe', '198.18.7.0/24', '198.18.0.2');
    await t.ns('host').exec('ip', ['route', 'add', 'prohibit', '198.18.7.7/32']);
    return t;
  })();
  return ready;
}
after(async () => {
  await topo?.destroy();
});

const target = (address: string, family: 4 | 6) => async (): Promise<TestTarget> => {
  await lab();
  return { target: { address, family }, close: async () => undefined };
};

describeProbeConformance({
  name: 'icmp probe (namespaces)',
  skipAll: skipReason || undefined,
  portless: true,
  // Resolved lazily: the namespace name exists once lab() ran (every target factory awaits it).
  createProbe: () => ({
    type: 'icmp',
    probe: (t, signal, timeoutMs) =>
      createIcmpProbe({ command: ['ip', 'netns', 'exec', topo!.ns('probe').name, 'ping'] }).probe(
        t,
        signal,
        timeoutMs,
      ),
  }),
  live: [
    { label: 'IPv4', start: target('198.18.0.2', 4) },
    { label: 'IPv6', start: target('2001:db8::2', 6) },
  ],
  dead: target('198.18.0.99', 4),
  silent: target('198.18.0.99', 4),
  garbage: [
    {
      label: 'ICMP "administratively prohibited" instead of an echo reply',
      start: target('198.18.7.7', 4),
    },
  ],
  timeoutMs: 1000,
});
