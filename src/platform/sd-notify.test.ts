import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CommandRunner } from './command-runner.js';
import { silentLogger } from '../log/logger.js';
import { ServiceNotifier } from './sd-notify.js';

function recorder(ok = true): { calls: string[][]; runner: CommandRunner } {
  const calls: string[][] = [];
  const runner: CommandRunner = async (cmd, args) => {
    calls.push([cmd, ...args]);
    return ok
      ? { ok: true, stdout: '', stderr: '' }
      : { ok: false, code: 1, stdout: '', stderr: 'No such file', message: 'No such file' };
  };
  return { calls, runner };
}

test('outside systemd (no NOTIFY_SOCKET) nothing is sent', async () => {
  const { calls, runner } = recorder();
  const n = new ServiceNotifier({ env: {}, runner, logger: silentLogger() });
  assert.equal(n.isEnabled, false);
  await n.ready('vpnlb running');
  await n.stopping('stopping');
  assert.deepEqual(calls, []);
});

test('READY=1 with a one-line status, then STOPPING=1', async () => {
  const { calls, runner } = recorder();
  const n = new ServiceNotifier({
    env: { NOTIFY_SOCKET: '/run/systemd/notify' },
    runner,
    logger: silentLogger(),
  });
  await n.ready('vpnlb running\n(config /etc/vpnlb/vpnlb.yaml)');
  await n.stopping('stopping');
  assert.deepEqual(calls, [
    ['systemd-notify', '--ready', '--status=vpnlb running (config /etc/vpnlb/vpnlb.yaml)'],
    ['systemd-notify', 'STOPPING=1', '--status=stopping'],
  ]);
});

test('the watchdog pings at half of WATCHDOG_USEC, only for the process it names', () => {
  const { runner } = recorder();
  const mk = (env: NodeJS.ProcessEnv) =>
    new ServiceNotifier({
      env: { NOTIFY_SOCKET: '@x', ...env },
      runner,
      logger: silentLogger(),
      pid: 42,
    });
  assert.equal(mk({ WATCHDOG_USEC: '30000000' }).watchdogIntervalMs(), 15_000);
  assert.equal(mk({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }).watchdogIntervalMs(), 15_000);
  assert.equal(
    mk({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }).watchdogIntervalMs(),
    undefined,
  );
  assert.equal(mk({}).watchdogIntervalMs(), undefined);
  assert.equal(
    new ServiceNotifier({
      env: { WATCHDOG_USEC: '30000000' },
      runner,
      logger: silentLogger(),
    }).watchdogIntervalMs(),
    undefined,
  );
});

test('a failing systemd-notify is logged, not thrown', async () => {
  const { calls, runner } = recorder(false);
  const n = new ServiceNotifier({
    env: { NOTIFY_SOCKET: '/run/systemd/notify' },
    runner,
    logger: silentLogger(),
  });
  await n.ready('x');
  assert.equal(calls.length, 1);
});
