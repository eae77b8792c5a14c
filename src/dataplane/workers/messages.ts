/**
 * What the main process and the worker processes (SSTP proxy, IKEv2 relay) say to each other
 * over the cluster IPC channel (structured clone: `serialization: 'advanced'`). One message type
 * per line; every message carries `vpnlb` so that messages of other cluster users (none today)
 * are ignored.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import type { Config } from '../../config/types.js';
import type { AdminState, Health } from '../../control/snapshot.js';
import type { DataPlaneStatus } from '../../control/dataplane-interface.js';
import type { PersistenceTableName } from '../sstp/sstp-proxy.js';

/** One backend's state as the main process's controller holds it (the worker mirrors it). */
export interface BackendMirror {
  readonly pool: string;
  readonly name: string;
  readonly admin: AdminState;
  readonly health: Health;
  readonly healthReason: string;
  readonly error?: string;
}

/**
 * [table, key, backend]: an SSTP persistence entry (TLS session id or client address), or an
 * IKEv2 relay's IKE SA session (`ike-sa`, key `spi:<initiator SPI>`).
 */
export type PersistenceEntry = readonly [PersistenceTableName | 'ike-sa', string, string];

export type ToWorker =
  | {
      readonly vpnlb: 'init';
      /** What the worker runs: the SSTP proxy or the IKEv2 relay (which then waits for its sockets). */
      readonly kind: 'sstp' | 'ikev2';
      /** SSTP: the port every worker listens on once one has (the first worker's, when the service's is 0). */
      readonly port?: number;
      readonly config: Config;
      readonly service: string;
      readonly backends: readonly BackendMirror[];
      readonly persistence: readonly PersistenceEntry[];
      /** TLS session-ticket keys shared by every worker (offload, reencrypt: resumption in any worker). */
      readonly ticketKeys: Buffer;
    }
  /** IKEv2: the worker's listening socket of one port, as the message's handle (after `init`). */
  | { readonly vpnlb: 'socket'; readonly port: 'ike' | 'natT' }
  | { readonly vpnlb: 'backends'; readonly backends: readonly BackendMirror[] }
  | { readonly vpnlb: 'learn'; readonly entries: readonly PersistenceEntry[] }
  /** The other workers' open connections per backend. */
  | { readonly vpnlb: 'remote-counts'; readonly counts: ReadonlyMap<string, number> }
  | { readonly vpnlb: 'metrics'; readonly id: number }
  | { readonly vpnlb: 'stop' };

export type FromWorker =
  /** The worker's module is loaded and listens for `init` (cluster's `online` comes earlier). */
  | { readonly vpnlb: 'hello' }
  | { readonly vpnlb: 'ready'; readonly port: number }
  | { readonly vpnlb: 'failed'; readonly error: string; readonly code?: string }
  | { readonly vpnlb: 'learn'; readonly entries: readonly PersistenceEntry[] }
  /** This worker's own open connections per backend (sent when they change). */
  | { readonly vpnlb: 'counts'; readonly counts: ReadonlyMap<string, number> }
  /** `served`: SSTP connections accepted, or IKEv2 flows set up, since the worker started. */
  | { readonly vpnlb: 'status'; readonly status: DataPlaneStatus; readonly served: number }
  | {
      readonly vpnlb: 'metrics';
      readonly id: number;
      readonly metrics: MetricObjectWithValues<MetricValue<string>>[];
    }
  | { readonly vpnlb: 'set-error'; readonly backend: string; readonly error: string | undefined }
  | { readonly vpnlb: 'stopped' };

export function isFromWorker(m: unknown): m is FromWorker {
  return (
    typeof m === 'object' && m !== null && typeof (m as { vpnlb?: unknown }).vpnlb === 'string'
  );
}

export const isToWorker = isFromWorker as (m: unknown) => m is ToWorker;
