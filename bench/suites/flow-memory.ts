/**
 * Memory per tracked flow in the userspace relay: RSS of the vpnlb process before and after
 * `flows` distinct clients (address:port, SPI) each sent one IKE packet, divided by the flows
 * the servers saw (each new flow is forwarded once). vpnlb runs with a raised descriptor limit:
 * the relay keeps one connected upstream socket per flow.
 */
import { join } from 'node:path';
import { vpnlbAvailable, vpnlbConfig, type VpnlbCase } from '../contenders/vpnlb.js';
import { vpnlbArgv } from '../../lab/vpnlb-process.js';
import { processRssBytes } from '../lib/cpu.js';
import { runTool, sleep, startDaemon, type CTools, type Daemon } from '../lib/proc.js';
import { BALANCER_CPU, FLOW_SRC_BASE, GENERATOR_CPU, SERVER_ADDRS, VIP, type BenchTopology } from '../lib/topology.js';
import type { NftUdpSink } from './udp-sink.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export async function runFlowMemory(
  t: BenchTopology,
  tools: CTools,
  sink: NftUdpSink,
  work: string,
  flows: number,
  log: (m: string) => void,
): Promise<{ ok: true; value: { bytesPerFlow: number; flows: number; rssBefore: number; rssAfter: number } } | { ok: false; error: string }> {
  // One upstream socket per flow: the flow count is bounded by the descriptor hard limit,
  // which a container may not let even root raise (no CAP_SYS_RESOURCE).
  const hard = Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim());
  if (Number.isFinite(hard) && hard < flows + 4096) flows = Math.max(1000, hard - 4096);
  const c: VpnlbCase = { kind: 'ikev2', dataplane: 'userspace', vip: VIP, backends: SERVER_ADDRS, table: 'unused', maxFlows: flows * 2 };
  const avail = vpnlbAvailable(c);
  if (!avail.ok) return { ok: false, error: avail.reason };
  const dir = join(work, 'mem');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'vpnlb.yaml'), vpnlbConfig(c));
  const argv = vpnlbArgv(['run', '--config', join(dir, 'vpnlb.yaml')]);
  let d: Daemon | undefined;
  try {
    d = startDaemon(t.lb, BALANCER_CPU, 'sh', ['-c', `ulimit -n $(ulimit -Hn) && exec "$@"`, 'sh', ...argv], 'vpnlb relay (memory)');
    await d.waitFor((o) => o.includes('vpnlb running'), 20_000);
    await sleep(1000);
    const rssBefore = processRssBytes(d.pid) ?? NaN;
    const s0 = await sink.read();
    // One IKE packet per flow, paced so that flow setup is not shed: 2 addresses × 50 000 ports.
    await runTool(t.snd, GENERATOR_CPU, tools.udpgen, ['-d', VIP, '-s', FLOW_SRC_BASE, '-f', String(flows), '-P', '50000', '-w', '1', '-W', '20000', '-i', '-l', '100'], 120_000).catch(
      () => undefined,
    );
    await sleep(2000);
    const s1 = await sink.read();
    const rssAfter = processRssBytes(d.pid) ?? NaN;
    const seen = s1.ike - s0.ike;
    log(`  relay memory: ${seen} flows, RSS ${Math.round(rssBefore / 1e6)} → ${Math.round(rssAfter / 1e6)} MB`);
    if (!d.alive) throw new Error(`vpnlb exited: ${d.stderr.slice(-300)}`);
    if (seen <= 0) throw new Error('no flow reached the servers');
    return { ok: true, value: { bytesPerFlow: (rssAfter - rssBefore) / seen, flows: seen, rssBefore, rssAfter } };
  } catch (err) {
    return { ok: false, error: (err as Error).message.slice(0, 300) };
  } finally {
    await d?.stop();
  }
}
