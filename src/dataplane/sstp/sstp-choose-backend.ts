/**
 * Chooses the backend of a new SSTP connection: persistence first (TLS session, then client
 * address where the session cannot be identified), then the service's balancer through the one
 * decision function (`decide`), skipping backends at their connection limit.
 */
import type { Candidate, ConnectionCounts } from '../../balancer/balancer.js';
import { createBalancer, sourceIpKey } from '../../balancer/index.js';
import { decide } from '../../control/decide.js';
import type { SstpServiceSnapshot } from '../../control/snapshot.js';
import type { ClientHelloInfo } from '../../protocol/tls/hello.js';
import type { PersistenceTable } from './sstp-persistence.js';

/** How the backend was chosen (a metric label and a log field). */
export type ChoiceVia = 'tls-session' | 'source-ip' | 'balancer';

export interface BackendChoice {
  readonly backend: Candidate | undefined;
  readonly via: ChoiceVia;
  /** Set when a persistence entry existed but its backend could not take the client. */
  readonly persistenceMiss?: 'ineligible' | 'full';
}

export interface ChooseInput {
  readonly snapshot: SstpServiceSnapshot;
  readonly clientAddress: string;
  /** The ClientHello (passthrough only). */
  readonly hello?: ClientHelloInfo;
  readonly sessions: PersistenceTable;
  readonly clients: PersistenceTable;
  readonly connections: ConnectionCounts;
  /** Backends to avoid (a connect attempt to them just failed). */
  readonly exclude?: ReadonlySet<string>;
}

/** True when a ClientHello tries to resume a session the balancer cannot attribute by id. */
export function isOpaqueResumption(hello: ClientHelloInfo): boolean {
  return hello.hasPreSharedKey || hello.sessionTicketLength > 0;
}

/** Whether `name` can take one more connection now. */
function hasRoom(
  snapshot: SstpServiceSnapshot,
  name: string,
  connections: ConnectionCounts,
): boolean {
  const b = snapshot.backends.find((x) => x.name === name);
  return b !== undefined && (b.maxConnections === 0 || connections.get(name) < b.maxConnections);
}

export function chooseBackend(input: ChooseInput): BackendChoice {
  const { snapshot, hello, connections } = input;
  const exclude = input.exclude ?? new Set<string>();
  const eligible = (name: string | undefined): Candidate | undefined =>
    name === undefined || exclude.has(name)
      ? undefined
      : snapshot.candidates.find((c) => c.name === name);
  const persistence = snapshot.service.persistence;
  let miss: BackendChoice['persistenceMiss'];

  const tryEntry = (name: string | undefined, via: ChoiceVia): BackendChoice | undefined => {
    if (name === undefined) return undefined;
    const c = eligible(name);
    if (!c) {
      miss = 'ineligible';
      return undefined;
    }
    if (!hasRoom(snapshot, c.name, connections)) {
      miss = 'full';
      return undefined;
    }
    return { backend: c, via };
  };

  if (persistence === 'tls-session' && hello) {
    // A TLS ≤ 1.2 resumption: the id is in the table only if a server issued it through us.
    if (hello.sessionId.length > 0) {
      const hit = tryEntry(
        input.sessions.get(Buffer.from(hello.sessionId).toString('hex')),
        'tls-session',
      );
      if (hit) return hit;
    }
    // Tickets / PSK: opaque to us; the client's address is the best remaining hint.
    if (isOpaqueResumption(hello)) {
      const hit = tryEntry(input.clients.get(input.clientAddress), 'source-ip');
      if (hit) return hit;
    }
  } else if (persistence === 'source-ip') {
    const hit = tryEntry(input.clients.get(input.clientAddress), 'source-ip');
    if (hit) return hit;
  }

  // The balancer (least connections by default) over the candidates, through `decide`.
  let backend = decide(snapshot, { address: input.clientAddress }).backend;
  if (!backend || exclude.has(backend.name) || !hasRoom(snapshot, backend.name, connections)) {
    // The pick is full or excluded: decide again among the backends that can take the client.
    const open = snapshot.candidates.filter(
      (c) => !exclude.has(c.name) && hasRoom(snapshot, c.name, connections),
    );
    backend =
      open.length === 0
        ? undefined
        : createBalancer(snapshot.service.method, { candidates: open, seed: 0, connections }).pick(
            sourceIpKey(input.clientAddress),
          );
  }
  return { backend, via: 'balancer', ...(miss ? { persistenceMiss: miss } : {}) };
}
