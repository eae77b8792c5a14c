/**
 * `vpnlb export`: the equivalent configuration of a vendor load balancer, one pure renderer per
 * format behind this interface (f5, citrix, kemp, haproxy, nginx). A renderer never omits a
 * feature silently: where the target has no equivalent (IKE-SPI affinity, the stateless IKEv2
 * probe, Maglev), the output says so in a comment at that place — written by `noEquivalent` —
 * and uses the closest equivalent.
 */
import { basename, relative } from 'node:path';
import type { Backend, Config, Ikev2Service, Monitor, Pool, SstpService } from '../config/types.js';
import { VpnlbError } from '../errors.js';

/** What a renderer translates: the services chosen from one configuration. */
export interface ExportInput {
  readonly config: Config;
  readonly ikev2: readonly Ikev2Service[];
  readonly sstp: readonly SstpService[];
  /** Directory that file paths in the output (certificates) are written relative to. */
  readonly baseDir: string;
}

export interface ExportFormat {
  /** The `--format` value. */
  readonly name: string;
  /** One line for `vpnlb export --help` and the docs. */
  readonly summary: string;
  /** Extension of the golden files and the suggested output file name. */
  readonly extension: string;
  /** Pure: the same input gives the same text (no clock, no file system). */
  render(input: ExportInput): string;
}

/**
 * The services of `config` to export: all, or the one named `serviceName` (an IKEv2 or an SSTP
 * service). An unknown name is a usage error that lists the names there are.
 */
export function selectServices(
  config: Config,
  serviceName: string | undefined,
  baseDir: string,
): ExportInput {
  const { ikev2, sstp } = config.services;
  if (serviceName === undefined) return { config, ikev2, sstp, baseDir };
  const input = {
    config,
    ikev2: ikev2.filter((s) => s.name === serviceName),
    sstp: sstp.filter((s) => s.name === serviceName),
    baseDir,
  };
  if (input.ikev2.length + input.sstp.length === 0) {
    const names = [...ikev2, ...sstp].map((s) => s.name).join(', ') || 'none';
    throw new VpnlbError(
      'VPNLB_CLI_USAGE',
      `--service: no service named "${serviceName}" in ${config.source} (services: ${names})`,
      'client',
    );
  }
  return input;
}

/** The pool a service draws from (validated to exist by the loader). */
export function poolOf(input: ExportInput, service: Ikev2Service | SstpService): Pool {
  const pool = input.config.pools[service.pool];
  if (!pool)
    throw new VpnlbError(
      'VPNLB_CONFIG_INVALID',
      `service ${service.name}: no pool "${service.pool}"`,
      'client',
    );
  return pool;
}

/** Every server the chosen services send clients to, once each by name, in pool order. */
export function serversOf(input: ExportInput): Backend[] {
  const byName = new Map<string, Backend>();
  for (const s of [...input.ikev2, ...input.sstp])
    for (const b of poolOf(input, s).backends) if (!byName.has(b.name)) byName.set(b.name, b);
  return [...byName.values()];
}

/** The service's health monitor, if it names one. */
export function monitorOf(
  input: ExportInput,
  service: Ikev2Service | SstpService,
): Monitor | undefined {
  return service.monitor === undefined ? undefined : input.config.monitors[service.monitor];
}

/** Milliseconds to whole seconds, rounded up (vendors count timeouts in seconds; 0 stays 0). */
export function seconds(ms: number): number {
  return Math.ceil(ms / 1000);
}

/** Milliseconds to whole minutes, rounded up, at least 1 (Citrix persistence timeouts). */
export function minutes(ms: number): number {
  return Math.max(1, Math.ceil(ms / 60_000));
}

/** A certificate or key path for file-based targets: relative to the configuration's directory when inside it. */
export function displayPath(input: ExportInput, path: string): string {
  const rel = relative(input.baseDir, path);
  return rel.startsWith('..') || rel === '' ? path : rel;
}

/** The file name alone, for appliances that keep certificates in their own store. */
export function storeName(path: string): string {
  return basename(path).replace(/\.[^.]+$/, '');
}

/** Whether a backend takes new clients in vpnlb (enabled, weight above 0). */
export function takesClients(b: { readonly enabled: boolean; readonly weight: number }): boolean {
  return b.enabled && b.weight > 0;
}

/**
 * The comment every renderer writes where the target lacks a vpnlb feature: the feature, why it
 * matters, and the closest equivalent used instead. Tests look for "no equivalent" and the
 * feature's name.
 */
export function noEquivalent(commentPrefix: string, feature: string, closest: string): string {
  return `${commentPrefix} no equivalent: ${feature}; closest: ${closest}`;
}

/** The header every export starts with: what it is, where it came from, what to check. */
export function exportHeader(
  commentPrefix: string,
  input: ExportInput,
  format: string,
  docs: readonly string[],
): string[] {
  const services = [...input.ikev2, ...input.sstp].map((s) => s.name).join(', ') || 'none';
  return [
    `${commentPrefix} ${format}: equivalent of the vpnlb configuration ${basename(input.config.source)} (services: ${services}).`,
    `${commentPrefix} Written by \`vpnlb export\`; review it before use (names, certificates, the balancer's own addresses).`,
    `${commentPrefix} Syntax from:`,
    ...docs.map((d) => `${commentPrefix}   ${d}`),
  ];
}

/**
 * A service's explicit SSTP connection cap, 0 for none. `auto` (the default) is sized by vpnlb
 * from its own open-file limit at start; the target sizes its own, so nothing is rendered.
 */
export function serviceConnectionLimit(s: SstpService): number {
  return typeof s.maxConnections === 'number' ? s.maxConnections : 0;
}
