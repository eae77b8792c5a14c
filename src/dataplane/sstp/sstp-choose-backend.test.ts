import assert from 'node:assert/strict';
import { it } from 'node:test';
import { loadConfigText } from '../../config/load-config.js';
import { Controller } from '../../control/controller.js';
import type { SstpServiceSnapshot } from '../../control/snapshot.js';
import { parseClientHello } from '../../protocol/tls/hello.js';
import * as fx from '../../../test/support/tls-fixtures.js';
import { chooseBackend } from './sstp-choose-backend.js';
import { PersistenceTable } from './sstp-persistence.js';

const hello = (record: Uint8Array) => {
  const r = parseClientHello(record.subarray(9));
  assert.equal(r.kind, 'ok');
  return r.value;
};

function setup() {
  const config = loadConfigText(
    JSON.stringify({
      pools: {
        farm: {
          backends: [
            { name: 'a', address: '192.0.2.1' },
            { name: 'b', address: '192.0.2.2' },
            { name: 'c', address: '192.0.2.3' },
          ],
        },
      },
      services: { sstp: [{ name: 's', virtualIp: '127.0.0.1', pool: 'farm' }] },
    }),
  );
  const controller = new Controller(config);
  return {
    controller,
    snap: () => controller.service('s') as SstpServiceSnapshot,
    sessions: new PersistenceTable({ timeout: 60_000 }),
    clients: new PersistenceTable({ timeout: 60_000 }),
    connections: controller.connections('s'),
  };
}

it('TLS 1.2 session id known → its server; TLS 1.3 PSK → the client address fallback; fresh TLS 1.3 → the balancer', () => {
  const t = setup();
  const resume = hello(fx.NODE_TLS12_RESUME_CLIENT_HELLO);
  t.sessions.set(Buffer.from(resume.sessionId).toString('hex'), 'c');
  t.clients.set('198.51.100.7', 'b');
  const base = {
    sessions: t.sessions,
    clients: t.clients,
    connections: t.connections,
    clientAddress: '198.51.100.7',
  };
  assert.deepEqual(
    chooseBackend({ ...base, snapshot: t.snap(), hello: resume }).backend?.name,
    'c',
  );
  const psk = chooseBackend({
    ...base,
    snapshot: t.snap(),
    hello: hello(fx.OPENSSL_TLS13_PSK_CLIENT_HELLO),
  });
  assert.equal(psk.via, 'source-ip');
  assert.equal(psk.backend?.name, 'b');
  const fresh = chooseBackend({
    ...base,
    snapshot: t.snap(),
    hello: hello(fx.NODE_TLS13_CLIENT_HELLO),
  });
  assert.equal(fresh.via, 'balancer');
});

it('a persisted server that is draining or full is skipped, and the miss is reported', () => {
  const t = setup();
  const resume = hello(fx.NODE_TLS12_RESUME_CLIENT_HELLO);
  t.sessions.set(Buffer.from(resume.sessionId).toString('hex'), 'c');
  t.controller.setAdminState('c', 'draining');
  const r = chooseBackend({
    snapshot: t.snap(),
    hello: resume,
    sessions: t.sessions,
    clients: t.clients,
    connections: t.connections,
    clientAddress: '198.51.100.7',
  });
  assert.equal(r.via, 'balancer');
  assert.equal(r.persistenceMiss, 'ineligible');
  assert.notEqual(r.backend?.name, 'c');
});

it('persistence entries expire and the table stays bounded', () => {
  let now = 0;
  const table = new PersistenceTable({ timeout: 100, maxEntries: 2, now: () => now });
  table.set('x', 'a');
  now = 150;
  assert.equal(table.get('x'), undefined);
  table.set('1', 'a');
  table.set('2', 'b');
  table.set('3', 'c');
  assert.equal(table.size, 2);
  assert.equal(table.get('1'), undefined);
  assert.equal(table.get('3'), 'c');
});
