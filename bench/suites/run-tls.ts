/**
 * Suite `tls`: TLS offload (terminate, forward plain TCP to :80): vpnlb offload · nginx stream
 * ssl · HAProxy ssl, all with the same certificate and TLS profile (contenders/tls-profile.ts),
 * session tickets at each product's default (on). Before measuring, one `openssl s_client` per
 * contender and certificate records what was negotiated (TLS 1.3 and, forced, TLS 1.2: protocol,
 * cipher, group, whether a ticket was issued) so the fairness of the setup is in the results.
 *
 * Full handshakes: `openssl s_time -new` clients on the generator core (CPU 1). A TLS client
 * verifies the server's signature: with ECDSA P-256 verifying costs the client more than signing
 * costs the server, so the generator core saturates first; a figure taken with the generator
 * core ≥ 90 % busy is marked "generator-bound" (a lower bound of the contender's capacity, not
 * its capacity), and "handshakes per balancer core-second" normalises by what the contender
 * actually spent.
 */
import { spawn } from 'node:child_process';
import { startHaproxy } from '../contenders/haproxy.js';
import { startNginx } from '../contenders/nginx.js';
import { startVpnlb, vpnlbAvailable } from '../contenders/vpnlb.js';
import { withContender, type BenchContext, type SuiteOutput } from '../lib/context.js';
import { collect, type Daemon } from '../lib/proc.js';
import { sleep } from '../../src/util/wait.js';
import type { ResultRatio, Row } from '../lib/report.js';
import { lowerRatio, ratio } from '../lib/stats.js';
import {
  BALANCER_CPU,
  GENERATOR_CPU,
  SERVER_ADDRS,
  GENERATOR_BOUND,
  VIP,
  type BenchTopology,
} from '../lib/topology.js';
import { measureHandshakes, measureTlsStream, medianOf, startServers } from './tcp-passthrough.js';

export interface Negotiated {
  readonly protocol?: string;
  readonly cipher?: string;
  readonly group?: string;
  readonly ticket: boolean;
}

/** Parses `openssl s_client -brief` output plus `sess_id -text` (pure). */
export function parseNegotiated(brief: string, session: string): Negotiated {
  const get = (re: RegExp, text: string) => re.exec(text)?.[1]?.trim();
  return {
    protocol: get(/Protocol version:\s*(\S+)/, brief),
    cipher: get(/Ciphersuite:\s*(\S+)/, brief),
    group: get(/(?:Server|Peer) Temp Key:\s*([^,\n]+)/, brief),
    ticket: /TLS session ticket lifetime hint/.test(session),
  };
}

async function negotiate(t: BenchTopology, dir: string, tls12: boolean): Promise<Negotiated> {
  const sess = `${dir}/sess-${tls12 ? '12' : '13'}.pem`;
  // stdin stays open 0.5 s so that s_client reads the TLS 1.3 tickets, sent after the handshake.
  const sh = `sleep 0.5 | openssl s_client -connect ${VIP}:443 -brief ${tls12 ? '-tls1_2' : ''} -sess_out ${sess} 2>&1; echo ===; openssl sess_id -in ${sess} -noout -text 2>&1`;
  const out = await collect(
    spawn('ip', ['netns', 'exec', t.snd.name, 'sh', '-c', sh], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
    15_000,
  );
  const [brief = '', session = ''] = out.stdout.split('===');
  return parseNegotiated(brief, session);
}

const fmtNeg = (n: Negotiated) =>
  `${n.protocol ?? '?'} ${n.cipher ?? '?'} ${n.group ?? '?'}${n.ticket ? ', ticket issued' : ', no ticket'}`;

export async function runTls(ctx: BenchContext): Promise<SuiteOutput> {
  const { t, tools, opts, log, work, certs } = ctx;
  log('TLS offload');
  const rows: Row[] = [];
  const raw: Record<string, unknown> = {};
  const negotiated: string[] = [];
  const hsProcs = 8;
  const hsSeconds = Math.max(1, Math.round(opts.shortSeconds));
  for (const name of ['vpnlb offload', 'nginx stream ssl', 'HAProxy ssl']) {
    const figures: Record<string, number | null> = {};
    const marks: Record<string, string> = {};
    let error: string | undefined;
    for (const [kind, c] of [
      ['p256', certs.ec],
      ['rsa', certs.rsa],
    ] as const) {
      const dir = `${work}/${name.split(' ')[0]}-${kind}`;
      const start = (): Promise<Daemon> => {
        if (name === 'vpnlb offload') {
          const vc = {
            kind: 'sstp',
            mode: 'offload',
            vip: VIP,
            port: 443,
            backends: SERVER_ADDRS,
            backendPort: 80,
            cert: c.cert,
            key: c.key,
          } as const;
          const a = vpnlbAvailable(vc);
          if (!a.ok) return Promise.reject(new Error(a.reason));
          return startVpnlb(t.lb, BALANCER_CPU, vc, dir);
        }
        if (name === 'nginx stream ssl')
          return startNginx(
            t.lb,
            BALANCER_CPU,
            {
              kind: 'tls',
              vip: VIP,
              port: 443,
              backends: SERVER_ADDRS,
              backendPort: 80,
              cert: c.cert,
              key: c.key,
            },
            dir,
          );
        return startHaproxy(
          t.lb,
          BALANCER_CPU,
          { vip: VIP, port: 443, backends: SERVER_ADDRS, backendPort: 80, pem: c.pem },
          dir,
        );
      };
      log(`  ${name} ${kind}`);
      const o = await withContender(log, `${name} ${kind}`, start, async () => {
        // The :80 servers run before the first client: a refused upstream connection makes nginx
        // mark the servers failed for 10 s (its default max_fails 1, fail_timeout 10 s).
        const servers = await startServers(t, tools, 80);
        const hs = [];
        let neg: { tls13: Negotiated; tls12: Negotiated };
        try {
          neg = { tls13: await negotiate(t, dir, false), tls12: await negotiate(t, dir, true) };
          await measureHandshakes(
            t,
            VIP,
            443,
            hsProcs,
            Math.max(1, Math.round(opts.warmupSeconds)),
          ); // warm-up, uncounted
          for (let i = 0; i < opts.repeats; i++)
            hs.push(await measureHandshakes(t, VIP, 443, hsProcs, hsSeconds));
          await sleep(300); // the last handshakes' upstream connections close before the servers stop
        } finally {
          await servers.stop();
        }
        const bulk = [];
        if (kind === 'p256') {
          await measureTlsStream(t, tools, VIP, 443, 80, 4, opts.warmupSeconds); // warm-up, uncounted
          for (let i = 0; i < opts.repeats; i++)
            bulk.push(await measureTlsStream(t, tools, VIP, 443, 80, 4, opts.shortSeconds));
        }
        return { neg, hs, bulk };
      });
      raw[`${name} ${kind}`] = o;
      if (!o.ok) {
        error = o.error;
        continue;
      }
      negotiated.push(
        `${name}, ${kind}: ${fmtNeg(o.value.neg.tls13)}; forced TLS 1.2: ${fmtNeg(o.value.neg.tls12)}`,
      );
      const gen = medianOf(o.value.hs, (s) => s.generatorCpu);
      const cpu = medianOf(o.value.hs, (s) => s.balancerCpu);
      figures[kind] = medianOf(o.value.hs, (s) => s.perSecond);
      figures[`${kind}PerCore`] = medianOf(o.value.hs, (s) =>
        s.balancerCpu > 0 ? s.perSecond / s.balancerCpu : NaN,
      );
      figures[`${kind}Cpu`] = cpu * 100;
      figures[`${kind}Gen`] = gen * 100;
      if (gen >= GENERATOR_BOUND) marks[kind] = 'generator-bound';
      if (kind === 'p256') figures.gbps = medianOf(o.value.bulk, (s) => s.gbps);
    }
    rows.push({
      contender: name,
      figures,
      ...(Object.keys(marks).length ? { marks } : {}),
      ...(error && figures.p256 === undefined ? { error } : {}),
    });
  }

  const f = (n: string, k: string) => rows.find((r) => r.contender === n)?.figures[k] ?? null;
  const bound = (n: string, k: string) =>
    rows.find((r) => r.contender === n)?.marks?.[k] !== undefined;
  const e = (n: string) => rows.find((r) => r.contender === n)?.error;
  const reasons = {
    numerator: e('vpnlb offload') ?? 'n/a',
    denominator: e('nginx stream ssl') ?? 'n/a',
  };
  const p256: ResultRatio = ratio(
    f('vpnlb offload', 'p256'),
    f('nginx stream ssl', 'p256'),
    reasons,
  );
  const rsa: ResultRatio = ratio(f('vpnlb offload', 'rsa'), f('nginx stream ssl', 'rsa'), reasons);
  const low = lowerRatio(p256, rsa);
  const which = low === p256 ? 'p256' : 'rsa';
  const boundKinds = (['p256', 'rsa'] as const).filter(
    (k) => bound('vpnlb offload', k) || bound('nginx stream ssl', k),
  );
  const p256PerCore = ratio(
    f('vpnlb offload', 'p256PerCore'),
    f('nginx stream ssl', 'p256PerCore'),
    reasons,
  );
  const rsaPerCore = ratio(
    f('vpnlb offload', 'rsaPerCore'),
    f('nginx stream ssl', 'rsaPerCore'),
    reasons,
  );
  const perCoreRatios = [
    ['p256', p256PerCore],
    ['rsa', rsaPerCore],
  ] as const;
  // When the generator saturated, handshakes/s measure the client, not the contenders: the
  // ratio then compares what each contender spent per handshake (handshakes per second of its
  // own core), the stricter and comparable figure.
  const perCoreLow = lowerRatio(p256PerCore, rsaPerCore);
  const offload: ResultRatio =
    low.value !== null && boundKinds.includes(which)
      ? perCoreLow.value !== null
        ? {
            ...perCoreLow,
            caveat: `generator-bound handshakes/s (${boundKinds.map((k) => (k === 'p256' ? 'P-256' : 'RSA')).join(', ')}): ratio of handshakes per balancer core-second, ${perCoreLow === p256PerCore ? 'P-256' : 'RSA'} (the lower)`,
          }
        : {
            ...low,
            caveat: `${which === 'p256' ? 'P-256' : 'RSA'} figures generator-bound: the client core saturated, not a verdict on the contenders`,
          }
      : low;
  const perCore = perCoreRatios
    .map(
      ([k, r]) =>
        `${k === 'p256' ? 'P-256' : 'RSA'} ${r.value === null ? '—' : r.value.toFixed(2)}`,
    )
    .join(', ');
  const findings = boundKinds.length
    ? [
        `TLS handshakes: the generator core was ≥ ${GENERATOR_BOUND * 100} % busy for ${boundKinds.map((k) => (k === 'p256' ? 'ECDSA P-256' : 'RSA 2048')).join(' and ')} (marked "generator-bound" in the table): those handshakes/s are what one client core can drive, a lower bound of the contenders' capacity, so offloadVsNginxHandshakes compares handshakes per balancer core-second instead (what each contender spent per handshake): vpnlb offload / nginx = ${perCore}.`,
      ]
    : [];
  return {
    sections: [
      {
        title: 'TLS offload (terminate, forward plain TCP to :80)',
        suite: 'tls',
        columns: {
          p256: 'handshakes/s ECDSA P-256',
          p256PerCore: 'per balancer core-s',
          p256Cpu: 'balancer core %',
          p256Gen: 'generator core %',
          rsa: 'handshakes/s RSA 2048',
          rsaPerCore: 'per balancer core-s',
          rsaCpu: 'balancer core %',
          rsaGen: 'generator core %',
          gbps: 'Gbit/s, 4 tunnels',
        },
        rows,
        baseline: { contender: 'nginx stream ssl', figure: 'rsa' },
        notes: [
          `Negotiated (openssl s_client, default then forced TLS 1.2): ${negotiated.join(' · ') || 'not recorded'}.`,
          `Full handshakes: ${hsProcs} \`openssl s_time -new\` clients on the generator core, ${hsSeconds} s windows after an uncounted warm-up; "generator-bound" = generator core ≥ ${GENERATOR_BOUND * 100} % busy.`,
        ],
      },
    ],
    ratios: { offloadVsNginxHandshakes: offload },
    findings,
    raw: { ...raw, generatorCpu: GENERATOR_CPU },
  };
}
