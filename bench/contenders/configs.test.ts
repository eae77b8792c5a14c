import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfigText } from '../../src/config/load-config.js';
import { haproxyConfig } from './haproxy.js';
import { nginxConfig } from './nginx.js';
import { vpnlbConfig } from './vpnlb.js';

const backends = ['198.18.2.2', '198.18.2.3'];

test('nginx udp config uses consistent source hashing on the VIP', () => {
  const c = nginxConfig({ kind: 'udp', vip: '198.19.0.1', port: 4500, backends, backendPort: 4500 }, '/tmp/x');
  assert.match(c, /hash \$remote_addr consistent;/);
  assert.match(c, /listen 198\.19\.0\.1:4500 udp;/);
  assert.match(c, /server 198\.18\.2\.3:4500;/);
  assert.match(c, /worker_processes 1;/);
});

test('nginx tls config terminates with the given certificate, no session reuse', () => {
  const c = nginxConfig({ kind: 'tls', vip: '198.19.0.1', port: 443, backends, backendPort: 80, cert: '/c.crt', key: '/c.key' }, '/tmp/x');
  assert.match(c, /listen 198\.19\.0\.1:443 ssl/);
  assert.match(c, /ssl_session_cache off;/);
  assert.match(c, /server 198\.18\.2\.2:80;/);
});

test('haproxy config: mode tcp, ssl only with a pem', () => {
  assert.doesNotMatch(haproxyConfig({ vip: '198.19.0.1', port: 443, backends, backendPort: 443 }), / ssl /);
  const c = haproxyConfig({ vip: '198.19.0.1', port: 443, backends, backendPort: 80, pem: '/p.pem' });
  assert.match(c, /mode tcp/);
  assert.match(c, /bind 198\.19\.0\.1:443 ssl crt \/p\.pem/);
  assert.match(c, /server s2 198\.18\.2\.3:80/);
});

test('vpnlb configs are valid vpnlb configuration files', () => {
  const k = loadConfigText(vpnlbConfig({ kind: 'ikev2', dataplane: 'kernel', vip: '198.19.0.1', backends, table: 'bench100' }));
  assert.equal(k.services.ikev2[0]?.dataplane, 'kernel');
  assert.equal(k.services.ikev2[0]?.nat, 'transparent');
  assert.equal(k.services.ikev2[0]?.affinity, 'ike-spi');
  const u = loadConfigText(vpnlbConfig({ kind: 'ikev2', dataplane: 'userspace', vip: '198.19.0.1', backends, table: 'x' }));
  assert.equal(u.services.ikev2[0]?.nat, 'full');
  const s = loadConfigText(vpnlbConfig({ kind: 'sstp', mode: 'offload', vip: '198.19.0.1', port: 443, backends, backendPort: 80, cert: '/c.crt', key: '/c.key' }));
  assert.equal(s.services.sstp[0]?.mode, 'offload');
  assert.equal(s.services.sstp[0]?.backendPort, 80);
});
