import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { loadConfigText } from '../config/load-config.js';
import { Runtime } from '../runtime/runtime.js';
import { decide } from '../control/decide.js';
import type { DataPlane } from '../control/dataplane-interface.js';
import type { ServiceSnapshot } from '../control/snapshot.js';
import { createLogger } from '../log/logger.js';
import { AdminCredentials } from './credentials.js';

const OPERATOR = 'operator-token-0123456789';
const READ_ONLY = 'read-only-token-0123456789';

const CONFIG = `
pools:
  rras:
    backends:
      - { name: rras1, address: 198.18.1.10 }
      - { name: rras2, address: 198.18.1.11 }
      - { name: rras3, address: 198.18.1.12 }
services:
  ikev2:
    - { name: ike, virtualIp: 198.19.0.1, pool: rras, affinity: ike-spi }
  sstp:
    - { name: sstp, virtualIp: 198.19.0.1, pool: rras }
`;

/** A data plane that records what it is given (the admin API sits above the data planes). */
class RecordingDataPlane implements DataPlane {
  readonly applied: ServiceSnapshot[] = [];
  constructor(readonly serviceName: string) {}
  async start(s: ServiceSnapshot) {
    this.applied.push(s);
  }
  async apply(s: ServiceSnapshot) {
    this.applied.push(s);
  }
  async stop() {}
  status() {
    return {
      dataplane: 'recording',
      listeners: ['test'],
      backends: { rras1: { packetsIn: 7 } },
      warnings: ['a warning'],
    };
  }
}

interface Harness {
  readonly base: string;
  readonly port: number;
  readonly rt: Runtime;
  readonly planes: Map<string, RecordingDataPlane>;
  /** Log lines (JSON) written so far. */
  logs(): { msg: string; reason?: string }[];
  state(backend: string): string | undefined;
}

async function withRuntime(fn: (h: Harness) => Promise<void>, adminYaml = '', socket?: string) {
  const planes = new Map<string, RecordingDataPlane>();
  const stream = new PassThrough();
  let logText = '';
  stream.on('data', (d: Buffer) => (logText += d.toString()));
  const rt = new Runtime({
    config: loadConfigText(`${adminYaml}\n${CONFIG}`),
    logger: createLogger({ level: 'info', destination: stream }),
    admin: { host: '127.0.0.1', port: 0, ...(socket ? { socket } : {}) },
    adminCredentials: new AdminCredentials({ operator: OPERATOR, readOnly: READ_ONLY }),
    createDataPlane: async (s) => {
      const dp = new RecordingDataPlane(s.name);
      planes.set(s.name, dp);
      return dp;
    },
  });
  await rt.start();
  try {
    await fn({
      base: `http://127.0.0.1:${rt.adminAddress!.port}`,
      port: rt.adminAddress!.port,
      rt,
      planes,
      logs: () =>
        logText
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { msg: string; reason?: string }),
      state: (b) => rt.controller.snapshot().services[0]!.backends.find((x) => x.name === b)?.state,
    });
  } finally {
    await rt.stop();
  }
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = Record<string, unknown>>(): T;
}

/** A request with full control over the headers (Host, Origin, Cookie...), as any client can send. */
function raw(
  port: number | { socketPath: string },
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const target = typeof port === 'number' ? { host: '127.0.0.1', port } : port;
    const req = request(
      {
        ...target,
        method,
        path,
        headers: { host: `127.0.0.1:${typeof port === 'number' ? port : 0}`, ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            json: <T>() => JSON.parse(text) as T,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Logs in like the dashboard does; returns the cookie header value and the CSRF token. */
async function login(
  port: number,
  token = OPERATOR,
): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const res = await raw(
    port,
    'POST',
    '/api/v1/login',
    { 'content-type': 'application/json', origin: `http://127.0.0.1:${port}` },
    JSON.stringify({ token }),
  );
  assert.equal(res.status, 200, res.body);
  const setCookie = String(res.headers['set-cookie']);
  return { cookie: setCookie.split(';')[0]!, csrf: res.json<{ csrf: string }>().csrf, setCookie };
}

test('GET /api/v1/status: services, backends with state, counters and warnings', async () => {
  await withRuntime(async ({ base }) => {
    const res = await fetch(`${base}/api/v1/status`, { headers: bearer(READ_ONLY) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      services: {
        name: string;
        dataplane: string;
        backends: { name: string; state: string; counters: object }[];
      }[];
      warnings: string[];
    };
    assert.deepEqual(
      body.services.map((s) => s.name),
      ['ike', 'sstp'],
    );
    assert.equal(body.services[0]!.dataplane, 'recording');
    assert.deepEqual(
      body.services[0]!.backends.map((b) => [b.name, b.state]),
      [
        ['rras1', 'up'],
        ['rras2', 'up'],
        ['rras3', 'up'],
      ],
    );
    assert.deepEqual(body.services[0]!.backends[0]!.counters, { packetsIn: 7 });
    assert.ok(body.warnings.includes('ike: a warning'));
  });
});

test('POST drain: state changes, every data plane gets the new snapshot, metrics follow', async () => {
  await withRuntime(async ({ base, rt, planes }) => {
    const res = await fetch(`${base}/api/v1/backends/rras2/drain`, {
      method: 'POST',
      headers: bearer(OPERATOR),
    });
    assert.equal(res.status, 200);
    await rt.settled();
    const status = (await (
      await fetch(`${base}/api/v1/status`, { headers: bearer(OPERATOR) })
    ).json()) as {
      snapshotVersion: number;
      services: { dataplaneInSync: boolean; appliedSnapshotVersion: number }[];
    };
    assert.ok(
      status.services.every(
        (s) => s.dataplaneInSync && s.appliedSnapshotVersion === status.snapshotVersion,
      ),
    );
    const last = planes.get('ike')!.applied.at(-1)!;
    assert.equal(last.backends.find((b) => b.name === 'rras2')!.state, 'draining');
    assert.ok(!last.candidates.some((c) => c.name === 'rras2'));
    const metrics = await (await fetch(`${base}/metrics`, { headers: bearer(OPERATOR) })).text();
    assert.match(
      metrics,
      /vpnlb_backend_state\{service="ike",backend="rras2",state="draining"\} 1/,
    );
    assert.match(
      metrics,
      /vpnlb_backend_transitions_total\{service="ike",backend="rras2",to="draining"\} 1/,
    );
    const again = await fetch(`${base}/api/v1/backends/rras2/enable`, {
      method: 'POST',
      headers: bearer(OPERATOR),
    });
    assert.equal(again.status, 200);
  });
});

test('unknown backend: 404 with a stable code', async () => {
  await withRuntime(async ({ base }) => {
    const res = await fetch(`${base}/api/v1/backends/nope/disable`, {
      method: 'POST',
      headers: bearer(OPERATOR),
    });
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, 'VPNLB_UNKNOWN_BACKEND');
  });
});

test('a malformed percent-encoding in a backend name is a 400, not a 500', async () => {
  await withRuntime(async ({ port, logs }) => {
    const res = await raw(port, 'POST', '/api/v1/backends/rras%E0%A4%A/drain', bearer(OPERATOR));
    assert.equal(res.status, 400);
    assert.equal(res.json().code, 'VPNLB_ADMIN_BAD_REQUEST');
    assert.ok(!logs().some((l) => l.msg === 'admin request failed'));
  });
});

test('GET /api/v1/which answers like the decision function; needs an SPI for ike-spi', async () => {
  await withRuntime(async ({ base, rt }) => {
    const get = (q: string) => fetch(`${base}/api/v1/which?${q}`, { headers: bearer(READ_ONLY) });
    // Several clients and SPIs, each compared with decide() on the runtime's own snapshot.
    for (let i = 0; i < 8; i++) {
      const client = `203.0.113.${i + 1}`;
      const spi = Buffer.from([1, 2, 3, 4, 5, 6, 7, i]);
      const body = (await (await get(`client=${client}&spi=${spi.toString('hex')}`)).json()) as {
        answers: { service: string; backend: string; keyKind: string; slot: number | null }[];
      };
      const ike = body.answers.find((a) => a.service === 'ike')!;
      const expected = decide(rt.controller.service('ike')!, { address: client, spi });
      assert.equal(ike.keyKind, 'ike-spi');
      assert.equal(ike.backend, expected.backend!.name, `${client} spi ${spi.toString('hex')}`);
      assert.equal(ike.slot, expected.slot);
    }
    const noSpi = (await (await get('client=203.0.113.5&service=ike')).json()) as {
      answers: { backend: null; note: string }[];
    };
    assert.equal(noSpi.answers[0]!.backend, null);
    assert.match(noSpi.answers[0]!.note, /SPI/);
    assert.equal((await get('client=nope')).status, 400);
  });
});

test('GET / serves the dashboard shell with security headers and no inline script', async () => {
  await withRuntime(async ({ port }) => {
    const res = await raw(port, 'GET', '/');
    assert.equal(res.status, 200);
    assert.match(res.body, /<title>vpnlb<\/title>/);
    assert.doesNotMatch(res.body, /<script>|<script [^>]*>[^<]/, 'inline script in the page');
    assert.doesNotMatch(res.body, /<style|style="/, 'inline style in the page');
    const csp = String(res.headers['content-security-policy']);
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.equal(res.headers['x-frame-options'], 'DENY');
    const script = await raw(port, 'GET', '/assets/app.js');
    assert.equal(script.status, 200);
    assert.match(String(script.headers['content-type']), /^text\/javascript/);
    // Only the dashboard's own files are served under /assets/.
    assert.equal((await raw(port, 'GET', '/assets/package.json')).status, 404);
    const traversal = await raw(port, 'GET', '/assets/%2e%2e/%2e%2e/package.json');
    assert.notEqual(traversal.status, 200);
    assert.doesNotMatch(traversal.body, /"name": "vpnlb"/);
    // API answers carry the headers too.
    const api = await raw(port, 'GET', '/api/v1/status', bearer(OPERATOR));
    assert.equal(api.headers['x-content-type-options'], 'nosniff');
    assert.equal(api.headers['cache-control'], 'no-store');
  });
});

test('missing or wrong token: 401, logged and counted; nothing changes', async () => {
  await withRuntime(async ({ port, logs, state }) => {
    for (const headers of [
      {},
      bearer('not-the-token-at-all'),
      { authorization: 'Basic b3A6b3A=' },
    ]) {
      for (const [method, path] of [
        ['GET', '/api/v1/status'],
        ['GET', '/metrics'],
        ['GET', '/api/v1/which?client=198.18.0.1'],
        ['POST', '/api/v1/backends/rras1/disable'],
        ['POST', '/api/v1/reload'],
      ] as const) {
        const res = await raw(port, method, path, headers);
        assert.equal(res.status, 401, `${method} ${path} with ${JSON.stringify(headers)}`);
        assert.equal(res.json().code, 'VPNLB_ADMIN_UNAUTHORIZED');
        assert.equal(res.headers['www-authenticate'], 'Bearer realm="vpnlb"');
      }
    }
    assert.equal(state('rras1'), 'up');
    assert.ok(logs().filter((l) => l.reason === 'token').length >= 15);
    const metrics = await raw(port, 'GET', '/metrics', bearer(READ_ONLY));
    assert.match(metrics.body, /vpnlb_admin_requests_refused_total\{reason="token"\} 15/);
  });
});

test('a read-only token reads but cannot drain, disable, enable or reload', async () => {
  await withRuntime(async ({ port, logs, state }) => {
    assert.equal((await raw(port, 'GET', '/api/v1/status', bearer(READ_ONLY))).status, 200);
    assert.equal((await raw(port, 'GET', '/metrics', bearer(READ_ONLY))).status, 200);
    for (const path of [
      '/api/v1/backends/rras1/drain',
      '/api/v1/backends/rras1/disable',
      '/api/v1/reload',
    ]) {
      const res = await raw(port, 'POST', path, bearer(READ_ONLY));
      assert.equal(res.status, 403, path);
      assert.equal(res.json().code, 'VPNLB_ADMIN_FORBIDDEN');
    }
    assert.equal(state('rras1'), 'up');
    assert.equal(logs().filter((l) => l.reason === 'role').length, 3);
  });
});

test('DNS rebinding: a foreign Host is refused on the page and on the API, even with a token', async () => {
  await withRuntime(async ({ port, logs, state }) => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/api/v1/status'],
      ['POST', '/api/v1/backends/rras1/drain'],
    ] as const) {
      const res = await raw(port, method, path, {
        host: `evil.example:${port}`,
        ...bearer(OPERATOR),
      });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(res.json().code, 'VPNLB_ADMIN_FORBIDDEN');
    }
    assert.equal(state('rras1'), 'up');
    assert.equal(logs().filter((l) => l.reason === 'host').length, 3);
    // IP literals and localhost are answered; a configured name too (next test).
    assert.equal(
      (await raw(port, 'GET', '/api/v1/status', { host: `localhost:${port}`, ...bearer(OPERATOR) }))
        .status,
      200,
    );
    assert.equal(
      (await raw(port, 'GET', '/api/v1/status', { host: `[::1]:${port}`, ...bearer(OPERATOR) }))
        .status,
      200,
    );
  });
});

test('admin.allowedHosts: a configured name is answered', async () => {
  await withRuntime(async ({ port }) => {
    assert.equal(
      (
        await raw(port, 'GET', '/api/v1/status', {
          host: `vpnlb1.corp.example:${port}`,
          ...bearer(OPERATOR),
        })
      ).status,
      200,
    );
    assert.equal(
      (
        await raw(port, 'GET', '/api/v1/status', {
          host: `vpnlb2.corp.example:${port}`,
          ...bearer(OPERATOR),
        })
      ).status,
      403,
    );
  }, 'admin: { allowedHosts: [vpnlb1.corp.example] }');
});

test('a fetch from a foreign Origin cannot change state, even carrying a valid token', async () => {
  await withRuntime(async ({ port, logs, state }) => {
    const res = await raw(port, 'POST', '/api/v1/backends/rras1/disable', {
      origin: 'https://evil.example',
      ...bearer(OPERATOR),
    });
    assert.equal(res.status, 403);
    assert.equal(res.json().code, 'VPNLB_ADMIN_FORBIDDEN');
    const other = await raw(port, 'POST', '/api/v1/backends/rras1/disable', {
      origin: `http://127.0.0.1:${port + 1}`,
      ...bearer(OPERATOR),
    });
    assert.equal(other.status, 403, 'another port is another origin');
    const fetchMeta = await raw(port, 'POST', '/api/v1/backends/rras1/disable', {
      'sec-fetch-site': 'cross-site',
      ...bearer(OPERATOR),
    });
    assert.equal(fetchMeta.status, 403);
    assert.equal(state('rras1'), 'up');
    assert.equal(logs().filter((l) => l.reason === 'cross-site').length, 3);
    // The same request from the dashboard's own origin goes through.
    const same = await raw(port, 'POST', '/api/v1/backends/rras1/disable', {
      origin: `http://127.0.0.1:${port}`,
      ...bearer(OPERATOR),
    });
    assert.equal(same.status, 200);
    assert.equal(state('rras1'), 'disabled');
  });
});

test('a cross-site form POST is refused: foreign Origin, and without the CSRF token even with the session cookie', async () => {
  await withRuntime(async ({ port, logs, state }) => {
    const { cookie, csrf } = await login(port);
    // What a browser sends for <form method=post action="http://127.0.0.1:PORT/api/v1/backends/rras1/disable">
    // on evil.example (if it sent the SameSite=Strict cookie at all).
    const form = {
      'content-type': 'application/x-www-form-urlencoded',
      origin: 'https://evil.example',
      'sec-fetch-site': 'cross-site',
      cookie,
    };
    const res = await raw(port, 'POST', '/api/v1/backends/rras1/disable', form, 'x=1');
    assert.equal(res.status, 403);
    // An older browser without Origin / Sec-Fetch-Site: the missing CSRF header stops it.
    const noOrigin = await raw(
      port,
      'POST',
      '/api/v1/backends/rras1/disable',
      { 'content-type': 'application/x-www-form-urlencoded', cookie },
      'x=1',
    );
    assert.equal(noOrigin.status, 403);
    const wrongCsrf = await raw(port, 'POST', '/api/v1/backends/rras1/disable', {
      cookie,
      'x-csrf-token': `${csrf}x`,
    });
    assert.equal(wrongCsrf.status, 403);
    assert.equal(state('rras1'), 'up');
    assert.deepEqual(
      logs()
        .filter((l) => l.reason === 'cross-site' || l.reason === 'csrf')
        .map((l) => l.reason),
      ['cross-site', 'csrf', 'csrf'],
    );
    // A form cannot log in either (JSON only, same origin only).
    const formLogin = await raw(
      port,
      'POST',
      '/api/v1/login',
      { 'content-type': 'application/x-www-form-urlencoded' },
      `token=${OPERATOR}`,
    );
    assert.equal(formLogin.status, 415);
    const crossLogin = await raw(
      port,
      'POST',
      '/api/v1/login',
      { 'content-type': 'application/json', origin: 'https://evil.example' },
      JSON.stringify({ token: OPERATOR }),
    );
    assert.equal(crossLogin.status, 403);
  });
});

test('dashboard login: HttpOnly SameSite=Strict session cookie, CSRF token on state changes, logout', async () => {
  await withRuntime(async ({ port, state }) => {
    const wrong = await raw(
      port,
      'POST',
      '/api/v1/login',
      { 'content-type': 'application/json' },
      JSON.stringify({ token: 'nope-nope-nope-nope' }),
    );
    assert.equal(wrong.status, 401);
    const { cookie, csrf, setCookie } = await login(port);
    assert.match(
      setCookie,
      new RegExp(
        `^vpnlb_session_${port}=[A-Za-z0-9_-]{32}; Path=/; HttpOnly; SameSite=Strict; Max-Age=\\d+$`,
      ),
    );
    const session = await raw(port, 'GET', '/api/v1/session', { cookie });
    assert.equal(session.json().role, 'operator');
    assert.equal(session.json().csrf, csrf);
    assert.equal((await raw(port, 'GET', '/api/v1/status', { cookie })).status, 200);
    const drain = await raw(port, 'POST', '/api/v1/backends/rras3/drain', {
      cookie,
      'x-csrf-token': csrf,
      origin: `http://127.0.0.1:${port}`,
      'sec-fetch-site': 'same-origin',
    });
    assert.equal(drain.status, 200);
    assert.equal(state('rras3'), 'draining');
    assert.equal(
      (await raw(port, 'POST', '/api/v1/logout', { cookie, 'x-csrf-token': csrf })).status,
      200,
    );
    assert.equal((await raw(port, 'GET', '/api/v1/status', { cookie })).status, 401);
    // A read-only login gets a read-only session.
    const ro = await login(port, READ_ONLY);
    assert.equal(
      (
        await raw(port, 'POST', '/api/v1/backends/rras3/enable', {
          cookie: ro.cookie,
          'x-csrf-token': ro.csrf,
        })
      ).status,
      403,
    );
  });
});

test('one-time login link: logs in once, then never again', async () => {
  await withRuntime(async ({ port, rt }) => {
    const url = new URL(rt.adminLoginUrl()!);
    const first = await raw(port, 'GET', url.pathname + url.search);
    assert.equal(first.status, 303);
    assert.equal(first.headers.location, '/');
    const cookie = String(first.headers['set-cookie']).split(';')[0]!;
    assert.equal((await raw(port, 'GET', '/api/v1/session', { cookie })).json().role, 'operator');
    const second = await raw(port, 'GET', url.pathname + url.search);
    assert.equal(second.status, 303);
    assert.equal(second.headers['set-cookie'], undefined);
  });
});

test('request bodies are limited (413) and counted', async () => {
  await withRuntime(async ({ port }) => {
    const big = 'x'.repeat(64 * 1024);
    const res = await raw(
      port,
      'POST',
      '/api/v1/login',
      { 'content-type': 'application/json' },
      big,
    );
    assert.equal(res.status, 413);
    const metrics = await raw(port, 'GET', '/metrics', bearer(OPERATOR));
    assert.match(metrics.body, /vpnlb_admin_requests_refused_total\{reason="body"\} 1/);
  });
});

test('admin.metrics: open serves /metrics to a scraper without a token; admin.healthEndpoint serves /healthz', async () => {
  await withRuntime(async ({ port }) => {
    assert.equal((await raw(port, 'GET', '/metrics')).status, 200);
    assert.equal((await raw(port, 'GET', '/healthz')).status, 200);
    assert.equal((await raw(port, 'GET', '/api/v1/status')).status, 401, 'only /metrics is opened');
  }, 'admin: { metrics: open, healthEndpoint: true }');
  await withRuntime(async ({ port }) => {
    assert.equal((await raw(port, 'GET', '/metrics')).status, 401);
    assert.equal((await raw(port, 'GET', '/healthz')).status, 401);
  });
});

test('admin.maxConnections: connections beyond the cap are closed at once and counted', async () => {
  await withRuntime(async ({ port }) => {
    const open = await Promise.all(
      [0, 1].map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const s = connect(port, '127.0.0.1', () => resolve(s));
          }),
      ),
    );
    const third = connect(port, '127.0.0.1');
    await new Promise<void>((resolve) => third.once('close', () => resolve()));
    await Promise.all(
      open.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve()).destroy())),
    );
    // The server notices the two closes on its own schedule: ask until it has room again.
    let metrics: RawAnswer | undefined;
    for (let i = 0; i < 100 && !metrics; i++)
      metrics = await raw(port, 'GET', '/metrics', bearer(OPERATOR)).catch(
        () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 20)),
      );
    assert.ok(metrics);
    assert.match(metrics.body, /vpnlb_admin_requests_refused_total\{reason="connections"\} [1-9]/);
  }, 'admin: { maxConnections: 2 }');
});

test('Unix socket: mode 0600, operator without a token (the file mode is the authentication)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-admin-'));
  const socketPath = join(dir, 'run', 'admin.sock');
  try {
    await withRuntime(
      async ({ state }) => {
        assert.equal(statSync(socketPath).mode & 0o777, 0o600);
        assert.equal(statSync(join(dir, 'run')).mode & 0o777, 0o700);
        const res = await raw({ socketPath }, 'POST', '/api/v1/backends/rras2/disable', {
          host: 'localhost',
        });
        assert.equal(res.status, 200, res.body);
        assert.equal(state('rras2'), 'disabled');
      },
      '',
      socketPath,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('events, history and shares for the dashboard (read-only token)', async () => {
  await withRuntime(async ({ port, rt }) => {
    await raw(port, 'POST', '/api/v1/backends/rras2/drain', bearer(OPERATOR));
    await rt.settled();
    rt.sampleHistory();
    const events = (await raw(port, 'GET', '/api/v1/events', bearer(READ_ONLY))).json<{
      events: { kind: string; message: string }[];
    }>().events;
    assert.ok(
      events.some(
        (e) => e.kind === 'action' && e.message === 'drain rras2 by the administrator (API token)',
      ),
      JSON.stringify(events),
    );
    assert.ok(events.some((e) => e.kind === 'state' && /up → draining/.test(e.message)));
    assert.ok(events.some((e) => e.kind === 'apply'));
    const history = (await raw(port, 'GET', '/api/v1/history', bearer(READ_ONLY))).json<{
      series: Record<string, unknown>;
    }>();
    assert.ok(history.series['ike/rras1']);
    const status = (await raw(port, 'GET', '/api/v1/status', bearer(READ_ONLY))).json<{
      services: { name: string; backends: { name: string; share: number }[] }[];
    }>();
    const ike = status.services.find((s) => s.name === 'ike')!;
    // Maglev: rras2 is draining, the two others share the table (65537 slots: within one slot).
    assert.equal(ike.backends.find((b) => b.name === 'rras2')!.share, 0);
    assert.ok(Math.abs(ike.backends.reduce((n, b) => n + b.share, 0) - 1) < 1e-9);
    assert.ok(Math.abs(ike.backends[0]!.share - 0.5) <= 1 / 65537);
  });
});
