/**
 * What a configuration reload changes: a pure comparison of two resolved configurations, in
 * words for the administrator (`vpnlb reload` prints them, the event timeline records them) and
 * as the sets the runtime acts on. Services and backends are matched by name; a backend whose
 * address changed is a removed one plus an added one (its flows belong to the old address).
 */
import type { Backend, Config, Ikev2Service, SstpService } from '../config/types.js';

export interface ConfigDiff {
  /** One line per difference, e.g. `pool farm: backend s3 added (198.18.1.13)`. */
  readonly changes: readonly string[];
  readonly servicesAdded: readonly string[];
  readonly servicesRemoved: readonly string[];
  /** Services present in both whose own settings differ (ports, timeouts, monitor name, ...). */
  readonly servicesChanged: readonly string[];
  /** Pools whose backend set (names or addresses) changed. */
  readonly poolsWithNewMembers: readonly string[];
  /** `pool/name` of backends that leave (removed, or their address changed). */
  readonly backendsRemoved: readonly string[];
  /** Monitors whose settings changed, were added or removed. */
  readonly monitorsChanged: readonly string[];
  /** True when the `admin` section differs (it takes effect at the next start). */
  readonly adminChanged: boolean;
}

type AnyService = (Ikev2Service | SstpService) & { readonly kind: 'ikev2' | 'sstp' };

function services(c: Config): Map<string, AnyService> {
  const out = new Map<string, AnyService>();
  for (const s of c.services.ikev2) out.set(s.name, { ...s, kind: 'ikev2' });
  for (const s of c.services.sstp) out.set(s.name, { ...s, kind: 'sstp' });
  return out;
}

const json = (v: unknown) => JSON.stringify(v);

/** Keys whose values differ between two flat records (values compared as JSON). */
function changedKeys(a: object, b: object): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys]
    .filter(
      (k) => json((a as Record<string, unknown>)[k]) !== json((b as Record<string, unknown>)[k]),
    )
    .sort();
}

function describe(a: object, b: object, keys: readonly string[]): string {
  const show = (v: unknown) =>
    v === undefined ? 'unset' : typeof v === 'object' ? json(v) : String(v);
  return keys
    .map(
      (k) =>
        `${k} ${show((a as Record<string, unknown>)[k])} → ${show((b as Record<string, unknown>)[k])}`,
    )
    .join(', ');
}

export function diffConfig(before: Config, after: Config): ConfigDiff {
  const changes: string[] = [];
  const backendsRemoved: string[] = [];
  const poolsWithNewMembers = new Set<string>();

  for (const name of new Set([...Object.keys(before.pools), ...Object.keys(after.pools)])) {
    const a = before.pools[name];
    const b = after.pools[name];
    if (!a) {
      changes.push(`pool ${name} added`);
      continue;
    }
    if (!b) {
      changes.push(`pool ${name} removed`);
      for (const x of a.backends) backendsRemoved.push(`${name}/${x.name}`);
      continue;
    }
    const byName = (list: readonly Backend[]) => new Map(list.map((x) => [x.name, x]));
    const olds = byName(a.backends);
    const news = byName(b.backends);
    for (const [n, x] of olds) {
      const y = news.get(n);
      if (!y) {
        changes.push(
          `pool ${name}: backend ${n} removed (${x.address}): its flows are removed as on disable`,
        );
        backendsRemoved.push(`${name}/${n}`);
        poolsWithNewMembers.add(name);
      } else if (x.address !== y.address) {
        changes.push(
          `pool ${name}: backend ${n} moved from ${x.address} to ${y.address}: the flows to ${x.address} are removed`,
        );
        backendsRemoved.push(`${name}/${n}`);
        poolsWithNewMembers.add(name);
      } else {
        const keys = changedKeys(x, y);
        if (keys.length > 0) changes.push(`pool ${name}: backend ${n}: ${describe(x, y, keys)}`);
      }
    }
    for (const [n, y] of news) {
      if (!olds.has(n)) {
        changes.push(`pool ${name}: backend ${n} added (${y.address})`);
        poolsWithNewMembers.add(name);
      }
    }
  }

  const sa = services(before);
  const sb = services(after);
  const servicesAdded = [...sb.keys()].filter((n) => !sa.has(n));
  const servicesRemoved = [...sa.keys()].filter((n) => !sb.has(n));
  const servicesChanged: string[] = [];
  for (const n of servicesRemoved) changes.push(`service ${n} removed`);
  for (const n of servicesAdded)
    changes.push(`service ${n} added (${sb.get(n)!.kind}, ${sb.get(n)!.virtualIp})`);
  for (const [n, a] of sa) {
    const b = sb.get(n);
    if (!b) continue;
    const keys = changedKeys(a, b);
    if (keys.length > 0) {
      servicesChanged.push(n);
      changes.push(`service ${n}: ${describe(a, b, keys)}`);
    }
  }

  const monitorsChanged: string[] = [];
  for (const n of new Set([...Object.keys(before.monitors), ...Object.keys(after.monitors)])) {
    const a = before.monitors[n];
    const b = after.monitors[n];
    if (json(a) === json(b)) continue;
    monitorsChanged.push(n);
    changes.push(
      !a
        ? `monitor ${n} added`
        : !b
          ? `monitor ${n} removed`
          : `monitor ${n}: ${describe(a, b, changedKeys(a, b))}`,
    );
  }
  for (const key of ['log', 'health'] as const) {
    const keys = changedKeys(before[key], after[key]);
    if (keys.length > 0) changes.push(`${key}: ${describe(before[key], after[key], keys)}`);
  }
  const adminChanged = json(before.admin) !== json(after.admin);
  if (adminChanged)
    changes.push('admin: changed (the admin listener keeps its settings until the next start)');
  return {
    changes,
    servicesAdded,
    servicesRemoved,
    servicesChanged,
    poolsWithNewMembers: [...poolsWithNewMembers],
    backendsRemoved,
    monitorsChanged,
    adminChanged,
  };
}
