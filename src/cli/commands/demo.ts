import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, type Command, type CommandIo } from '../command.js';
import { runDemo, type DemoEvent, type PhaseResult } from '../../demo/demo-runner.js';
import { DEMO } from '../../demo/demo-config.js';

/**
 * `vpnlb demo [--duration S] [--json]`: the product on any machine, no root, no configuration.
 * Simulated RRAS servers and clients on loopback, the balancer in between; two phases tell the
 * error-809 story (full NAT from one address) and its fix (an SNAT pool). `--json` prints one
 * JSON object at the end and nothing else on stdout.
 */
export const demoCommand: Command = {
  name: 'demo',
  summary: 'show vpnlb at work on loopback: simulated RRAS farm and clients, no root, no config',
  usage: 'vpnlb demo [--duration SECONDS] [--clients N] [--json]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      duration: { type: 'string', short: 'd' },
      clients: { type: 'string' },
      json: { type: 'boolean' },
    });
    const seconds = values.duration === undefined ? 20 : Number(values.duration);
    if (!Number.isFinite(seconds) || seconds < 4 || seconds > 3600) {
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--duration must be a number of seconds between 4 and 3600 (got ${values.duration})\nusage: ${this.usage}`,
        'client',
      );
    }
    const clients = values.clients === undefined ? DEMO.clientsPerPhase : Number(values.clients);
    if (!Number.isInteger(clients) || clients < 1 || clients > 250) {
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--clients must be an integer between 1 and 250 (got ${values.clients})\nusage: ${this.usage}`,
        'client',
      );
    }
    const json = values.json === true;
    const report = await runDemo({
      durationMs: seconds * 1000,
      clientsPerPhase: clients,
      ...(json ? {} : { onEvent: (e: DemoEvent) => view(e, io) }),
    });
    if (json) {
      io.out(JSON.stringify(report));
    } else {
      io.out(conclusion(report.phases.fullNat, report.phases.snatPool));
    }
    return 0;
  },
};

const INTRO = [
  'vpnlb demo — everything runs on loopback (127.0.0.0/8), no root, no configuration.',
  '',
  `  3 simulated Windows RRAS servers   ${DEMO.servers.join(', ')}  (each accepts at most ${DEMO.perIpLimit} IKE SAs`,
  '                                     from one source address, like Windows IKEEXT)',
  `  the balancer (userspace relay)     ${DEMO.vipFullNat} (plain full NAT), ${DEMO.vipSnatPool} (SNAT pool)`,
  '  simulated IKEv2 clients            127.1.x.y: IKE_SA_INIT on 500, IKE_AUTH on 4500 from a new port, ESP',
];

function view(e: DemoEvent, io: CommandIo): void {
  switch (e.type) {
    case 'started':
      io.out(INTRO.join('\n'));
      if (e.loginUrl)
        io.out(
          `\n  dashboard: ${e.loginUrl}\n             (a one-time login link: open it to watch the backends live)`,
        );
      // The balancer's own start-up warning for full NAT (what `vpnlb run` logs, too).
      for (const w of e.warnings.filter((x) => x.includes('error 809')))
        io.out(`  balancer warning: ${w}`);
      break;
    case 'phase-start':
      io.out('');
      if (e.phase === 'fullNat') {
        io.out(`Phase 1 — ${e.title}.`);
        io.out(
          "  The relay is full NAT: every client reaches the servers from the balancer's one address.",
        );
        io.out(
          `  Each server counts all of them as ONE source and stops answering after ${DEMO.perIpLimit} SAs:`,
        );
        io.out(
          '  new clients time out — on Windows that is error 809 — while those already in keep working.',
        );
      } else {
        io.out(`Phase 2 — ${e.title}.`);
        io.out(
          `  Same load, but the relay leaves from ${DEMO.snatAddresses.length} source addresses and never puts more than`,
        );
        io.out(
          `  ${DEMO.perIpLimit} sessions on one (address, server) pair: no server sees too many SAs from one address.`,
        );
      }
      break;
    case 'tick': {
      const p = e.progress;
      const servers = p.servers
        .map(
          (s) =>
            `${s.name} ${s.sas} SA from ${s.sourceAddresses} addr${s.refused ? `, ${s.refused} IKE_SA_INIT dropped` : ''}`,
        )
        .join(' | ');
      io.out(
        `  [${(e.elapsedMs / 1000).toFixed(0).padStart(3)}s] clients ${p.started} started, ${p.connected} connected, ${p.failed} failed` +
          ` (${p.failedByPerIpLimit} at the per-IP limit), split handshakes ${p.splitHandshakes}  ·  ${servers}`,
      );
      break;
    }
    case 'phase-end': {
      const r = e.result;
      io.out(
        `  => ${r.connected}/${r.attempted} connected, ${r.failed} failed (${r.failedByPerIpLimit} refused by a server's per-IP limit), ${r.splitHandshakes} split handshakes.`,
      );
      io.out(
        `     servers saw ${r.sourceAddresses.length} source address(es): ${r.sourceAddresses.join(', ')}`,
      );
      break;
    }
  }
}

function conclusion(fullNat: PhaseResult, snat: PhaseResult): string {
  return [
    '',
    'What this showed:',
    `  - Full NAT from one address: ${fullNat.failedByPerIpLimit} of ${fullNat.attempted} clients were refused by the servers' per-source-IP limit.`,
    '    vpnlb avoids that by default: the kernel data plane forwards with destination NAT only, so each',
    '    server sees the real client address (its replies must route back through the balancer).',
    `  - Where full NAT is unavoidable, an SNAT pool sized against the servers' limit: ${snat.failed} of ${snat.attempted} failed.`,
    `  - 500 → 4500 affinity: ${fullNat.splitHandshakes + snat.splitHandshakes} client(s) had packets on more than one server.`,
    '  See docs/operations.md ("Transparent vs full NAT", "The userspace IKEv2 relay").',
  ].join('\n');
}
