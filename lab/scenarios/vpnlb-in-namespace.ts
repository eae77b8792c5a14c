/**
 * Runs the real `vpnlb run --config FILE` inside the lab's balancer namespace (it programs
 * nftables there), writes its configuration from the lab's servers, and drives it through its
 * own CLI (`vpnlb backend drain|disable|enable --admin URL`), run in the same namespace because
 * the admin listener is on that namespace's loopback.
 */
import type { ChildProcess } from 'node:child_process';
import { vpnlbArgv } from '../vpnlb-process.js';
import { VIP4, VIP6, type IkeLab } from '../topology-ike.js';

export interface LabVpnlbOptions {
  readonly nat: 'transparent' | 'full';
  readonly affinity?: 'ike-spi' | 'source-ip';
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
  /** Backend weights by server name (both families); 1 when absent. */
  readonly weights?: Readonly<Record<string, number>>;
  /**
   * Also an SSTP passthrough service on the IPv4 VIP at this port, over the same servers (the
   * lab's servers run no SSTP: the service is there for what it refuses before choosing one).
   */
  readonly sstpPort?: number;
}

/** The lab's vpnlb configuration (YAML; JSON is valid YAML). */
export function renderLabConfig(lab: IkeLab, o: LabVpnlbOptions): string {
  const servers = lab.servers.filter((s) => !o.exclude?.includes(s.name));
  const backends = (v6: boolean) =>
    servers.map((s) => ({
      name: v6 ? `${s.name}v6` : s.name,
      address: v6 ? s.address6 : s.address4,
      ...(o.weights?.[s.name] !== undefined ? { weight: o.weights[s.name] } : {}),
      ...(o.disabled?.includes(s.name) ? { enabled: false } : {}),
    }));
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
    services: {
      ikev2: [service('ike4', VIP4, 'farm4'), ...(o.ipv6 ? [service('ike6', VIP6, 'farm6')] : [])],
      ...(o.sstpPort !== undefined ? { sstp: [{ name: 'sstp4', virtualIp: VIP4, port: o.sstpPort, pool: 'farm4', mode: 'passthrough' }] } : {}),
    },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** One running vpnlb process in the lab's balancer namespace. */
export class LabVpnlb {
  readonly lab: IkeLab;
  readonly configPath: string;
  readonly adminUrl: string;
  readonly #fileName: string;
  #child: ChildProcess | undefined;
  #adminRelay: AdminRelay | undefined;
  #log = '';
  #partialLine = '';
  /** Log lines at warn (pino 40) and error or above (50+), over every process this instance started. */
  readonly logged = { warnings: 0, errors: 0, lastErrors: [] as string[] };

  constructor(lab: IkeLab, options: LabVpnlbOptions, fileName = 'vpnlb.yaml') {
    this.lab = lab;
    this.#fileName = fileName;
    this.configPath = lab.writeFile(fileName, renderLabConfig(lab, options));
    this.adminUrl = `http://127.0.0.1:${options.adminPort ?? 8088}`;
  }

  /** Rewrites the configuration file (the running process reads it at its next start). */
  configure(options: LabVpnlbOptions): void {
    this.lab.writeFile(this.#fileName, renderLabConfig(this.lab, options));
  }

  /** stdout+stderr so far (for failure messages). */
  get log(): string {
    return this.#log;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * Starts `vpnlb run` and resolves once it reports running (rejects if it exits first).
   * `keepState`: started with `--keep-state`, so that `stop()` leaves the kernel table for the
   * next start to adopt.
   */
  async start(timeoutMs = 30_000, options: { keepState?: boolean } = {}): Promise<void> {
    const [node, ...args] = vpnlbArgv(['run', '--config', this.configPath, ...(options.keepState ? ['--keep-state'] : [])]);
    const child = this.lab.lb.spawn(node!, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, VPNLB_KEEP_STATE: '' } });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`vpnlb did not start within ${timeoutMs} ms:\n${this.#log.slice(-3000)}`)), timeoutMs);
      // This process's own output: #log also holds what earlier processes of this instance said.
      let own = '';
      const onData = (d: Buffer) => {
        this.#log += d.toString();
        this.#tally(d.toString());
        if (this.#log.length > 1_000_000) this.#log = this.#log.slice(-500_000);
        if (own.length < 100_000) own += d.toString();
        if (/vpnlb running/.test(own)) {
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

  /** Counts pino lines by level (JSON lines on stderr; anything else is not a log line). */
  #tally(text: string): void {
    const lines = (this.#partialLine + text).split('\n');
    this.#partialLine = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      let level = 0;
      try {
        level = Number((JSON.parse(line) as { level?: number }).level ?? 0);
      } catch {
        continue;
      }
      if (level >= 50) {
        this.logged.errors++;
        if (this.logged.lastErrors.length < 10) this.logged.lastErrors.push(line.slice(0, 500));
      } else if (level >= 40) this.logged.warnings++;
    }
  }

  /** Stops with SIGTERM: vpnlb removes its table (VPNLB_KEEP_STATE is cleared for the child) unless started with `keepState`. */
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
    return JSON.parse(await this.adminText(path)) as unknown;
  }

  /** GET (or POST) on the admin API from inside the namespace, as text (`/metrics`). */
  async adminText(path: string, method: 'GET' | 'POST' = 'GET'): Promise<string> {
    const r = await this.#relay().request(new URL(path, this.adminUrl).toString(), method);
    if (r.error !== undefined) throw new Error(`admin API ${method} ${path}: ${r.error}`);
    if ((r.status ?? 0) >= 400) throw new Error(`admin API ${method} ${path}: HTTP ${r.status}: ${r.text?.slice(0, 300)}`);
    return r.text ?? '';
  }

  /**
   * One long-lived `node` in the balancer namespace that makes the admin requests (the listener
   * is on that namespace's loopback): a loaded machine takes seconds to start a node process,
   * and a soak run asks often. Killed with the topology.
   */
  #relay(): AdminRelay {
    this.#adminRelay ??= new AdminRelay(this.lab.lb.spawn(process.execPath, ['-e', ADMIN_RELAY_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] }));
    return this.#adminRelay;
  }
}

/** Reads `{id, url, method}` lines, answers `{id, status, text}` or `{id, error}` lines. */
const ADMIN_RELAY_SCRIPT = `
const rl = require('node:readline').createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  const q = JSON.parse(line);
  let a;
  try {
    const r = await fetch(q.url, { method: q.method, signal: AbortSignal.timeout(30000) });
    a = { id: q.id, status: r.status, text: await r.text() };
  } catch (e) {
    a = { id: q.id, error: String((e.cause && e.cause.message) || e.message) };
  }
  process.stdout.write(JSON.stringify(a) + '\\n');
});
`;

type RelayAnswer = { id: number; status?: number; text?: string; error?: string };

class AdminRelay {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, (a: RelayAnswer) => void>();
  #nextId = 1;
  #buffer = '';

  constructor(child: ChildProcess) {
    this.#child = child;
    child.stdout?.on('data', (d: Buffer) => {
      const lines = (this.#buffer + d.toString()).split('\n');
      this.#buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (!line) continue;
        const a = JSON.parse(line) as RelayAnswer;
        this.#pending.get(a.id)?.(a);
        this.#pending.delete(a.id);
      }
    });
    child.once('exit', () => {
      for (const [id, done] of this.#pending) done({ id, error: 'the admin relay exited' });
      this.#pending.clear();
    });
  }

  request(url: string, method: string): Promise<RelayAnswer> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#pending.set(id, resolve);
      this.#child.stdin?.write(`${JSON.stringify({ id, url, method })}\n`);
    });
  }
}
