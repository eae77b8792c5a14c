import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigFile } from '../../config/load-config.js';
import { Runtime } from '../../runtime/runtime.js';
import { silentLogger } from '../../log/logger.js';
import { main } from '../main.js';

const CONFIG = `
admin: { listen: 127.0.0.1, port: 0, tokenFile: lib/admin.token, socket: run/admin.sock }
pools:
  rras: { backends: [{ name: rras1, address: 198.18.1.10 }, { name: rras2, address: 198.18.1.11 }] }
services:
  sstp: [{ name: sstp, virtualIp: 198.19.0.1, pool: rras }]
`;

async function cli(
  argv: string[],
  env: Record<string, string | undefined> = {},
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const code = await main(argv, { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
    return { code, out, err };
  } finally {
    process.env = saved;
  }
}

test('the CLI finds the socket and the token by itself from the configuration', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-cli-'));
  const file = join(dir, 'vpnlb.yaml');
  writeFileSync(file, CONFIG);
  const rt = new Runtime({
    config: loadConfigFile(file),
    logger: silentLogger(),
    createDataPlane: async (s) => ({
      serviceName: s.name,
      start: async () => {},
      apply: async () => {},
      stop: async () => {},
      status: () => ({ dataplane: 'none', listeners: [], backends: {}, warnings: [] }),
    }),
  });
  await rt.start();
  try {
    // The Unix socket (no token needed).
    const drained = await cli(['backend', 'drain', 'rras2', '--config', file]);
    assert.equal(drained.code, 0, drained.err);
    assert.match(drained.out, /rras\/rras2: draining/);
    // TCP: the token is read from the configuration's tokenFile (created at start).
    const url = `http://127.0.0.1:${rt.adminAddress!.port}`;
    const status = await cli(['status', '--admin', url, '--config', file]);
    assert.equal(status.code, 0, status.err);
    assert.match(status.out, /rras2 .* draining/);
    // Without a token: a clear refusal, exit code 1.
    const refused = await cli(['status', '--admin', url, '--token-file', join(dir, 'missing')]);
    assert.equal(refused.code, 2);
    const wrong = await cli(['status', '--admin', url], {
      VPNLB_ADMIN_TOKEN: 'wrong-token-0123456789',
    });
    assert.equal(wrong.code, 1);
    assert.match(wrong.err, /token was refused.*VPNLB_ADMIN_UNAUTHORIZED/);
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
