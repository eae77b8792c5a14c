import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { VpnlbError } from '../../errors.js';
import {
  createIcmpProbe,
  createIkev2Probe,
  createSstpProbe,
  createTcpProbe,
} from '../../health/checks/index.js';
import type { ProbeMessageVariant } from '../../health/checks/ikev2/probe-message.js';
import type { Probe, ProbeResult } from '../../health/monitor.js';
import { parseCommandArgs, required, type Command } from '../command.js';

/**
 * `vpnlb probe TYPE ADDRESS`: runs a health monitor by hand, exactly as the balancer would,
 * to see what a server answers (and, in the lab, to fire many stateless IKE probes).
 */
export const probeCommand: Command = {
  name: 'probe',
  summary: 'run a health probe (icmp, ikev2, sstp, tcp) against a server by hand',
  usage:
    'vpnlb probe icmp|ikev2|sstp|tcp ADDRESS [--port N] [--timeout MS] [--count N] [--parallel N]\n' +
    '            [--offload] [--sni NAME] [--verify] [--ca FILE] [--expect STATUS] [--json]',
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(
      this,
      argv,
      {
        port: { type: 'string', short: 'p' },
        timeout: { type: 'string' },
        count: { type: 'string', short: 'c' },
        parallel: { type: 'string' },
        offload: { type: 'boolean' },
        sni: { type: 'string' },
        verify: { type: 'boolean' },
        ca: { type: 'string' },
        expect: { type: 'string' },
        'ikev2-variant': { type: 'string' },
        json: { type: 'boolean' },
      },
      true,
    );
    const [type, address] = positionals;
    const addr = required(this, address, 'ADDRESS');
    const family = isIP(addr);
    if (family === 0)
      throw new VpnlbError('VPNLB_CLI_USAGE', `"${addr}" is not an IP address`, 'client');
    const int = (v: string | undefined, name: string, dflt: number, min: number, max: number) => {
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max)
        throw new VpnlbError(
          'VPNLB_CLI_USAGE',
          `--${name}: expected an integer in ${min}..${max}, got ${v}`,
          'client',
        );
      return n;
    };
    let probe: Probe;
    let port: number | undefined;
    switch (type) {
      case 'icmp':
        probe = createIcmpProbe();
        break;
      case 'tcp':
        probe = createTcpProbe();
        port = int(required(this, values.port, '--port for tcp'), 'port', 0, 1, 65535);
        break;
      case 'ikev2': {
        const variant = (values['ikev2-variant'] ?? 'unacceptable-proposal') as ProbeMessageVariant;
        if (variant !== 'unacceptable-proposal' && variant !== 'mismatched-ke') {
          throw new VpnlbError(
            'VPNLB_CLI_USAGE',
            '--ikev2-variant: unacceptable-proposal or mismatched-ke',
            'client',
          );
        }
        probe = createIkev2Probe({ variant });
        port = int(values.port, 'port', 500, 1, 65535);
        break;
      }
      case 'sstp':
        probe = createSstpProbe({
          tls: values.offload !== true,
          ...(values.sni !== undefined ? { sni: values.sni } : {}),
          verifyCertificate: values.verify === true,
          ...(values.ca !== undefined ? { ca: readFileSync(values.ca) } : {}),
          expectStatus: int(values.expect, 'expect', 401, 100, 599),
        });
        port = int(values.port, 'port', values.offload === true ? 80 : 443, 1, 65535);
        break;
      default:
        throw new VpnlbError(
          'VPNLB_CLI_USAGE',
          `unknown probe type "${type ?? ''}"\nusage: ${this.usage}`,
          'client',
        );
    }
    const timeoutMs = int(values.timeout, 'timeout', 2000, 1, 600_000);
    const count = int(values.count, 'count', 1, 1, 1_000_000);
    const parallel = int(values.parallel, 'parallel', 1, 1, 256);
    const target = {
      address: addr,
      family: family as 4 | 6,
      ...(port !== undefined ? { port } : {}),
    };
    const results: ProbeResult[] = [];
    let next = 0;
    const signal = new AbortController().signal;
    const worker = async () => {
      while (next < count) {
        next++;
        const r = await probe.probe(target, signal, timeoutMs);
        results.push(r);
        if (values.json !== true)
          io.out(`${r.ok ? 'up' : 'down'}  ${r.latencyMs.toFixed(3)} ms  ${r.detail}`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
    const ok = results.filter((r) => r.ok).length;
    if (values.json === true) {
      const details: Record<string, number> = {};
      for (const r of results) details[r.detail] = (details[r.detail] ?? 0) + 1;
      const lat = results.map((r) => r.latencyMs).sort((a, b) => a - b);
      io.out(
        JSON.stringify({
          type,
          target,
          count,
          ok,
          failed: count - ok,
          details,
          latencyMs: {
            min: lat[0],
            median: lat[Math.floor(lat.length / 2)],
            max: lat[lat.length - 1],
          },
        }),
      );
    } else if (count > 1) {
      io.out(`${ok}/${count} up`);
    }
    return ok === count ? 0 : 1;
  },
};
