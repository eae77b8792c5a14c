import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../config/load-config.js';
import { VpnlbError } from '../errors.js';
import { Controller, type Transition } from './controller.js';
import { backendsToFlush, type Snapshot } from './snapshot.js';

function config(allDown: 'serve-all' | 'refuse' = 'serve-all', monitored = true): string {
  return `
health: { allDown: ${allDown} }
monitors:
  ike: { type: ikev2 }
pools:
  farm:
    backends:
      - { name: a, address: 198.18.0.10 }
      - { name: b, address: 198.18.0.11 }
      - { name: c, address: 198.18.0.12, enabled: false }
  spare:
    backends:
      - { name: a, address: 198.18.0.20 }
services:
  ikev2:
    - { name: vpn, virtualIp: 198.18.0.1, pool: farm, dataplane: userspace${monitored ? ', monitor: ike' : ''} }
    - { name: vpn2, virtualIp: 198.18.0.2, pool: spare, dataplane: userspace }
`;
}

function setup(allDown: 'serve-all' | 'refuse' = 'serve-all', monitored = true) {
  let clock = Date.parse('2024-01-01T00:00:00Z');
  const controller = new Controller(loadConfigText(config(allDown, monitored)), {
    now: () => new Date(clock),
  });
  const transitions: Transition[] = [];
  const snapshots: Snapshot[] = [];
  controller.on('transition', (t) => transitions.push(t));
  controller.on('snapshot', (s) => snapshots.push(s));
  const svc = () => controller.service('vpn')!;
  const b = (name: string) => svc().backends.find((x) => x.name === name)!;
  const candidates = () => svc().candidates.map((c) => c.name);
  const tick = (ms: number) => (clock += ms);
  return { controller, transitions, snapshots, svc, b, candidates, tick };
}

const key = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

describe('Controller', () => {
  it('starts monitored backends up (health unknown), unmonitored up, not-enabled ones disabled', () => {
    const { controller, b, candidates } = setup();
    assert.equal(b('a').state, 'up');
    assert.equal(b('a').health, 'unknown');
    assert.equal(b('c').state, 'disabled');
    assert.equal(b('c').admin, 'disabled');
    assert.deepEqual(candidates(), ['a', 'b']);
    const other = controller.service('vpn2')!.backends[0]!;
    assert.equal(other.health, 'up');
    assert.equal(other.reason, 'no monitor configured');
  });

  it('a down verdict removes the backend from new decisions and marks its flows for flushing', () => {
    const { controller, transitions, snapshots, svc, b, candidates, tick } = setup();
    const v0 = controller.snapshot().version;
    tick(1000);
    controller.setHealth(
      'vpn',
      'a',
      'down',
      'ikev2 probe: no answer within 2000 ms (3 consecutive failures)',
    );
    assert.equal(b('a').state, 'down');
    assert.equal(b('a').reason, 'ikev2 probe: no answer within 2000 ms (3 consecutive failures)');
    assert.equal(b('a').since, '2024-01-01T00:00:01.000Z');
    assert.deepEqual(candidates(), ['b']);
    assert.deepEqual(
      backendsToFlush(svc()).map((x) => x.name),
      ['a', 'c'],
    );
    assert.equal(svc().balancer.pick(key)?.name, 'b');
    assert.deepEqual(
      transitions.map((t) => [t.backend, t.from, t.to]),
      [['a', 'up', 'down']],
    );
    assert.equal(snapshots.length, 1);
    assert.equal(controller.snapshot().version, v0 + 1);
    // Coming back.
    controller.setHealth('vpn', 'a', 'up', 'ikev2 probe: answered (2 consecutive successes)');
    assert.equal(b('a').state, 'up');
    assert.deepEqual(candidates(), ['a', 'b']);
    assert.deepEqual(
      transitions.map((t) => t.to),
      ['down', 'up'],
    );
  });

  it('ignores a repeated identical verdict (no snapshot), ignores unknown names', () => {
    const { controller, snapshots } = setup();
    controller.setHealth('vpn', 'a', 'down', 'r');
    controller.setHealth('vpn', 'a', 'down', 'r');
    controller.setHealth('vpn', 'zz', 'down', 'r');
    controller.setHealth('nope', 'a', 'down', 'r');
    assert.equal(snapshots.length, 1);
  });

  it('drain: no new clients, flows kept; enable returns the backend', () => {
    const { controller, svc, b, candidates, transitions } = setup();
    const changed = controller.setAdminState('b', 'draining');
    assert.deepEqual(
      changed.map((x) => `${x.pool}/${x.name}:${x.state}`),
      ['farm/b:draining'],
    );
    assert.equal(b('b').state, 'draining');
    assert.match(b('b').reason, /no new clients/);
    assert.deepEqual(candidates(), ['a']);
    assert.ok(
      !backendsToFlush(svc()).some((x) => x.name === 'b'),
      'a draining backend keeps its flows',
    );
    controller.setAdminState('b', 'enabled');
    assert.equal(b('b').state, 'up');
    assert.deepEqual(
      transitions.map((t) => `${t.from}->${t.to}`),
      ['up->draining', 'draining->up'],
    );
  });

  it('disable wins over health; a down draining backend is down, and draining again when healthy', () => {
    const { controller, b, svc } = setup();
    controller.setAdminState('farm/a', 'disabled');
    assert.equal(b('a').state, 'disabled');
    controller.setHealth('vpn', 'a', 'down', 'dead');
    assert.equal(b('a').state, 'disabled');
    assert.ok(backendsToFlush(svc()).some((x) => x.name === 'a'));
    controller.setAdminState('farm/a', 'draining');
    assert.equal(b('a').state, 'down', 'a dead server is down even while draining');
    controller.setHealth('vpn', 'a', 'up', 'alive');
    assert.equal(b('a').state, 'draining');
    // Enabling a disabled server whose monitor says down does not send it clients.
    controller.setHealth('vpn', 'b', 'down', 'dead');
    controller.setAdminState('farm/c', 'enabled');
    assert.equal(b('c').state, 'up', 'c has no verdict yet (unknown counts as up)');
  });

  it('admin actions: unknown names are refused with VPNLB_UNKNOWN_BACKEND', () => {
    const { controller } = setup();
    for (const ref of ['nope', 'farm/nope', 'nope/a']) {
      assert.throws(
        () => controller.setAdminState(ref, 'draining'),
        (e: unknown) => e instanceof VpnlbError && e.code === 'VPNLB_UNKNOWN_BACKEND',
      );
    }
  });

  it('refuses an ambiguous bare name', () => {
    // "a" exists in the pools farm and spare.
    const controller = new Controller(loadConfigText(config()));
    assert.throws(() => controller.setAdminState('a', 'disabled'), /several pools/);
    const changed = controller.setAdminState('spare/a', 'disabled');
    assert.deepEqual(
      changed.map((x) => `${x.pool}/${x.name}`),
      ['spare/a'],
    );
    assert.equal(controller.service('vpn')!.backends.find((x) => x.name === 'a')!.state, 'up');
  });

  it('a data-plane error keeps a backend down until cleared', () => {
    const { controller, b, candidates } = setup();
    controller.setError('vpn', 'b', 'certificate differs from the front one');
    assert.equal(b('b').state, 'down');
    assert.equal(b('b').reason, 'certificate differs from the front one');
    assert.deepEqual(candidates(), ['a']);
    controller.setError('vpn', 'b', undefined);
    assert.equal(b('b').state, 'up');
  });

  describe('health.allDown', () => {
    it('serve-all: every backend down → new clients go to every enabled backend, flagged', () => {
      const { controller, svc, candidates } = setup('serve-all');
      controller.setHealth('vpn', 'a', 'down', 'dead');
      assert.deepEqual(candidates(), ['b']);
      assert.equal(svc().isAllDownFallback, false);
      controller.setHealth('vpn', 'b', 'down', 'dead');
      assert.deepEqual(
        candidates(),
        ['a', 'b'],
        'every enabled backend, not only the last survivor',
      );
      assert.equal(svc().isAllDownFallback, true);
      assert.ok(['a', 'b'].includes(svc().balancer.pick(key)?.name ?? ''));
      assert.ok(svc().backends.every((x) => x.state !== 'up'));
      assert.deepEqual(
        backendsToFlush(svc()).map((x) => x.name),
        ['c'],
        'serving backends keep their flows',
      );
      controller.setHealth('vpn', 'a', 'up', 'alive');
      assert.deepEqual(candidates(), ['a']);
      assert.equal(svc().isAllDownFallback, false);
      assert.deepEqual(
        backendsToFlush(svc())
          .map((x) => x.name)
          .sort(),
        ['b', 'c'],
      );
    });

    it('serve-all never brings back a disabled, draining or certificate-mismatched backend', () => {
      const { controller, svc, candidates } = setup('serve-all');
      controller.setHealth('vpn', 'a', 'down', 'dead');
      controller.setHealth('vpn', 'b', 'down', 'dead');
      assert.deepEqual(candidates(), ['a', 'b']);
      controller.setAdminState('farm/b', 'draining');
      assert.deepEqual(candidates(), ['a']);
      controller.setError('vpn', 'a', 'certificate differs');
      assert.deepEqual(candidates(), [], 'nobody is left');
      assert.equal(svc().isAllDownFallback, false);
      assert.equal(svc().balancer.pick(key), undefined);
      controller.setAdminState('farm/b', 'enabled');
      assert.deepEqual(candidates(), ['b']);
      controller.setAdminState('farm/b', 'disabled');
      assert.deepEqual(candidates(), []);
    });

    it('refuse: every backend down → no candidate, the balancer picks nothing', () => {
      const { controller, svc, candidates } = setup('refuse');
      controller.setHealth('vpn', 'a', 'down', 'dead');
      controller.setHealth('vpn', 'b', 'down', 'dead');
      assert.deepEqual(candidates(), []);
      assert.equal(svc().isAllDownFallback, false);
      assert.equal(svc().balancer.pick(key), undefined);
      controller.setHealth('vpn', 'b', 'up', 'alive');
      assert.deepEqual(candidates(), ['b']);
    });
  });

  it('publishes immutable snapshots with increasing versions', () => {
    const { controller, snapshots } = setup();
    controller.setHealth('vpn', 'a', 'down', 'x');
    controller.setAdminState('farm/b', 'draining');
    assert.deepEqual(
      snapshots.map((s) => s.version),
      [2, 3],
    );
    assert.ok(Object.isFrozen(snapshots[0]));
    assert.equal(
      snapshots[0]!.services.find((s) => s.name === 'vpn')!.backends.find((x) => x.name === 'b')!
        .state,
      'up',
      'an old snapshot is not mutated',
    );
  });
});
