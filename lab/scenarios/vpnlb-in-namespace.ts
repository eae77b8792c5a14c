/**
 * Runs the real `vpnlb run --config FILE` inside the lab's balancer namespace (it programs
 * nftables there), writes its configuration from the lab's servers, and drives it through its
 * own CLI (`vpnlb backend drain|disable|enable --config FILE`, which finds the admin Unix socket
 * beside the configuration), and reloads it (`vpnlb reload`, SIGHUP).
 */
import type { ChildProcess } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { basename } from 'node:path';
import { vpnlbArgv } from '../vpnlb-process.js';
import { VIP4, VIP6, type IkeLab, type LabClient } from '../topology-ike.js';
import type { AffinityMode } from '../../src/balancer/affinity.js';

export interface LabVpnlbOptions {
  readonly nat: 'transparent' | 'full';
  /** The IKEv2 services' data plane (default `kernel`; `userspace`: the relay, full NAT). */
  readonly dataplane?: 'kernel' | 'userspace';
  /** The `workers` setting (the relay and the SSTP proxy in that many processes). */
  readonly workers?: number;
  readonly affinity?: AffinityMode;
  /** Backends present in the configuration but disabled at start (to be enabled later). */
  readonly disabled?: readonly string[];
  /** Servers left out of the configuration entirely. */
  readonly exclude?: readonly string[];
  /** Backend weights by server name (default 1). */
  readonly weights?: Readonly<Record<string, number>>;
  /** Health-monitor the servers with the stateless IKEv2 probe (fast settings). */
  readonly monitor?: boolean;
  /** Also serve the IPv6 VIP. */
  readonly ipv6?: boolean;
  /** Admin port inside the balancer namespace (its own loopback, so a fixed port is private). */
  readonly adminPort?: number;
  /**
   * Also an SSTP passthrough service on the IPv4 VIP at this port, over the same servers (the
   * lab's servers run no SSTP: the service is there for what it refuses before choosing one).
   */
  readonly sstpPort?: number;
}

/** The lab's vpnlb configuration (YAML; JSON is valid YAML). */
export function renderLabConfig(lab: IkeLab, o: LabVpnlbOptions, fileName = 'vpnlb.yaml'): string {
  const servers = lab.servers.filter((s) => !o.exclude?.includes(s.name));
  const backends = (v6: boolean) =>
    servers.map((s) => ({
      name: v6 ? `${s.name}v6` : s.name,
      address: v6 ? s.address6 : s.address4,
      ...(o.disabled?.includes(s.name) ? { enabled: false } : {}),
      ...(o.weights?.[s.name] !== undefined ? { weight: o.weights[s.name] } : {}),
    }));
  const service = (name: string, vip: string, pool: string) => ({
    name,
    virtualIp: vip,
    pool,
    dataplane: o.dataplane ?? 'kernel',
    nat: o.nat,
    affinity: o.affinity ?? 'ike-spi',
    ...(o.monitor ? { monitor: 'ike' } : {}),
  });
  const config = {
    log: { level: 'info' },
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
    // Token and socket beside the configuration (relative paths are relative to it): the CLI
    // finds the socket through --config, and nothing is written outside the lab's directory.
    admin: {
      listen: '127.0.0.1',
      port: o.adminPort ?? 8088,
      tokenFile: `${fileName}.token`,
      socket: `${fileName}.sock`,
    },
    ...(o.monitor
      ? {
          monitors: {
            ike: {
              type: 'ikev2',
              interval: '500ms',
              timeout: '400ms',
              rise: 1,
              fall: 2,
              jitter: 0,
            },
          },
        }
      : {}),
    pools: {
      farm4: { backends: backends(false) },
      ...(o.ipv6 ? { farm6: { backends: backends(true) } } : {}),
    },
    services: {
      ikev2: [service('ike4', VIP4, 'farm4'), ...(o.ipv6 ? [service('ike6', VIP6, 'farm6')] : [])],
      ...(o.sstpPort !== undefined
        ? {
            sstp: [
              {
                name: 'sstp4',
                virtualIp: VIP4,
                port: o.sstpPort,
                pool: 'farm4',
                mode: 'passthrough',
              },
            ],
          }
        : {}),
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
  #log = '';
  #partialLine = '';
  /** Log lines at warn (pino 40) and error or above (50+), over every process this instance started. */
  readonly logged = { warnings: 0, errors: 0, lastErrors: [] as string[] };

  constructor(lab: IkeLab, options: LabVpnlbOptions, fileName = 'vpnlb.yaml') {
    this.lab = lab;
    this.#fileName = fileName;
    this.configPath = lab.writeFile(fileName, renderLabConfig(lab, options, fileName));
    this.adminUrl = `http://127.0.0.1:${options.adminPort ?? 8088}`;
  }

  /** Rewrites the configuration file (the running process reads it at its next start). */
  configure(options: LabVpnlbOptions): void {
    this.lab.writeFile(this.#fileName, renderLabConfig(this.lab, options, this.#fileName));
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
   * next start to adopt. `timeoutMs` only bounds a start that hangs: a first start writes two
   * 65,537-slot maps, which nft parses in seconds on an idle machine and in over 30 s on a
   * loaded two-core one.
   */
  async start(timeoutMs = 300_000, options: { keepState?: boolean } = {}): Promise<void> {
    const [node, ...args] = vpnlbArgv([
      'run',
      '--config',
      this.configPath,
      ...(options.keepState ? ['--keep-state'] : []),
    ]);
    const child = this.lab.lb.spawn(node!, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VPNLB_KEEP_STATE: '' },
    });
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(`vpnlb did not start within ${timeoutMs} ms:\n${this.#log.slice(-3000)}`),
          ),
        timeoutMs,
      );
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
    if (!child || child.exitCode !== null || child.signalCode !== null || child.pid === undefined)
      return;
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

  /** `vpnlb backend ACTION NAME` against this instance (the CLI finds its socket through --config). */
  async backend(action: 'drain' | 'disable' | 'enable', name: string): Promise<string> {
    const [node, ...args] = vpnlbArgv(['backend', action, name, '--config', this.configPath]);
    return this.lab.lb.exec(node!, args);
  }

  /** `vpnlb reload` against this instance. */
  async reload(): Promise<string> {
    const [node, ...args] = vpnlbArgv(['reload', '--config', this.configPath]);
    return this.lab.lb.exec(node!, args);
  }

  /** Rewrites this instance's configuration file (then `reload()` or SIGHUP applies it). */
  rewriteConfig(options: LabVpnlbOptions): void {
    this.lab.writeFile(
      basename(this.configPath),
      renderLabConfig(this.lab, options, basename(this.configPath)),
    );
  }

  /** Sends SIGHUP (what systemd's ExecReload does). */
  sighup(): void {
    if (this.#child?.pid !== undefined) process.kill(this.#child.pid, 'SIGHUP');
  }

  /** GET on the admin API through its Unix socket (from the host: the socket is a file), parsed as JSON. */
  async admin(path: string): Promise<unknown> {
    return JSON.parse(await this.adminText(path)) as unknown;
  }

  /**
   * GET (or POST) on the admin API through its Unix socket (from the host: the socket is a file;
   * a connection on it is the operator), as text (`/metrics`).
   */
  async adminText(path: string, method: 'GET' | 'POST' = 'GET'): Promise<string> {
    const socketPath = `${this.configPath}.sock`;
    const { status, text } = await new Promise<{ status: number; text: string }>(
      (resolve, reject) => {
        const headers: Record<string, string> = {
          host: 'localhost',
          ...(method === 'POST' ? { 'content-length': '0' } : {}),
        };
        const req = httpRequest({ socketPath, path, method, headers }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: body }));
        });
        req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
        req.on('error', reject);
        req.end();
      },
    );
    if (status >= 400)
      throw new Error(`admin API ${method} ${path}: HTTP ${status}: ${text.slice(0, 300)}`);
    return text;
  }
}

/**
 * Connects a lab client through `vpnlb` (the `home` connection) and returns the name of the
 * server its IKE SA reached (from the virtual IP the server assigned); throws with both logs.
 */
export async function connectThrough(lab: IkeLab, vpnlb: LabVpnlb, c: LabClient): Promise<string> {
  const r = await c.charon!.initiate('home', 20);
  if (!r.ok)
    throw new Error(
      `${c.name} did not connect: ${r.output.slice(-500)}\n--- vpnlb:\n${vpnlb.log.slice(-2000)}`,
    );
  const sa = (await c.charon!.listSas()).find((s) => s.state === 'ESTABLISHED');
  return lab.serverOfVip(sa?.localVips[0] ?? '')?.name ?? '?';
}
