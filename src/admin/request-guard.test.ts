import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { isTrustworthyOrigin, setSecurityHeaders } from './request-guard.js';

test('isTrustworthyOrigin: HTTPS, or a loopback host over HTTP', () => {
  for (const host of [
    '127.0.0.1:8443',
    '127.3.4.5',
    '[::1]:9000',
    '[0:0:0:0:0:0:0:1]',
    'localhost:80',
    'a.localhost',
  ])
    assert.equal(isTrustworthyOrigin(host, false), true, host);
  for (const host of [
    '198.18.1.2:8088',
    '[2001:db8::1]:8088',
    'vpnlb.example',
    '128.0.0.1',
    undefined,
    '[::1',
  ])
    assert.equal(isTrustworthyOrigin(host, false), false, String(host));
  assert.equal(isTrustworthyOrigin('198.18.1.2:8443', true), true);
  assert.equal(isTrustworthyOrigin(undefined, true), true);
});

function headersOf(isTls: boolean, host: string | undefined): Record<string, string> {
  const h: Record<string, string> = {};
  setSecurityHeaders(
    { setHeader: (k: string, v: string) => void (h[k] = v) } as unknown as ServerResponse,
    isTls,
    host,
  );
  return h;
}

test('setSecurityHeaders: the opener policy only where a browser honours it, HSTS only over HTTPS', () => {
  const lan = headersOf(false, '198.18.1.2:8088');
  assert.equal(lan['cross-origin-opener-policy'], undefined);
  assert.equal(lan['strict-transport-security'], undefined);
  assert.equal(lan['x-frame-options'], 'DENY');
  assert.match(lan['content-security-policy'] ?? '', /frame-ancestors 'none'/);
  assert.equal(headersOf(false, '127.0.0.1:8088')['cross-origin-opener-policy'], 'same-origin');
  const tls = headersOf(true, '198.18.1.2:8443');
  assert.equal(tls['cross-origin-opener-policy'], 'same-origin');
  assert.match(tls['strict-transport-security'] ?? '', /max-age=/);
});
