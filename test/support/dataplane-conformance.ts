/**
 * What every data plane promises (src/control/dataplane-interface.ts), as one suite each data
 * plane runs through an adapter: it starts with a snapshot and lists every backend in its status;
 * `apply` resolves once the snapshot is in effect (what `dataplaneInSync` reports); a draining
 * backend keeps its established flows and gets no new one; a disabled backend gets no new flow;
 * the backend a flow reached counts it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Controller } from '../../src/control/controller.js';
import type { DataPlane } from '../../src/control/dataplane-interface.js';

/** A client flow through the data plane under test. */
export interface ConformanceFlow {
  /** The backend it reached. */
  readonly backend: string;
  /** True while the established flow still reaches its backend. */
  alive(): Promise<boolean>;
}

export interface DataPlaneSubject {
  readonly dataplane: DataPlane;
  readonly controller: Controller;
  readonly serviceName: string;
  readonly backends: readonly string[];
  /** Opens the `n`th client flow (each from its own client) and waits until it is established. */
  openFlow(n: number): Promise<ConformanceFlow>;
  close(): Promise<void>;
}

const NEW_FLOWS = 8;

/** Applies the controller's current snapshot of the service and waits for it. */
async function applyCurrent(s: DataPlaneSubject): Promise<void> {
  const snap = s.controller.service(s.serviceName);
  assert.ok(snap, `the controller has service ${s.serviceName}`);
  await s.dataplane.apply(snap);
}

/** Opens `count` flows, from clients `from`, `from + 1`, ... */
async function openFlows(
  s: DataPlaneSubject,
  from: number,
  count: number,
): Promise<ConformanceFlow[]> {
  const out: ConformanceFlow[] = [];
  for (let i = 0; i < count; i++) out.push(await s.openFlow(from + i));
  return out;
}

export function dataPlaneConformance(name: string, start: () => Promise<DataPlaneSubject>): void {
  describe(`data-plane conformance: ${name}`, () => {
    test('start: the status names the data plane and lists every backend', async () => {
      const s = await start();
      try {
        const st = s.dataplane.status();
        assert.ok(st.dataplane.length > 0);
        assert.deepEqual(Object.keys(st.backends).sort(), [...s.backends].sort());
      } finally {
        await s.close();
      }
    });

    test('apply resolves with the snapshot in effect: a disabled backend gets no new flow', async () => {
      const s = await start();
      try {
        const victim = s.backends[0]!;
        s.controller.setAdminState(victim, 'disabled');
        await applyCurrent(s);
        for (const f of await openFlows(s, 100, NEW_FLOWS))
          assert.notEqual(f.backend, victim, 'no new flow on the disabled backend');
      } finally {
        await s.close();
      }
    });

    test('drain keeps the established flows and sends new ones elsewhere', async () => {
      const s = await start();
      try {
        const flows = await openFlows(s, 200, NEW_FLOWS);
        const held = flows[0]!;
        s.controller.setAdminState(held.backend, 'draining');
        await applyCurrent(s);
        assert.equal(
          await held.alive(),
          true,
          `the established flow on ${held.backend} survives the drain`,
        );
        for (const f of await openFlows(s, 300, NEW_FLOWS))
          assert.notEqual(f.backend, held.backend, 'no new flow on the draining backend');
      } finally {
        await s.close();
      }
    });

    test('counters: the backend a flow reached counts it', async () => {
      const s = await start();
      try {
        const f = await s.openFlow(400);
        const c = s.dataplane.status().backends[f.backend];
        assert.ok(c, `status has ${f.backend}`);
        const counted = Math.max(
          c.connections ?? 0,
          c.flows ?? 0,
          c.packetsIn ?? 0,
          c.bytesIn ?? 0,
        );
        assert.ok(counted > 0, `${f.backend} counts the flow: ${JSON.stringify(c)}`);
      } finally {
        await s.close();
      }
    });
  });
}
