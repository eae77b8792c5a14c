/**
 * The immutable snapshot every data plane consumes: per service, the state of each backend and
 * a ready-built balancer over the backends eligible for new clients. The controller builds a
 * new snapshot on every change and publishes it; nothing in a snapshot is ever mutated.
 */
import type { Balancer, Candidate } from '../balancer/balancer.js';
import type { Ikev2Service, SstpService } from '../config/types.js';

/** Administrative state, set by the operator (API / CLI), independent of health. */
export type AdminState = 'enabled' | 'draining' | 'disabled';

/** Health as the service's monitor last judged it (`unknown` before the first verdict). */
export type Health = 'up' | 'down' | 'unknown';

/**
 * The effective state shown to administrators:
 * - `up`: receives new clients;
 * - `draining`: keeps its existing flows, receives no new client;
 * - `disabled`: receives nothing, its flows are removed;
 * - `down`: failed its monitor (or is in error), receives nothing new, its flows are removed.
 */
export type BackendState = 'up' | 'down' | 'draining' | 'disabled';

export interface BackendStatus {
  readonly name: string;
  readonly pool: string;
  readonly address: string;
  readonly family: 4 | 6;
  readonly weight: number;
  readonly maxConnections: number;
  readonly admin: AdminState;
  readonly health: Health;
  /** A configuration or safety error that keeps the backend out (e.g. certificate mismatch). */
  readonly error?: string;
  readonly state: BackendState;
  /** Why the backend is in its state, in words an administrator understands. */
  readonly reason: string;
  /** When `state` last changed (ISO 8601). */
  readonly since: string;
  /**
   * Present while the backend is in slow start (it came back up, or was added, less than
   * `slowStart` ago): the fraction of its weight it has now, and when the ramp ends.
   */
  readonly slowStart?: { readonly share: number; readonly until: string };
}

interface ServiceSnapshotBase {
  readonly name: string;
  readonly backends: readonly BackendStatus[];
  /** Backends eligible for new clients (state `up`, weight > 0), in configuration order. */
  readonly candidates: readonly Candidate[];
  /** The balancer over `candidates`. */
  readonly balancer: Balancer;
  /**
   * True when no backend is up and, per `health.allDown: serve-all`, `candidates` holds every
   * enabled backend without a safety error (Envoy calls this panic mode).
   */
  readonly isAllDownFallback: boolean;
}

export interface Ikev2ServiceSnapshot extends ServiceSnapshotBase {
  readonly kind: 'ikev2';
  readonly service: Ikev2Service;
}

export interface SstpServiceSnapshot extends ServiceSnapshotBase {
  readonly kind: 'sstp';
  readonly service: SstpService;
}

export type ServiceSnapshot = Ikev2ServiceSnapshot | SstpServiceSnapshot;

export interface Snapshot {
  /** Increases by one with every published snapshot. */
  readonly version: number;
  readonly createdAt: string;
  readonly services: readonly ServiceSnapshot[];
}

/**
 * Backends that must lose their flows now (disabled or down): data planes flush them. A down
 * backend that serves again in the all-down fallback keeps its flows.
 */
export function backendsToFlush(s: ServiceSnapshot): BackendStatus[] {
  const serving = new Set(s.candidates.map((c) => c.name));
  return s.backends.filter(
    (b) => (b.state === 'down' || b.state === 'disabled') && !serving.has(b.name),
  );
}
