/**
 * One real strongSwan charon inside one lab namespace (DESIGN §4): its own instance directory
 * with `strongswan.conf`, `swanctl/` and a private `/run` (charon's pid file path is compiled
 * in, and `ip netns exec` already gives the process a private mount namespace to bind it in).
 * `swanctl` reaches the daemon through the vici socket path written into that strongswan.conf.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Namespace } from '../netns.js';
import { parseListSas, type IkeSaInfo } from './list-sas.js';
import { hasFile, type Availability } from '../requirements.js';
import {
  LAB_PLUGINS,
  renderStrongswanConf,
  viciSocketPath,
  type StrongswanConfOptions,
} from './strongswan-conf.js';
import { sleep } from '../../src/util/wait.js';

export const CHARON_PATH = '/usr/lib/ipsec/charon';

/** Where Debian installs charon's plugins (`libstrongswan-<name>.so`). */
export const PLUGIN_DIR = '/usr/lib/ipsec/plugins';

/**
 * The Debian package of each plugin the lab loads (LAB_PLUGINS), as Debian 12 ships them: the
 * lab's IKE and ESP proposals (AES-GCM) need `openssl`, which is in the standard plugins, a
 * package that `--no-install-recommends` leaves out.
 */
export const PLUGIN_PACKAGES: Readonly<Record<(typeof LAB_PLUGINS)[number], string>> =
  Object.freeze({
    random: 'libstrongswan',
    nonce: 'libstrongswan',
    openssl: 'libstrongswan-standard-plugins',
    aes: 'libstrongswan',
    sha1: 'libstrongswan',
    sha2: 'libstrongswan',
    hmac: 'libstrongswan',
    kdf: 'libstrongswan',
    gmp: 'libstrongswan',
    curve25519: 'libstrongswan-extra-plugins',
    pem: 'libstrongswan',
    pkcs1: 'libstrongswan',
    pkcs8: 'libstrongswan',
    x509: 'libstrongswan',
    pubkey: 'libstrongswan',
    revocation: 'libstrongswan',
    constraints: 'libstrongswan',
    attr: 'libstrongswan',
    'kernel-libipsec': 'libcharon-extra-plugins',
    'kernel-netlink': 'libstrongswan',
    'socket-default': 'strongswan-libcharon',
    vici: 'strongswan-swanctl',
  });

/**
 * True when the strongSwan binaries the lab drives and every plugin its strongswan.conf loads are
 * installed; otherwise one line naming the first missing file and the Debian package to install
 * (a missing plugin otherwise shows up only as "plugin 'openssl': failed to load" in charon's
 * log and a tunnel that never comes up).
 */
export function canUseStrongswan(pluginDir = PLUGIN_DIR): Availability {
  for (const [bin, pkg] of [
    [CHARON_PATH, 'strongswan-charon'],
    ['/usr/sbin/swanctl', 'strongswan-swanctl'],
  ] as const) {
    const has = hasFile(bin, pkg);
    if (!has.ok) return has;
  }
  for (const plugin of LAB_PLUGINS) {
    const has = hasFile(join(pluginDir, `libstrongswan-${plugin}.so`), PLUGIN_PACKAGES[plugin]);
    if (!has.ok) return { ok: false, reason: `strongSwan plugin '${plugin}': ${has.reason}` };
  }
  return { ok: true };
}

export interface CharonOptions extends Omit<StrongswanConfOptions, 'dir'> {
  readonly ns: Namespace;
  /** Instance directory (created); everything of this charon lives in it. */
  readonly dir: string;
  /** swanctl.conf text. */
  readonly swanctlConf: string;
  /** Extra files below `<dir>/swanctl/` (certificates, keys): relative path → content. */
  readonly files?: Readonly<Record<string, string>>;
}

/** Result of one `swanctl --initiate`. */
export interface InitiateResult {
  readonly ok: boolean;
  readonly output: string;
  readonly ms: number;
}

export class Charon {
  readonly ns: Namespace;
  readonly dir: string;
  readonly #process: ChildProcess;
  #exited = false;

  private constructor(ns: Namespace, dir: string, child: ChildProcess) {
    this.ns = ns;
    this.dir = dir;
    this.#process = child;
    child.once('exit', () => {
      this.#exited = true;
    });
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  get running(): boolean {
    return !this.#exited;
  }

  /** Writes the instance directory, starts charon and loads the configuration. */
  static async start(options: CharonOptions): Promise<Charon> {
    const { ns, dir } = options;
    const swanctlDir = join(dir, 'swanctl');
    for (const sub of ['run', 'swanctl', 'swanctl/x509', 'swanctl/x509ca', 'swanctl/private'])
      mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(join(dir, 'strongswan.conf'), renderStrongswanConf({ ...options, dir }));
    // A restarted instance starts with an empty log (the lab counts log lines per run).
    writeFileSync(join(dir, 'charon.log'), '');
    rmSync(viciSocketPath(dir), { force: true });
    writeFileSync(join(swanctlDir, 'swanctl.conf'), options.swanctlConf);
    for (const [rel, content] of Object.entries(options.files ?? {})) {
      mkdirSync(dirname(join(swanctlDir, rel)), { recursive: true });
      writeFileSync(join(swanctlDir, rel), content);
    }
    // `exec` keeps the PID: `ip netns exec` execs sh, sh execs charon, so child.pid is charon.
    const child = ns.spawn(
      'sh',
      [
        '-c',
        `mount --bind '${dir}/run' /run && STRONGSWAN_CONF='${dir}/strongswan.conf' exec ${CHARON_PATH}`,
      ],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    const charon = new Charon(ns, dir, child);
    const socket = viciSocketPath(dir);
    const deadline = Date.now() + 10_000;
    while (!existsSync(socket)) {
      if (!charon.running)
        throw new Error(`charon in ${ns.name} exited at start: ${stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`charon in ${ns.name}: no vici socket after 10 s`);
      await sleep(20);
    }
    await charon.load();
    return charon;
  }

  /** Runs swanctl against this instance (same STRONGSWAN_CONF, SWANCTL_DIR and socket). */
  swanctl(args: readonly string[]): Promise<string> {
    // swanctl only talks to the socket: it needs no namespace, but running it in the
    // namespace keeps any stray lookup inside the lab.
    return this.ns.exec('env', [
      `STRONGSWAN_CONF=${this.dir}/strongswan.conf`,
      `SWANCTL_DIR=${this.dir}/swanctl`,
      'swanctl',
      ...args,
      '--uri',
      `unix://${viciSocketPath(this.dir)}`,
    ]);
  }

  /** (Re)loads connections, secrets, pools and certificates. */
  async load(): Promise<void> {
    await this.swanctl([
      '--load-all',
      '--noprompt',
      '--file',
      join(this.dir, 'swanctl/swanctl.conf'),
    ]);
  }

  /** Initiates a child SA and waits for the outcome (up to `timeoutSec`). */
  async initiate(child = 'home', timeoutSec = 30): Promise<InitiateResult> {
    const t0 = Date.now();
    try {
      const output = await this.swanctl([
        '--initiate',
        '--child',
        child,
        '--timeout',
        String(timeoutSec),
      ]);
      return { ok: /completed successfully/.test(output), output, ms: Date.now() - t0 };
    } catch (err) {
      return { ok: false, output: (err as Error).message, ms: Date.now() - t0 };
    }
  }

  /** Starts an initiation and returns at once (the IKE_SA runs on in the daemon). */
  async initiateAsync(child: string): Promise<void> {
    await this.swanctl(['--initiate', '--child', child, '--timeout', '-1']).catch(() => undefined);
  }

  /** Every IKE_SA the daemon holds, half-open ones included. */
  async listSas(): Promise<IkeSaInfo[]> {
    return parseListSas(await this.swanctl(['--list-sas', '--raw']));
  }

  /** Rekeys a CHILD_SA (CREATE_CHILD_SA) or an IKE_SA (IKE_SA rekey, RFC 7296 §1.3.2) of a connection. */
  async rekey(what: 'child' | 'ike', name: string): Promise<void> {
    await this.swanctl(['--rekey', `--${what}`, name]);
  }

  /** Terminates every IKE_SA of a connection (without waiting for the peer). */
  async terminate(ike: string): Promise<void> {
    await this.swanctl(['--terminate', '--ike', ike, '--force', '--timeout', '2']).catch(
      () => undefined,
    );
  }

  /** Stops the daemon: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    if (!this.running || this.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.#process.once('exit', () => resolve()));
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        if (this.pid !== undefined) process.kill(this.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** Kills the daemon at once, as a crashed server would. */
  async kill(): Promise<void> {
    if (!this.running || this.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.#process.once('exit', () => resolve()));
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      return;
    }
    await exited;
  }
}
