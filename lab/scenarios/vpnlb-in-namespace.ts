/**
 * Runs the real `vpnlb run --config FILE` inside the lab's balancer namespace (it programs
 * nftables there), writes its configuration from the lab's servers, and drives it through its
 * own CLI (`vpnlb backend drain|disable|enable --admin URL`), run in the same namespace because
 * the admin listener is on that namespace's loopback.
 */
import type { ChildProcess } from 'node:child_process';
import { vpnlbArgv } from '../vpnlb-process.js';
import { VIP4, VIP6, type IkeLab } from '../topology-ike.js';
import type { AffinityMode } from '../../src/balancer/affinity.js';

export interface LabVpnlbOptions {
  readonly nat: 'transparent' | 'full';
  readonly affinity?: AffinityMode;
  /** Backends present in the configuration but disabled at start (to be enabled later). */
  readonly disabled?: readonly string[];
  /** Servers left out of the configuration entirely. */
  readonly exclude?: readonly string[];
  /** Health-monitor the servers with the stateless IKEv2 probe (fast settings). */
  readonly monitor?: boolean;
  /** Also serve the IPv6 VIP. */
  readonly ipv6?: boolean;
  /** Admin port inside the balancer namespace (its own loopback, so a fixed port is private). */
  readonly adminPort?: number;
}

/** The lab's vpnlb configuration (YAML; JSON is valid YAML). */
export function renderLabConfig(lab: IkeLab, o: LabVpnlbOptions): string {
  const servers = lab.servers.filter((s) => !o.exclude?.includes(s.name));
  const backends = (v6: boolean) =>
    servers.map((s) => ({ name: v6 ? `${s.name}v6` : s.name, address: v6 ? s.address6 : s.address4, ...(o.disabled?.includes(s.name) ? { enabled: false } : {}) }));
  const service = (name: string, vip: string, pool: string) => ({
    name,
    virtualIp: vip,
    pool,
    dataplane: 'kernel',
    nat: o.nat,
    affinity: o.affinity ?? 'ike-spi',
    ...(o.monitor ? { monitor: 'ike' } : {}),
  });
  const config = {
    log: { level: 'info' },
    admin: { listen: '127.0.0.1', port: o.adminPort ?? 8088 },
    ...(o.monitor ? { monitors: { ike: { type: 'ikev2', interval: '500ms', timeout: '400ms', rise: 1, fall: 2, jitter: 0 } } } : {}),
    pools: { farm4: { backends: backends(false) }, ...(o.ipv6 ? { farm6: { backends: backends(true) } } : {}) },
    services: { ikev2: [service('ike4', VIP4, 'farm4'), ...(o.ipv6 ? [service('ike6', VIP6, 'farm6')] : [])] },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** One running vpnlb process in the lab's balancer namespace. */
export class LabVpnlb {
  readonly lab: IkeLab;
  readonly configPath: string;
  readonly adminUrl: string;
  #child: ChildProcess | undefined;
  #log = '';

  constructor(lab: IkeLab, options: LabVpnlbOptions, fileName = 'vpnlb.yaml') {
    this.lab = lab;
    this.configPath = lab.writeFile(fileName, renderLabConfig(lab, options));
    this.adminUrl = `http://127.0.0.1:${options.adminPort ?? 8088}`;
  }

  /** stdout+stderr so far (for failure messages). */
  get log(): string {
    return this.#log;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts `vpnlb run` and resolves once it reports running (rejects if it exits first). */
  async start(timeoutMs = 30_000): Promise<void> {
    const [node, ...args] = vpnlbArgv(['run', '--config', this.configPath]);
    const child = this.lab.lb.spawn(node!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VPNLB_KEEP_STATE: '' } });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`vpnlb did not start within ${timeoutMs} ms:\n${this.#log.slice(-3000)}`)), timeoutMs);
      const onData = (d: Buffer) => {
        this.#log += d.toString();
        if (this.#log.length > 1_000_000) this.#log = this.#log.slice(-500_000);
        if (/vpnlb running/.test(this.#log)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`vpnlb exited (${code}) at start:\n${this.#log.slice(-3000)}`));
      });
    });
  }

  /** Stops with SIGTERM: vpnlb removes its table (VPNLB_KEEP_STATE is cleared for the child). */
  async stop(): Promise<void> {
    await this.#signal('SIGTERM', 10_000);
  }

  /** `kill -9`: the control plane dies, the kernel's table stays. */
  async kill9(): Promise<void> {
    await this.#signal('SIGKILL', 5_000);
  }

  async #signal(sig: NodeJS.Signals, waitMs: number): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    try {
      process.kill(child.pid, sig);
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, waitMs);
    await exited;
    clearTimeout(timer);
  }

  /** `vpnlb backend ACTION NAME` against this instance. */
  async backend(action: 'drain' | 'disable' | 'enable', name: string): Promise<string> {
    const [node, ...args] = vpnlbArgv(['backend', action, name, '--admin', this.adminUrl]);
    return this.lab.lb.exec(node!, args);
  }

  /** GET on the admin API (from inside the namespace), parsed as JSON. */
  async admin(path: string): Promise<unknown> {
    const script = `fetch(${JSON.stringify(new URL(path, this.adminUrl).toString())}).then(r=>r.text()).then(t=>process.stdout.write(t))`;
    const out = await this.lab.lb.exec(process.execPath, ['-e', script]);
    return JSON.parse(out) as unknown;
  }
}
