import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkConfigText, loadConfigText } from '../../src/config/load-config.js';
import { haproxyConfig } from './haproxy.js';
import { nginxConfig } from './nginx.js';
import { TLS_PROFILE } from './tls-profile.js';
import { vpnlbConfig } from './vpnlb.js';

const backends = ['198.18.2.2', '198.18.2.3'];

test('nginx udp config uses consistent source hashing on the VIP', () => {
  const c = nginxConfig(
    { kind: 'udp', vip: '198.19.0.1', port: 4500, backends, backendPort: 4500 },
    '/tmp/x',
  );
  assert.match(c, /hash \$remote_addr consistent;/);
  assert.match(c, /listen 198\.19\.0\.1:4500 udp;/);
  assert.match(c, /server 198\.18\.2\.3:4500;/);
  assert.match(c, /worker_processes 1;/);
});

test('tls profile: AES-128-GCM first, X25519 then P-256, TLS 1.2 and 1.3', () => {
  assert.match(TLS_PROFILE.tls13Suites, /^TLS_AES_128_GCM_SHA256:/);
  assert.match(
    TLS_PROFILE.tls12Ciphers,
    /^ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:/,
  );
  assert.doesNotMatch(TLS_PROFILE.tls12Ciphers, /TLS_/);
  assert.match(TLS_PROFILE.groups, /^X25519:P-256/);
});

test('nginx tls config: the shared profile, tickets at the default (on)', () => {
  const c = nginxConfig(
    {
      kind: 'tls',
      vip: '198.19.0.1',
      port: 443,
      backends,
      backendPort: 80,
      cert: '/c.crt',
      key: '/c.key',
    },
    '/tmp/x',
  );
  assert.match(c, /listen 198\.19\.0\.1:443 ssl/);
  assert.match(c, /ssl_protocols TLSv1\.2 TLSv1\.3;/);
  assert.match(c, /ssl_prefer_server_ciphers on;/);
  assert.ok(c.includes(`ssl_ciphers ${TLS_PROFILE.tls12Ciphers};`));
  assert.ok(c.includes(`ssl_conf_command Ciphersuites ${TLS_PROFILE.tls13Suites};`));
  assert.ok(c.includes(`ssl_ecdh_curve ${TLS_PROFILE.groups};`));
  assert.doesNotMatch(c, /ssl_session_tickets off|ssl_session_cache off/);
  assert.match(c, /server 198\.18\.2\.2:80;/);
});

test('haproxy config: mode tcp, ssl only with a pem', () => {
  assert.doesNotMatch(
    haproxyConfig({ vip: '198.19.0.1', port: 443, backends, backendPort: 443 }),
    / ssl /,
  );
  const c = haproxyConfig({
    vip: '198.19.0.1',
    port: 443,
    backends,
    backendPort: 80,
    pem: '/p.pem',
  });
  assert.match(c, /mode tcp/);
  assert.match(
    c,
    /bind 198\.19\.0\.1:443 ssl crt \/p\.pem ssl-min-ver TLSv1\.2 ssl-max-ver TLSv1\.3 /,
  );
  assert.ok(c.includes(`ciphersuites ${TLS_PROFILE.tls13Suites} curves ${TLS_PROFILE.groups}`));
  assert.doesNotMatch(c, /no-tls-tickets|cachesize 0/);
  assert.match(c, /server s2 198\.18\.2\.3:80/);
});

test('vpnlb configs are valid vpnlb configuration files', () => {
  const k = loadConfigText(
    vpnlbConfig({
      kind: 'ikev2',
      dataplane: 'kernel',
      vip: '198.19.0.1',
      backends,
      table: 'bench100',
    }),
  );
  assert.equal(k.services.ikev2[0]?.dataplane, 'kernel');
  assert.equal(k.services.ikev2[0]?.nat, 'transparent');
  assert.equal(k.services.ikev2[0]?.affinity, 'ike-spi');
  const u = loadConfigText(
    vpnlbConfig({ kind: 'ikev2', dataplane: 'userspace', vip: '198.19.0.1', backends, table: 'x' }),
  );
  assert.equal(u.services.ikev2[0]?.nat, 'full');
  const s = loadConfigText(
    vpnlbConfig({
      kind: 'sstp',
      mode: 'offload',
      vip: '198.19.0.1',
      port: 443,
      backends,
      backendPort: 80,
      cert: '/c.crt',
      key: '/c.key',
    }),
  );
  assert.equal(s.services.sstp[0]?.mode, 'offload');
  assert.equal(s.services.sstp[0]?.backendPort, 80);
  const ks = checkConfigText(
    vpnlbConfig({
      kind: 'sstp',
      mode: 'passthrough',
      dataplane: 'kernel',
      vip: '198.19.0.1',
      port: 443,
      backends,
      backendPort: 443,
    }),
  );
  assert.deepEqual(
    ks.issues.filter((i) => i.severity === 'error'),
    [],
  );
  const k2 = loadConfigText(
    vpnlbConfig({
      kind: 'sstp',
      mode: 'passthrough',
      dataplane: 'kernel',
      vip: '198.19.0.1',
      port: 443,
      backends,
      backendPort: 443,
    }),
  );
  assert.equal(k2.services.sstp[0]?.dataplane, 'kernel');
  assert.equal(k2.services.sstp[0]?.persistence, 'none');
  assert.equal(k2.services.sstp[0]?.method, 'maglev');
});
