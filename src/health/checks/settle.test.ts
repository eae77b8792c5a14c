/**
 * settleProbe's deadline: from the call by default, from `ready()` for probes that start a
 * child process (the process's start is the balancer's delay, not the target's silence).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settleProbe } from './settle.js';

const never = new AbortController().signal;

test('the deadline runs from the call: a probe that never finishes times out', async () => {
  const r = await settleProbe(
    never,
    50,
    () => undefined,
    () => 'silent',
  );
  assert.deepEqual([r.ok, r.detail], [false, 'silent']);
});

test("clockStartsAt 'ready': no deadline before ready(), the full timeout after it", async () => {
  let ready: (() => void) | undefined;
  let finish: ((ok: boolean, detail: string) => void) | undefined;
  const p = settleProbe(
    never,
    50,
    (f, r) => {
      finish = f;
      ready = r;
      return undefined;
    },
    () => 'silent',
    { clockStartsAt: 'ready' },
  );
  // Three timeouts pass before the (slow) start is ready: the probe is still pending.
  await new Promise((r) => setTimeout(r, 150));
  let settled = false;
  void p.then(() => (settled = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(settled, false);
  ready!();
  ready!(); // a second call does not re-arm
  const r = await p;
  assert.deepEqual([r.ok, r.detail], [false, 'silent']);
  finish!(true, 'late'); // ignored after the result
});

test("clockStartsAt 'ready': an answer before the deadline wins, and an abort still ends a probe that never got ready", async () => {
  const ok = await settleProbe(
    never,
    1000,
    (finish, ready) => {
      ready();
      setTimeout(() => finish(true, 'answered'), 10);
      return undefined;
    },
    undefined,
    { clockStartsAt: 'ready' },
  );
  assert.deepEqual([ok.ok, ok.detail], [true, 'answered']);
  const ac = new AbortController();
  const p = settleProbe(ac.signal, 50, () => undefined, undefined, { clockStartsAt: 'ready' });
  setTimeout(() => ac.abort(), 20);
  const aborted = await p;
  assert.deepEqual([aborted.ok, aborted.detail], [false, 'probe aborted']);
});
