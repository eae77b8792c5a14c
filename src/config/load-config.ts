/**
 * Configuration loading: YAML → schema validation → semantic checks → defaults → freeze.
 *
 * Every problem is reported, not just the first, each with its YAML path and line, so that
 * `vpnlb check` can show an administrator the whole list in one run.
 */
import { readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { LineCounter, parseDocument, isMap, isPair, isScalar, visit, type Document, type Node } from 'yaml';
import { checkUnicastAddress, canonicalAddress } from './address-rules.js';
import { MAGLEV_TABLE_SIZE } from '../balancer/maglev/table-size.js';
import { ConfigSchema, type ConfigInput } from './schema.js';
import { DEFAULTS } from './defaults.js';
import type {
  AdminConfig,
  Backend,
  Config,
  ConfigIssue,
  Ikev2Service,
  Monitor,
  Pool,
  SstpService,
} from './types.js';
import { VpnlbError } from '../errors.js';
import { parseDuration, safeDuration } from './duration.js';
import { checkHa, LOCAL_HOST, resolveHa, type HostView } from './ha.js';

const ajv = new Ajv({ allErrors: true, strict: false, verbose: true });
const validateSchema = ajv.compile<ConfigInput>(ConfigSchema);

/**
 * Bounds on what the loader reads and prints, for hostile or broken files (issue 11: a 50 MB
 * value took 26 s and 2 GB and was echoed whole to stderr; 4 MB of random bytes printed 9.4 MB
 * of errors; a YAML alias bomb ended in a stack trace).
 *
 * A real configuration is a few KiB; one with `MAX_BACKENDS_PER_POOL` backends in several pools
 * stays well under 1 MiB.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Issues reported at most; the rest are summed up in one last line. */
export const MAX_ISSUES = 100;
/** Longest value or YAML message quoted in an issue, in characters. */
export const MAX_QUOTED_LENGTH = 80;
/** Longest message printed for one issue, in characters. */
export const MAX_MESSAGE_LENGTH = 500;
/** YAML aliases resolved at most (each `*alias` expands its anchor: a few nested ones multiply). */
export const MAX_ALIAS_COUNT = 100;

/** Thrown by `loadConfigFile` when the file has errors; carries every issue found. */
export class ConfigError extends VpnlbError {
  readonly issues: readonly ConfigIssue[];
  constructor(source: string, issues: readonly ConfigIssue[]) {
    const errors = issues.filter((i) => i.severity === 'error');
    super(
      'VPNLB_CONFIG_INVALID',
      `${source}: ${errors.length} configuration error(s)\n${errors.map((i) => formatIssue(source, i)).join('\n')}`,
      'client',
    );
    this.issues = issues;
  }
}

export interface CheckResult {
  /** The resolved, frozen configuration; absent when there is any error. */
  readonly config?: Config;
  /** Every error and warning, in file order. */
  readonly issues: readonly ConfigIssue[];
}

/**
 * `file:line:col: error: path: message`, the format compilers and editors understand. Control
 * characters (C0, DEL, C1, line and paragraph separators, bidirectional overrides) from the file
 * are escaped: a key or value must not reach the administrator's terminal as an escape sequence.
 */
export function formatIssue(source: string, issue: ConfigIssue): string {
  const where = issue.line ? `${source}:${issue.line}:${issue.column ?? 1}` : source;
  const path = issue.path ? `${issue.path}: ` : '';
  // Messages quote values through `quoteValue`; this cut catches any other long interpolation.
  const message = issue.message.length <= MAX_MESSAGE_LENGTH ? issue.message : `${issue.message.slice(0, MAX_MESSAGE_LENGTH)}…`;
  return escapeControl(`${where}: ${issue.severity}: ${path}${message}`);
}

/** Escapes characters that a terminal would interpret, as `\u{…}`. */
export function escapeControl(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it escapes
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** A value as an issue quotes it: JSON, cut at `MAX_QUOTED_LENGTH` characters with the full length said. */
export function quoteValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncate(text);
}

function truncate(text: string): string {
  return text.length <= MAX_QUOTED_LENGTH ? text : `${text.slice(0, MAX_QUOTED_LENGTH)}… (${text.length} characters)`;
}

export { parseDuration } from './duration.js';

/** Reads and checks a file; never throws for problems inside the file (they are issues). */
export function checkConfigFile(path: string): CheckResult {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_CONFIG_BYTES) return { issues: [tooLarge(size)] };
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { issues: [{ severity: 'error', path: '', message: `cannot read file: ${(err as Error).message}` }] };
  }
  return checkConfigText(text, path);
}

/** Loads a file and returns the frozen configuration, or throws `ConfigError` with every issue. */
export function loadConfigFile(path: string): Config {
  const result = checkConfigFile(path);
  if (!result.config) throw new ConfigError(path, result.issues);
  return result.config;
}

/** Loads configuration text (for embedded configurations and tests). */
export function loadConfigText(text: string, source = '<embedded>'): Config {
  const result = checkConfigText(text, source);
  if (!result.config) throw new ConfigError(source, result.issues);
  return result.config;
}

type PathSeg = string | number;

/** Checks configuration text: YAML syntax, schema, semantics; resolves when error-free. */
export function checkConfigText(text: string, source = '<embedded>', host: HostView = LOCAL_HOST): CheckResult {
  if (text.length > MAX_CONFIG_BYTES) return { issues: [tooLarge(Buffer.byteLength(text))] };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const issues: ConfigIssue[] = [];
  const locate = (path: readonly PathSeg[], keyOnly = false) => locateNode(doc, lineCounter, path, keyOnly);
  const add = (severity: ConfigIssue['severity'], path: readonly PathSeg[], message: string, keyOnly = false) =>
    issues.push({ severity, path: formatPath(path), ...locate(path, keyOnly), message });

  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    issues.push({ severity: 'error', path: '', line: pos.line, column: pos.col, message: `YAML: ${truncate(firstLine(e.message))}` });
  }
  for (const w of doc.warnings) {
    const pos = lineCounter.linePos(w.pos[0]);
    issues.push({ severity: 'warning', path: '', line: pos.line, column: pos.col, message: `YAML: ${truncate(firstLine(w.message))}` });
  }
  if (doc.errors.length > 0) return { issues: capIssues(sortIssues(issues)) };

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml library throws (ReferenceError) when aliases expand beyond maxAliasCount: a
    // "billion laughs" document. An ordinary issue at the first alias, not a stack trace.
    let at: number | undefined;
    visit(doc, {
      Alias: (_k, node) => {
        at = node.range?.[0];
        return visit.BREAK;
      },
    });
    const pos = at === undefined ? undefined : lineCounter.linePos(at);
    issues.push({ severity: 'error', path: '', ...(pos ? { line: pos.line, column: pos.col } : {}), message: `YAML: aliases expand too far (more than ${MAX_ALIAS_COUNT} resolved): ${truncate(firstLine((err as Error).message))}` });
    return { issues: capIssues(sortIssues(issues)) };
  }
  if (raw === null || raw === undefined) {
    add('error', [], 'the file is empty: a configuration needs at least `pools` and `services`');
    return { issues };
  }
  if (!validateSchema(raw)) {
    for (const e of simplifyAjvErrors(validateSchema.errors ?? [])) {
      const path = pointerToPath(e.instancePath);
      if (e.keyword === 'additionalProperties') {
        const extra = String((e.params as { additionalProperty: string }).additionalProperty);
        add('error', [...path, extra], `unknown setting ${quoteValue(extra)}${suggest(extra, e)}`, true);
      } else if (e.keyword === 'required') {
        const missing = String((e.params as { missingProperty: string }).missingProperty);
        add('error', path, `missing required setting "${missing}"`);
      } else {
        add('error', path, describeAjvError(e));
      }
    }
  }
  semanticChecks(raw, add, baseDirOf(source));
  if (isObj(raw)) checkHa(raw, add, host);
  if (issues.some((i) => i.severity === 'error')) return { issues: capIssues(sortIssues(issues)) };

  const config = resolve(raw as ConfigInput, source);
  for (const w of warningsFor(config)) add('warning', w.path, w.message);
  return { config: deepFreeze(config), issues: capIssues(sortIssues(issues)) };
}

function tooLarge(size: number): ConfigIssue {
  return { severity: 'error', path: '', message: `the file is ${size} bytes; a configuration may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)` };
}

/** The first `MAX_ISSUES` issues, and one line that says how many more there were. */
function capIssues(issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= MAX_ISSUES) return issues;
  const rest = issues.slice(MAX_ISSUES);
  const errors = rest.filter((i) => i.severity === 'error').length;
  return [
    ...issues.slice(0, MAX_ISSUES),
    { severity: errors > 0 ? 'error' : 'warning', path: '', message: `${rest.length} more issue(s) not shown (${errors} error(s)); fix the ones above first` },
  ];
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}

function pointerToPath(pointer: string): PathSeg[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^[0-9]+$/.test(s) ? Number(s) : s));
}

/** `pools.rras.backends[1].address` */
export function formatPath(path: readonly PathSeg[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

function locateNode(
  doc: Document,
  lc: LineCounter,
  path: readonly PathSeg[],
  keyOnly: boolean,
): { line?: number; column?: number } {
  // Walk as deep as the document goes; report the deepest node that exists.
  let node: unknown = doc.contents;
  let keyNode: Node | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) break;
      keyNode = pair.key as Node;
      node = pair.value;
    } else if (node && typeof node === 'object' && 'items' in node && Array.isArray((node as { items: unknown[] }).items)) {
      const item = (node as { items: unknown[] }).items[Number(seg)];
      if (item === undefined) break;
      keyNode = undefined;
      node = item;
    } else {
      break;
    }
  }
  const target = (keyOnly ? keyNode : undefined) ?? (node as Node | undefined) ?? keyNode;
  const offset = target?.range?.[0];
  if (offset === undefined) return {};
  const pos = lc.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Drops the noise of `anyOf` branches: one message for the union, none for each branch. */
function simplifyAjvErrors(errors: ErrorObject[]): ErrorObject[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  return errors.filter((e) => e.keyword === 'anyOf' || !anyOfPaths.has(e.instancePath) || e.schemaPath.indexOf('anyOf') < 0);
}

function describeAjvError(e: ErrorObject): string {
  const schema = e.parentSchema as { description?: string; enum?: unknown[] } | undefined;
  switch (e.keyword) {
    case 'enum':
      return `must be one of: ${(schema?.enum ?? []).join(', ')} (got ${quoteValue(e.data)})`;
    case 'anyOf':
      return `must be ${schema?.description ?? 'one of the allowed forms'} (got ${quoteValue(e.data)})`;
    case 'pattern':
      return e.schemaPath.includes('propertyNames')
        ? `invalid name ${quoteValue(e.data)}: use letters, digits, - and _ (start with a letter)`
        : `invalid value ${quoteValue(e.data)}: ${patternHint(e)}`;
    case 'type':
      return `must be ${(e.params as { type: string }).type} (got ${quoteValue(e.data)})`;
    case 'maxItems':
      return `at most ${(e.params as { limit: number }).limit} entries (got ${Array.isArray(e.data) ? e.data.length : '?'})${e.instancePath.endsWith('/backends') ? ': see "Maximum number of backends" in docs/configuration.md' : ''}`;
    default:
      return `${e.message ?? 'invalid'} (got ${quoteValue(e.data)})`;
  }
}

function patternHint(e: ErrorObject): string {
  const pattern = String((e.params as { pattern: string }).pattern);
  if (pattern.includes('ms|s|m|h')) return 'a duration such as 500ms, 5s, 10m or 2h';
  if (pattern.includes('0,62')) return 'names use letters, digits, - and _ and start with a letter';
  return `must match ${pattern}`;
}

function suggest(extra: string, e: ErrorObject): string {
  const schema = e.parentSchema as { properties?: Record<string, unknown> } | undefined;
  const known = Object.keys(schema?.properties ?? {});
  // Edit distance is quadratic: a hostile 50 MB key must not cost minutes.
  const close = extra.length > 64 ? undefined : known.find((k) => editDistance(k.toLowerCase(), extra.toLowerCase()) <= 2);
  return close ? ` (did you mean "${close}"?)` : known.length ? ` (allowed: ${known.join(', ')})` : '';
}

function editDistance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

type AddIssue = (severity: ConfigIssue['severity'], path: readonly PathSeg[], message: string, keyOnly?: boolean) => void;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Checks that need more than one value: references, address syntax and families, uniqueness,
 * mode-specific requirements. Defensive about types, since it also runs on schema-invalid input.
 */
function semanticChecks(raw: unknown, add: AddIssue, baseDir: string): void {
  if (!isObj(raw)) return;
  const pools = isObj(raw.pools) ? raw.pools : {};
  const monitors = isObj(raw.monitors) ? raw.monitors : {};
  const poolFamilies = new Map<string, Set<number>>();

  if (isObj(raw.admin)) {
    const a = raw.admin;
    if (isObj(a.tls)) {
      for (const k of ['cert', 'key'] as const) {
        const f = a.tls[k];
        if (typeof f !== 'string') continue;
        try {
          readFileSync(resolvePath(baseDir, f));
        } catch (err) {
          add('warning', ['admin', 'tls', k], `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (vpnlb run needs it on the balancer host)`);
        }
      }
    }
  }

  for (const [poolName, pool] of Object.entries(pools)) {
    if (!isObj(pool)) continue;
    const seen = new Map<string, number>();
    const addresses = new Map<string, number>();
    const families = new Set<number>();
    arr(pool.backends).forEach((b, i) => {
      if (!isObj(b)) return;
      const base: PathSeg[] = ['pools', poolName, 'backends', i];
      if (typeof b.name === 'string') {
        if (seen.has(b.name)) add('error', [...base, 'name'], `duplicate backend name "${b.name}" (also backends[${seen.get(b.name)}])`);
        else seen.set(b.name, i);
      }
      if (typeof b.address === 'string') {
        const checked = checkUnicastAddress(b.address);
        if ('problem' in checked) add('error', [...base, 'address'], checked.problem);
        else {
          families.add(checked.family);
          // Compared in canonical form: ::ffff:198.18.1.10 and 198.18.1.10 are one server.
          const prev = addresses.get(checked.canonical);
          if (prev !== undefined) add('error', [...base, 'address'], `address ${b.address} is the same host as backends[${prev}] (${checked.canonical})`);
          else addresses.set(checked.canonical, i);
        }
      }
    });
    poolFamilies.set(poolName, families);
    const weights = arr(pool.backends).map((b) => (isObj(b) && typeof b.weight === 'number' ? b.weight : 1));
    if (weights.length > 0 && weights.every((w) => w === 0)) add('error', ['pools', poolName, 'backends'], 'every backend has weight 0: the pool can serve nobody');
  }

  for (const [name, m] of Object.entries(monitors)) {
    if (!isObj(m)) continue;
    const interval = safeDuration(m.interval) ?? DEFAULTS.monitor.interval;
    const timeout = safeDuration(m.timeout) ?? DEFAULTS.monitor.timeout;
    if (timeout >= interval) add('error', ['monitors', name, 'timeout'], `timeout (${timeout} ms) must be shorter than interval (${interval} ms)`);
    if (m.type === 'tcp' && m.port === undefined) add('error', ['monitors', name], 'a tcp monitor needs a "port"');
    if (m.type !== 'sstp') {
      for (const k of ['sni', 'verifyCertificate', 'ca', 'expectStatus']) {
        if (k in m) add('error', ['monitors', name, k], `"${k}" applies to sstp monitors only`, true);
      }
    }
  }

  // The admin listener may be the unspecified address (every address of the host), but it must
  // be an address: `vpnlb run` would otherwise fail only at start (issue 11).
  if (isObj(raw.admin) && typeof raw.admin.listen === 'string') {
    const listen = raw.admin.listen;
    if (listen.includes('%') || isIP(listen) === 0) add('error', ['admin', 'listen'], `${quoteValue(listen)} is not an IPv4 or IPv6 address (without zone ID)`);
  }

  const services = isObj(raw.services) ? raw.services : {};
  const names = new Map<string, string>();
  const listeners = new Map<string, string>();
  const claim = (key: string, where: PathSeg[], what: string) => {
    const prev = listeners.get(key);
    if (prev) add('error', where, `${what} is already used by ${prev}`);
    else listeners.set(key, formatPath(where));
  };
  const checkCommon = (kind: 'ikev2' | 'sstp', s: Record<string, unknown>, i: number) => {
    const base: PathSeg[] = ['services', kind, i];
    if (typeof s.name === 'string') {
      if (names.has(s.name)) add('error', [...base, 'name'], `duplicate service name "${s.name}" (also ${names.get(s.name)})`);
      else names.set(s.name, formatPath(base));
    }
    let vipFamily = 0;
    if (typeof s.virtualIp === 'string') {
      const checked = checkUnicastAddress(s.virtualIp);
      if ('problem' in checked) add('error', [...base, 'virtualIp'], checked.problem);
      else vipFamily = checked.family;
    }
    if (typeof s.pool === 'string') {
      if (!(s.pool in pools)) add('error', [...base, 'pool'], `unknown pool "${s.pool}" (defined: ${Object.keys(pools).join(', ') || 'none'})`);
      else if (vipFamily && kind === 'ikev2' && s.dataplane !== 'userspace') {
        const fams = poolFamilies.get(s.pool) ?? new Set();
        if (fams.size > 0 && !fams.has(vipFamily)) {
          add('error', [...base, 'pool'], `pool "${s.pool}" has no IPv${vipFamily} backend: the kernel data plane translates destinations within one address family (use an IPv${vipFamily} pool or dataplane: userspace)`);
        }
      }
    }
    if (typeof s.monitor === 'string' && !(s.monitor in monitors)) {
      add('error', [...base, 'monitor'], `unknown monitor "${s.monitor}" (defined: ${Object.keys(monitors).join(', ') || 'none'})`);
    }
    return vipFamily;
  };

  arr(services.ikev2).forEach((s, i) => {
    if (!isObj(s)) return;
    const base: PathSeg[] = ['services', 'ikev2', i];
    checkCommon('ikev2', s, i);
    const ikePort = typeof s.ikePort === 'number' ? s.ikePort : DEFAULTS.ikev2.ikePort;
    const natTPort = typeof s.natTPort === 'number' ? s.natTPort : DEFAULTS.ikev2.natTPort;
    if (typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0) {
      const vip = canonicalAddress(s.virtualIp);
      if (ikePort !== 0) claim(`udp/${vip}/${ikePort}`, [...base, 'virtualIp'], `UDP ${s.virtualIp} port ${ikePort}`);
      if (natTPort !== 0) claim(`udp/${vip}/${natTPort}`, [...base, 'virtualIp'], `UDP ${s.virtualIp} port ${natTPort}`);
    }
    if (ikePort !== 0 && ikePort === natTPort) add('error', [...base, 'natTPort'], 'ikePort and natTPort must differ');
    if (isObj(s.snat)) {
      if (s.nat !== 'full') add('error', [...base, 'snat'], 'an SNAT pool applies to nat: full only (transparent mode keeps the client address)', true);
      const seen = new Set<string>();
      arr(s.snat.addresses).forEach((a, j) => {
        if (typeof a !== 'string') return;
        const checked = checkUnicastAddress(a);
        if ('problem' in checked) add('error', [...base, 'snat', 'addresses', j], checked.problem);
        else if (seen.has(checked.canonical)) add('error', [...base, 'snat', 'addresses', j], `duplicate SNAT address ${a}`);
        else seen.add(checked.canonical);
      });
    }
    if (s.dataplane !== 'userspace' && typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0) {
      // The kernel plane owns one nftables table per (family, table name).
      const table = typeof s.table === 'string' ? s.table : DEFAULTS.ikev2.table;
      claim(`nft/${isIP(s.virtualIp)}/${table}`, [...base, ...(s.table === undefined ? [] : ['table'])], `nftables table "${table}" (IPv${isIP(s.virtualIp)}; set a distinct "table" on each IKEv2 service of one address family)`);
    }
    if (s.method !== undefined && s.method !== 'maglev' && s.dataplane !== 'userspace') {
      add('error', [...base, 'method'], `method ${String(s.method)} needs per-client state in userspace; the kernel data plane uses maglev (set dataplane: userspace, or drop method)`);
    }
  });

  arr(services.sstp).forEach((s, i) => {
    if (!isObj(s)) return;
    const base: PathSeg[] = ['services', 'sstp', i];
    checkCommon('sstp', s, i);
    const port = typeof s.port === 'number' ? s.port : DEFAULTS.sstp.port;
    if (typeof s.virtualIp === 'string' && isIP(s.virtualIp) !== 0 && port !== 0) claim(`tcp/${canonicalAddress(s.virtualIp)}/${port}`, [...base, 'virtualIp'], `TCP ${s.virtualIp} port ${port}`);
    const mode = typeof s.mode === 'string' ? s.mode : DEFAULTS.sstp.mode;
    if ((mode === 'offload' || mode === 'reencrypt') && !isObj(s.tls)) {
      add('error', base, `mode ${mode} terminates TLS: it needs "tls" with the certificate and key clients will see`);
    }
    if (mode === 'passthrough' && isObj(s.tls)) {
      add('error', [...base, 'tls'], 'passthrough does not terminate TLS: remove "tls" or choose mode offload or reencrypt', true);
    }
    if (s.allowCertificateMismatch !== undefined && mode !== 'reencrypt') {
      add('error', [...base, 'allowCertificateMismatch'], 'applies to mode reencrypt only', true);
    }
    if (mode !== 'passthrough' && s.persistence === 'tls-session') {
      add('error', [...base, 'persistence'], `tls-session persistence needs passthrough (in ${mode} mode the balancer owns the client's TLS session): use source-ip or none`);
    }
    if (isObj(s.tls)) {
      for (const k of ['cert', 'key'] as const) {
        const f = s.tls[k];
        if (typeof f === 'string') {
          // A warning, not an error: `check` often runs elsewhere than the balancer host (CI,
          // a workstation); `run` fails with a clear error if the file is still missing.
          try {
            readFileSync(resolvePath(baseDir, f));
          } catch (err) {
            add('warning', [...base, 'tls', k], `cannot read ${f}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (vpnlb run needs it on the balancer host)`);
          }
        }
      }
    }
  });
  if (arr(services.ikev2).length === 0 && arr(services.sstp).length === 0 && isObj(raw.services)) {
    add('error', ['services'], 'no service defined: add services.ikev2 and/or services.sstp');
  }
}

/** Relative file paths in a configuration are relative to the configuration file. */
function baseDirOf(source: string): string {
  return source.startsWith('<') ? process.cwd() : dirname(resolvePath(source));
}

function resolveAdmin(a: NonNullable<ConfigInput['admin']>, baseDir: string): AdminConfig {
  const D = DEFAULTS.admin;
  return {
    listen: a.listen ?? D.listen,
    port: a.port ?? D.port,
    tokenFile: resolvePath(baseDir, a.tokenFile ?? D.tokenFile),
    ...(a.readOnlyTokenFile !== undefined ? { readOnlyTokenFile: resolvePath(baseDir, a.readOnlyTokenFile) } : {}),
    ...(a.socket !== undefined ? { socket: resolvePath(baseDir, a.socket) } : {}),
    ...(a.tls ? { tls: { cert: resolvePath(baseDir, a.tls.cert), key: resolvePath(baseDir, a.tls.key) } } : {}),
    allowedHosts: (a.allowedHosts ?? []).map((h) => h.toLowerCase()),
    metrics: a.metrics ?? D.metrics,
    healthEndpoint: a.healthEndpoint ?? D.healthEndpoint,
    maxConnections: a.maxConnections ?? D.maxConnections,
    sessionTimeout: parseDuration(a.sessionTimeout ?? D.sessionTimeout / 1000),
  };
}

function resolve(input: ConfigInput, source: string): Config {
  const monitors: Record<string, Monitor> = {};
  for (const [name, m] of Object.entries(input.monitors ?? {})) {
    monitors[name] = {
      name,
      type: m.type,
      interval: parseDuration(m.interval ?? DEFAULTS.monitor.interval / 1000),
      timeout: parseDuration(m.timeout ?? DEFAULTS.monitor.timeout / 1000),
      rise: m.rise ?? DEFAULTS.monitor.rise,
      fall: m.fall ?? DEFAULTS.monitor.fall,
      jitter: m.jitter ?? DEFAULTS.monitor.jitter,
      verifyCertificate: m.verifyCertificate ?? DEFAULTS.monitor.verifyCertificate,
      expectStatus: m.expectStatus ?? DEFAULTS.monitor.expectStatus,
      ...(m.port !== undefined ? { port: m.port } : {}),
      ...(m.sni !== undefined ? { sni: m.sni } : {}),
      ...(m.ca !== undefined ? { ca: m.ca } : {}),
    };
  }
  const pools: Record<string, Pool> = {};
  for (const [name, p] of Object.entries(input.pools)) {
    pools[name] = {
      name,
      backends: p.backends.map(
        (b): Backend => ({
          name: b.name,
          address: b.address,
          family: isIP(b.address) === 6 ? 6 : 4,
          weight: b.weight ?? DEFAULTS.backend.weight,
          enabled: b.enabled ?? DEFAULTS.backend.enabled,
          maxConnections: b.maxConnections ?? DEFAULTS.backend.maxConnections,
        }),
      ),
      slowStart: parseDuration(p.slowStart ?? DEFAULTS.slowStart),
    };
  }
  const D = DEFAULTS.ikev2;
  const ikev2 = (input.services.ikev2 ?? []).map(
    (s): Ikev2Service => ({
      name: s.name,
      virtualIp: s.virtualIp,
      family: isIP(s.virtualIp) === 6 ? 6 : 4,
      ikePort: s.ikePort ?? D.ikePort,
      natTPort: s.natTPort ?? D.natTPort,
      backendIkePort: s.backendIkePort ?? D.ikePort,
      backendNatTPort: s.backendNatTPort ?? D.natTPort,
      pool: s.pool,
      dataplane: s.dataplane ?? D.dataplane,
      nat: s.nat ?? D.nat,
      ...(s.snat
        ? { snat: { addresses: [...s.snat.addresses], maxSasPerAddress: s.snat.maxSasPerAddress ?? D.maxSasPerAddress } }
        : {}),
      affinity: s.affinity ?? D.affinity,
      method: s.method ?? D.method,
      flowTimeout: parseDuration(s.flowTimeout ?? D.flowTimeout / 1000),
      persistenceTimeout: parseDuration(s.persistenceTimeout ?? D.persistenceTimeout / 1000),
      maxFlows: s.maxFlows ?? D.maxFlows,
      maxNewFlowsPerSecond: s.maxNewFlowsPerSecond ?? D.maxNewFlowsPerSecond,
      maxNewFlowsPerSecondPerSource:
        s.maxNewFlowsPerSecondPerSource ?? Math.max(1, Math.ceil((s.maxNewFlowsPerSecond ?? D.maxNewFlowsPerSecond) * D.maxNewFlowsPerSecondPerSourceShare)),
      table: s.table ?? D.table,
      hashSeed: s.hashSeed ?? D.hashSeed,
      slowStart: s.slowStart !== undefined ? parseDuration(s.slowStart) : (pools[s.pool]?.slowStart ?? DEFAULTS.slowStart),
      ...(s.monitor !== undefined ? { monitor: s.monitor } : {}),
    }),
  );
  const S = DEFAULTS.sstp;
  const sstp = (input.services.sstp ?? []).map((s): SstpService => {
    const mode = s.mode ?? S.mode;
    return {
      name: s.name,
      virtualIp: s.virtualIp,
      family: isIP(s.virtualIp) === 6 ? 6 : 4,
      port: s.port ?? S.port,
      pool: s.pool,
      mode,
      method: s.method ?? S.method,
      persistence: s.persistence ?? (mode === 'passthrough' ? S.persistence : 'source-ip'),
      persistenceTimeout: parseDuration(s.persistenceTimeout ?? S.persistenceTimeout / 1000),
      ...(s.tls ? { tls: { cert: resolvePath(baseDirOf(source), s.tls.cert), key: resolvePath(baseDirOf(source), s.tls.key) } } : {}),
      backendPort: s.backendPort ?? (mode === 'offload' ? S.backendPortOffload : S.backendPortTls),
      allowCertificateMismatch: s.allowCertificateMismatch ?? S.allowCertificateMismatch,
      maxConnections: s.maxConnections ?? S.maxConnections,
      maxConnectionsPerSource: s.maxConnectionsPerSource ?? S.maxConnectionsPerSource,
      maxNewConnectionsPerSecondPerSource: s.maxNewConnectionsPerSecondPerSource ?? S.maxNewConnectionsPerSecondPerSource,
      idleTimeout: parseDuration(s.idleTimeout ?? S.idleTimeout / 1000),
      handshakeTimeout: parseDuration(s.handshakeTimeout ?? S.handshakeTimeout / 1000),
      connectTimeout: parseDuration(s.connectTimeout ?? S.connectTimeout / 1000),
      drainTimeout: parseDuration(s.drainTimeout ?? S.drainTimeout / 1000),
      slowStart: s.slowStart !== undefined ? parseDuration(s.slowStart) : (pools[s.pool]?.slowStart ?? DEFAULTS.slowStart),
      ...(s.monitor !== undefined ? { monitor: s.monitor } : {}),
    };
  });
  return {
    source,
    admin: resolveAdmin(input.admin ?? {}, baseDirOf(source)),
    log: { level: input.log?.level ?? DEFAULTS.logLevel },
    health: { allDown: input.health?.allDown ?? DEFAULTS.allDown },
    monitors,
    pools,
    services: { ikev2, sstp },
    ...(input.ha ? { ha: resolveHa(input.ha, [...ikev2, ...sstp].map((s) => s.virtualIp)) } : {}),
  };
}

/** Valid but risky settings: the administrator is told, the file still loads. */
function warningsFor(config: Config): { path: PathSeg[]; message: string }[] {
  const out: { path: PathSeg[]; message: string }[] = [];
  if (!isLoopback(config.admin.listen) && !config.admin.tls) {
    out.push({
      path: ['admin', 'listen'],
      message: `the admin listener on ${config.admin.listen} is reachable from the network without TLS: tokens and session cookies travel in clear (set admin.tls, or listen on 127.0.0.1 and use admin.socket)`,
    });
  }
  if (config.admin.metrics === 'open' && !isLoopback(config.admin.listen)) {
    out.push({ path: ['admin', 'metrics'], message: 'metrics: open lets anyone who reaches the admin listener read /metrics (backend names, addresses, counters)' });
  }
  config.services.ikev2.forEach((s, i) => {
    if (s.nat === 'full') {
      const from = s.snat ? s.snat.addresses.join(', ') : 'the balancer\'s own address';
      const what = s.snat && s.snat.addresses.length > 1 ? `one of only ${s.snat.addresses.length} addresses (${from})` : from;
      out.push({
        path: ['services', 'ikev2', i, 'nat'],
        message: `full NAT: the VPN servers will see every client as coming from ${what}: expect IKEv2 error 809 under load; see docs/operations.md ("Transparent vs full NAT")`,
      });
    }
    if (s.monitor === undefined) {
      out.push({ path: ['services', 'ikev2', i], message: 'no monitor: a dead server keeps receiving clients (add an ikev2 monitor)' });
    } else if (config.monitors[s.monitor]?.type === 'icmp') {
      out.push({ path: ['services', 'ikev2', i, 'monitor'], message: 'an icmp monitor only proves the host is up, not its IKE service: prefer type ikev2' });
    }
    if (s.flowTimeout < 30_000) {
      out.push({ path: ['services', 'ikev2', i, 'flowTimeout'], message: `flowTimeout ${s.flowTimeout} ms is close to the NAT-T keepalive interval (20 s): idle tunnels may lose their flow` });
    }
  });
  config.services.sstp.forEach((s, i) => {
    if (s.monitor === undefined) out.push({ path: ['services', 'sstp', i], message: 'no monitor: a dead server keeps receiving clients (add an sstp monitor)' });
    if (s.mode === 'reencrypt' && s.allowCertificateMismatch) {
      out.push({ path: ['services', 'sstp', i, 'allowCertificateMismatch'], message: 'RRAS does not support a server certificate that differs from the front one: SSTP crypto binding will fail' });
    }
  });
  const vipWarnings = (kind: 'ikev2' | 'sstp', s: { virtualIp: string; pool: string }, i: number) => {
    const vip = canonicalAddress(s.virtualIp);
    const same = config.pools[s.pool]?.backends.find((b) => canonicalAddress(b.address) === vip);
    if (same) out.push({ path: ['services', kind, i, 'virtualIp'], message: `the virtual IP ${s.virtualIp} is also the address of backend ${same.name}: clients would be sent to the balancer itself` });
  };
  for (const [i, s] of config.services.ikev2.entries()) vipWarnings('ikev2', s, i);
  for (const [i, s] of config.services.sstp.entries()) vipWarnings('sstp', s, i);
  for (const [name, pool] of Object.entries(config.pools)) {
    pool.backends.forEach((b, i) => {
      const checked = checkUnicastAddress(b.address);
      if (!('problem' in checked) && checked.isLoopback) {
        out.push({ path: ['pools', name, 'backends', i, 'address'], message: `${b.address} is a loopback address: only a server on the balancer host itself can answer there (fine for a demo or a test, not for a farm)` });
      }
    });
    // Maglev §3.4: a backend's share of the 65537 slots follows its weight; below one slot it
    // gets no client at all from the hash (the kernel plane, maglev method).
    const total = pool.backends.reduce((n, b) => n + (b.enabled ? b.weight : 0), 0);
    pool.backends.forEach((b, i) => {
      if (b.enabled && b.weight > 0 && total > 0 && (b.weight / total) * MAGLEV_TABLE_SIZE < 1) {
        out.push({ path: ['pools', name, 'backends', i, 'weight'], message: `weight ${b.weight} of ${total} in all gives ${b.name} less than one of the ${MAGLEV_TABLE_SIZE} Maglev slots: it would get no client by hash` });
      }
    });
    if (!config.services.ikev2.some((s) => s.pool === name) && !config.services.sstp.some((s) => s.pool === name)) {
      out.push({ path: ['pools', name], message: `pool "${name}" is not used by any service` });
    }
    if (pool.backends.every((b) => !b.enabled)) out.push({ path: ['pools', name], message: `every backend of pool "${name}" is disabled` });
  }
  return out;
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as object)) deepFreeze(v);
  }
  return value;
}
