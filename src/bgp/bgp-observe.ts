/**
 * What `vpnlb run` shows of its node's announcements: the state `vpnlb bgp start` writes
 * (bgp-state.ts), read when asked — for `/api/v1/status`, the dashboard and `/metrics`.
 * A supervisor that stopped writing reads as `stale`: whatever its file last said, BIRD died
 * with it (render-bird.ts, supervisor.ts), so nothing is announced.
 */
import type { Metrics } from '../observability/metrics.js';
import type { BgpConfig } from '../config/bgp.js';
import { readBgpStatus, type BgpStatus } from './bgp-state.js';
import { bgpPaths } from './paths.js';

export interface BgpObserver {
  status(): BgpStatus;
}

export function observeBgp(metrics: Metrics, bgp: BgpConfig): BgpObserver {
  const stateFile = bgpPaths(bgp.runDir).stateFile;
  const status = () => readBgpStatus(stateFile);
  const live = () => {
    const s = status();
    return s.supervisor === 'running' ? s : undefined;
  };
  metrics.gauge({
    name: 'vpnlb_bgp_announced',
    help: '1 while this node announces the address to its routers, else 0 (withdrawn, or vpnlb bgp start not running).',
    labelNames: ['address'],
    collect() {
      const s = live();
      for (const a of bgp.announce)
        this.set(
          { address: a.address },
          s?.announcements.find((x) => x.address === a.address)?.announced ? 1 : 0,
        );
    },
  });
  metrics.gauge({
    name: 'vpnlb_bgp_peer_up',
    help: '1 while the BGP session with the router is established, else 0.',
    labelNames: ['peer'],
    collect() {
      const s = live();
      for (const p of s?.peers ?? []) this.set({ peer: p.name }, p.established ? 1 : 0);
    },
  });
  metrics.gauge({
    name: 'vpnlb_bgp_withdrawals',
    help: 'Announcements withdrawn since vpnlb bgp start started (drain, failed checks, no usable server).',
    collect() {
      this.set(live()?.withdrawals ?? 0);
    },
  });
  return { status };
}
