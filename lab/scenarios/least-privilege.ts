/**
 * The least-privilege lab (root): vpnlb started the way the packaged unit starts it — an
 * unprivileged user, no supplementary groups, no_new_privs, and a chosen set of capabilities in
 * the inheritable, ambient and bounding sets — through `setpriv` (util-linux) inside a
 * namespace, in front of a simulated RRAS server, with every data plane and every privileged
 * monitor in use:
 *
 * ```
 *  cli 198.18.1.2 ── lb 198.18.1.1 | 198.18.2.1 ── srv 198.18.2.2 (IKEv2 500/4500, SSTP 443)
 *                    vpnlb (setpriv): ike-kernel  VIP 198.19.0.1   nftables DNAT, monitor ikev2
 *                                     ike-relay   198.18.1.1:500   userspace relay, monitor icmp
 *                                     sstp        198.18.1.1:443   SSTP proxy, monitor sstp
 * ```
 *
 * Namespaces and veths carry the topology's unique prefix and are removed by `destroy()`.
 */
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topology, type Namespace } from '../netns.js';
import { readJsonLines } from '../udp-peers.js';
import { REPO_ROOT, vpnlbArgv } from '../vpnlb-process.js';
import type { CapabilityName } from '../../src/platform/capabilities.js';

/** What the packaged unit grants (packaging/vpnlb.service). */
export const UNIT_CAPABILITIES: readonly CapabilityName[] = [
  'CAP_NET_ADMIN',
  'CAP_NET_RAW',
  'CAP_NET_BIND_SERVICE',
];

/** The unprivileged user the lab runs vpnlb as (nobody: exists on every Debian system). */
export const LAB_UID = 65534;

export const KERNEL_VIP = '198.19.0.1';
export const LB_ADDRESS = '198.18.1.1';
export const CLIENT_ADDRESS = '198.18.1.2';
export const SERVER_ADDRESS = '198.18.2.2';
const ADMIN_PORT = 8088;

/**
 * `setpriv` arguments that leave exactly `caps` (capabilities(7) names), as the unit does with
 * User=, AmbientCapabilities=, CapabilityBoundingSet= and NoNewPrivileges=yes.
 */
export function setprivArgs(caps: readonly CapabilityName[], uid = LAB_UID): string[] {
  const list = ['-all', ...caps.map((c) => `+${c.slice('CAP_'.length).toLowerCase()}`)].join(',');
  return [
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    `--inh-caps=${list}`,
    `--ambient-caps=${list}`,
    `--bounding-set=${list}`,
    '--no-new-privs',
  ];
}

/** The vpnlb configuration of the lab (JSON is YAML). */
export function leastPrivilegeConfig(tokenFile: string): string {
  // Quick to come up, slow to go down: a loaded test machine must not make a live server flap.
  const fast = { interval: '1s', timeout: '900ms', rise: 1, fall: 5, jitter: 0 };
  return `${JSON.stringify(
    {
      admin: { listen: '127.0.0.1', port: ADMIN_PORT, tokenFile },
      monitors: {
        ike: { type: 'ikev2', ...fast },
        ping: { type: 'icmp', ...fast },
        sstp: { type: 'sstp', ...fast, expectStatus: 401 },
      },
      pools: { farm: { backends: [{ name: 'rras1', address: SERVER_ADDRESS }] } },
      services: {
        ikev2: [
          {
            name: 'ike-kernel',
            virtualIp: KERNEL_VIP,
            pool: 'farm',
            dataplane: 'kernel',
            nat: 'transparent',
            monitor: 'ike',
          },
          {
            name: 'ike-relay',
            virtualIp: LB_ADDRESS,
            pool: 'farm',
            dataplane: 'userspace',
            monitor: 'ping',
          },
        ],
        sstp: [
          {
            name: 'sstp',
            virtualIp: LB_ADDRESS,
            port: 443,
            pool: 'farm',
            mode: 'passthrough',
            monitor: 'sstp',
          },
        ],
      },
    },
    null,
    2,
  )}\n`;
}

/** The simulated RRAS server (IKEv2 responder on 500/4500, SSTP endpoint on 443), in `srv`. */
const SERVER_SCRIPT = (root: string) => `
import { IkeResponder } from ${JSON.stringify(join(root, 'dist/src/sim/rras/index.js'))};
import { SimSstpEndpoint } from ${JSON.stringify(join(root, 'dist/src/sim/rras/sstp-endpoint.js'))};
import { generateTestCertificate } from ${JSON.stringify(join(root, 'dist/src/sim/rras/sstp-certs.js'))};
const cert = generateTestCertificate();
await IkeResponder.start({ name: 'rras1', address: ${JSON.stringify(SERVER_ADDRESS)}, ikePort: 500, natTPort: 4500 });
await SimSstpEndpoint.start({ name: 'rras1', host: ${JSON.stringify(SERVER_ADDRESS)}, tlsPort: 443, cert: cert.cert, key: cert.key });
cert.dispose();
console.log(JSON.stringify({ ready: true }));
`;

/** One IKEv2 client run (IKE_SA_INIT, IKE_AUTH on 4500, ESP echoes), from `cli`. */
const IKE_CLIENT_SCRIPT = (root: string, vip: string) => `
import { runIkeClient } from ${JSON.stringify(join(root, 'dist/src/sim/client/ike-client.js'))};
const r = await runIkeClient({ localAddress: ${JSON.stringify(CLIENT_ADDRESS)}, server: { address: ${JSON.stringify(vip)}, ikePort: 500, natTPort: 4500 } });
console.log(JSON.stringify(r));
`;

/** The SSTP monitor's request through the proxy, from `cli`: prints the status line. */
const SSTP_HEAD_SCRIPT = `
import tls from 'node:tls';
const s = tls.connect({ host: ${JSON.stringify(LB_ADDRESS)}, port: 443, rejectUnauthorized: false }, () => {
  s.write('HEAD /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1\\r\\nHost: vpn.example.test\\r\\nConnection: close\\r\\n\\r\\n');
});
let text = '';
s.on('data', (d) => { text += d; });
s.on('close', () => console.log(JSON.stringify({ statusLine: text.split('\\r\\n')[0] })));
s.on('error', (e) => console.log(JSON.stringify({ error: e.message })));
`;

/** A running vpnlb (under setpriv) and its output. */
export interface PrivilegedRun {
  readonly child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code (null after a signal). */
  readonly exited: Promise<number | null>;
}

export class LeastPrivilegeLab {
  readonly topo: Topology;
  readonly dir: string;
  /** The admin token vpnlb writes at first start (read as root to call the API). */
  readonly tokenFile: string;
  readonly configPath: string;

  private constructor(topo: Topology, dir: string) {
    this.topo = topo;
    this.dir = dir;
    this.configPath = join(dir, 'vpnlb.yaml');
    this.tokenFile = join(dir, 'state', 'admin.token');
  }

  get lb(): Namespace {
    return this.topo.ns('lb');
  }

  static async create(): Promise<LeastPrivilegeLab> {
    const topo = Topology.create('lpriv');
    const dir = mkdtempSync(join(tmpdir(), `vpnlb-${topo.prefix}-`));
    const lab = new LeastPrivilegeLab(topo, dir);
    try {
      await topo.addNamespace('cli');
      await topo.addNamespace('lb');
      await topo.addNamespace('srv');
      await topo.link({
        a: 'cli',
        b: 'lb',
        aAddresses: [`${CLIENT_ADDRESS}/24`],
        bAddresses: [`${LB_ADDRESS}/24`],
      });
      await topo.link({
        a: 'lb',
        b: 'srv',
        aAddresses: ['198.18.2.1/24'],
        bAddresses: [`${SERVER_ADDRESS}/24`],
      });
      await topo.route('cli', 'default', LB_ADDRESS);
      // Transparent mode: the server's replies go back through the balancer (DESIGN §1.1).
      await topo.route('srv', 'default', '198.18.2.1');
      // The unprivileged user reads the configuration (mkdtemp makes the directory 0700).
      chmodSync(dir, 0o755);
      // Its state directory (the admin token), owned by it as systemd's StateDirectory= would be.
      mkdirSync(join(dir, 'state'), { mode: 0o700 });
      chownSync(join(dir, 'state'), LAB_UID, LAB_UID);
      writeFileSync(lab.configPath, leastPrivilegeConfig(lab.tokenFile), { mode: 0o644 });
      await lab.#startServer();
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  async #startServer(): Promise<void> {
    const child = this.topo
      .ns('srv')
      .spawn(process.execPath, ['--input-type=module', '-e', SERVER_SCRIPT(REPO_ROOT)]);
    let err = '';
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`simulated server did not start: ${err}`)),
        30_000,
      );
      readJsonLines<{ ready?: boolean }>(child.stdout, (m) => {
        if (m.ready) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`simulated server exited (${code}): ${err}`));
      });
    });
  }

  /** Starts `vpnlb run` in `lb` as the lab user holding exactly `caps`. */
  startVpnlb(caps: readonly CapabilityName[]): PrivilegedRun {
    const [node, ...args] = vpnlbArgv(['run', '--config', this.configPath]);
    const child = this.lb.spawn('setpriv', [...setprivArgs(caps), node!, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, VPNLB_KEEP_STATE: '', NOTIFY_SOCKET: '' },
    });
    let out = '';
    const collect = (d: Buffer) => {
      out += d.toString();
      if (out.length > 2_000_000) out = out.slice(-1_000_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const exited = new Promise<number | null>((resolve) =>
      child.once('close', (code) => resolve(code)),
    );
    return { child, output: () => out, exited };
  }

  /** GET on vpnlb's admin API (inside `lb`), parsed; undefined while it does not answer. */
  async admin(path: string): Promise<unknown> {
    try {
      const token = readFileSync(this.tokenFile, 'utf8').trim();
      const script = `fetch('http://127.0.0.1:${ADMIN_PORT}${path}',{headers:{authorization:'Bearer ${token}'}}).then(r=>r.text()).then(t=>process.stdout.write(t))`;
      return JSON.parse(await this.lb.exec(process.execPath, ['-e', script])) as unknown;
    } catch {
      return undefined;
    }
  }

  /** One simulated IKEv2 client from `cli` to `vip` (the result of src/sim/client). */
  async ikeClient(
    vip: string,
  ): Promise<{ ok: boolean; reason?: string; espEchoed: number; espSent: number }> {
    const out = await this.topo
      .ns('cli')
      .exec(process.execPath, ['--input-type=module', '-e', IKE_CLIENT_SCRIPT(REPO_ROOT, vip)]);
    return JSON.parse(out.trim().split('\n').pop()!) as {
      ok: boolean;
      reason?: string;
      espEchoed: number;
      espSent: number;
    };
  }

  /** `HEAD /sra_{…}/` over TLS through the SSTP proxy, from `cli`: the answer's status line. */
  async sstpHead(): Promise<{ statusLine?: string; error?: string }> {
    const out = await this.topo
      .ns('cli')
      .exec(process.execPath, ['--input-type=module', '-e', SSTP_HEAD_SCRIPT]);
    return JSON.parse(out.trim().split('\n').pop()!) as { statusLine?: string; error?: string };
  }

  async destroy(): Promise<void> {
    await this.topo.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
