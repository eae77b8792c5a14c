/**
 * `vpnlb rras` scripts: golden files for every server of every example configuration (and
 * src/export/testdata/everything.yaml), and what each step must and must not contain.
 * Update after an intended change: `UPDATE_GOLDEN=1 node --test dist/src/rras/render-rras-script.test.js`.
 *
 * PowerShell for Linux (pwsh) is not packaged by Debian nor shipped by an npm package here (the
 * npm `pwsh` package downloads it at install time), so the scripts are not parsed by PowerShell
 * in these tests; a structural check (balanced brackets outside strings, PowerShell quoting)
 * stands in for it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from '../../lab/vpnlb-process.js';
import { loadConfigFile, loadConfigText } from '../config/load-config.js';
import {
  renderRrasScript,
  rrasServers,
  validateRrasOptions,
  type RrasScriptOptions,
} from './render-rras-script.js';
import type { CertificateHashes } from './rras-registry.js';

const root = REPO_ROOT;
const goldenDir = join(root, 'src/rras/golden');
const CONFIGS = [
  ...readdirSync(join(root, 'examples'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => join(root, 'examples', f)),
  join(root, 'src/export/testdata/everything.yaml'),
];

/** A stand-in front certificate (the examples' certificate files are not in the repository). */
const FRONT: CertificateHashes = {
  subject: 'CN=vpn.example.com',
  notAfter: 'Dec  1 00:00:00 2027 GMT',
  sha256: createHash('sha256').update('vpnlb golden front certificate').digest('hex').toUpperCase(),
  sha1: createHash('sha1').update('vpnlb golden front certificate').digest('hex').toUpperCase(),
};

function optionsFor(file: string, extra: Partial<RrasScriptOptions> = {}): RrasScriptOptions {
  const config = loadConfigFile(file);
  const certificates = Object.fromEntries(
    config.services.sstp.filter((s) => s.mode !== 'passthrough').map((s) => [s.name, FRONT]),
  );
  return { gateways: ['198.18.1.1', '2001:db8:1::1'], certificates, ...extra };
}

/** Brackets balance outside single- and double-quoted strings; no backslash escapes of quotes. */
function assertPowerShellShape(script: string): void {
  const stack: string[] = [];
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  let inBlockComment = false;
  for (const [n, line] of script.split('\n').entries()) {
    if (line.trim() === '<#') inBlockComment = true;
    if (inBlockComment) {
      inBlockComment = line.trim() !== '#>';
      continue;
    }
    if (line.trimStart().startsWith('#')) continue;
    assert.doesNotMatch(line, /\\'/, `line ${n + 1}: PowerShell escapes ' by doubling it: ${line}`);
    let quote: string | null = null;
    for (let i = 0; i < line.length; i++) {
      const c = line[i] as string;
      if (quote) {
        if (c === quote && line[i + 1] === quote) i++;
        else if (c === quote) quote = null;
        continue;
      }
      if (c === "'" || c === '"') quote = c;
      else if (c === '#') break;
      else if ('({['.includes(c)) stack.push(c);
      else if (c in pairs)
        assert.equal(stack.pop(), pairs[c], `line ${n + 1}: unbalanced ${c}: ${line}`);
    }
    assert.equal(quote, null, `line ${n + 1}: unterminated string: ${line}`);
  }
  assert.deepEqual(stack, [], 'every bracket is closed');
}

describe('vpnlb rras: golden scripts', () => {
  for (const file of CONFIGS) {
    const config = loadConfigFile(file);
    for (const server of rrasServers(config)) {
      const name = `${basename(file, '.yaml')}.${server.name}`;
      test(name, () => {
        const script = renderRrasScript(config, server, optionsFor(file));
        assertPowerShellShape(script);
        const golden = join(goldenDir, `${name}.ps1`);
        if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, script);
        assert.equal(script, readFileSync(golden, 'utf8'));
      });
    }
  }
});

describe('vpnlb rras: what each mode needs, and only that', () => {
  const farm = join(root, 'examples/rras-farm.yaml');
  const fullNat = join(root, 'examples/full-nat-snat-pool.yaml');
  const offload = join(root, 'examples/sstp-offload.yaml');
  const script = (file: string, server: string, extra: Partial<RrasScriptOptions> = {}) => {
    const config = loadConfigFile(file);
    const s = rrasServers(config).find((x) => x.name === server);
    assert.ok(s, server);
    return renderRrasScript(config, s, optionsFor(file, extra));
  };

  test('transparent IKEv2: the default route via the balancer, no IKEEXT change; dry run unless -Apply', () => {
    const text = script(farm, 'rras1');
    assert.match(text, /\[string\]\$Gateway = '198\.18\.1\.1'/);
    assert.match(text, /New-NetRoute -DestinationPrefix '0\.0\.0\.0\/0' -NextHop \$Gateway/);
    assert.doesNotMatch(text, /IkeNumEstablishedForInitialQuery/);
    assert.doesNotMatch(text, /SHA256CertificateHash/);
    assert.match(text, /\[switch\]\$Apply/);
    assert.match(text, /if \(-not \$Apply\) \{ Write-Host "WOULD/);
    // Self-test: the server's IKE ports and SSTP port.
    for (const port of ['UDP 500', 'UDP 4500', 'TCP 443'])
      assert.ok(text.includes(`listening on ${port}`), port);
  });

  test('without --gateway the script asks for -Gateway', () => {
    const text = script(farm, 'rras1', { gateways: [] });
    assert.match(text, /\[Parameter\(Mandatory = \$true\)\]\n {4}\[string\]\$Gateway,/);
  });

  test('--client-network: persistent routes for those prefixes, the default route untouched', () => {
    const text = script(farm, 'rras1', { clientNetworks: ['203.0.113.0/24', '2001:db8:ff::/48'] });
    assert.match(text, /New-NetRoute -DestinationPrefix '203\.0\.113\.0\/24' -NextHop \$Gateway/);
    assert.match(text, /New-NetRoute -DestinationPrefix '2001:db8:ff::\/48' -NextHop \$Gateway6/);
    assert.match(text, /\[string\]\$Gateway6 = '2001:db8:1::1',/);
    assert.doesNotMatch(text, /Remove-NetRoute/);
  });

  test('full NAT: IkeNumEstablishedForInitialQuery and an IKEEXT restart, no route change', () => {
    const text = script(fullNat, 'rras2');
    assert.match(
      text,
      /New-ItemProperty -Path \$Ike -Name 'IkeNumEstablishedForInitialQuery' -PropertyType DWord -Value 50000/,
    );
    assert.match(text, /Restart-Service -Name IKEEXT -Force/);
    assert.match(text, /vpnlb backend drain rras2/);
    assert.doesNotMatch(text, /NetRoute -DestinationPrefix/);
    assert.doesNotMatch(text, /\$Gateway/);
  });

  test('offload: the SHA-256 of the front certificate as 32 bytes, UseHttps 0, a restart only when something changed', () => {
    const text = script(offload, 'rras3');
    const bytes = /\$Hash = \[byte\[\]\]\(([^)]+)\)/.exec(text)?.[1]?.split(',').map(Number);
    assert.equal(
      Buffer.from(bytes ?? [])
        .toString('hex')
        .toUpperCase(),
      FRONT.sha256,
    );
    assert.match(text, /-Name 'UseHttps' -PropertyType DWord -Value 0/);
    assert.match(
      text,
      /if \(-not \(\$hashDone -and \$httpDone\)\) \{\n {4}Invoke-Step \$false 'restart RemoteAccess/,
    );
    assert.ok(text.includes('listening on TCP 80'));
  });

  test('re-encryption: the self-test compares the bound certificate with the front one', () => {
    const text = script(join(root, 'src/export/testdata/everything.yaml'), 'm1');
    assert.ok(text.includes(`$sstpCert.Thumbprint -eq '${FRONT.sha1}'`));
  });

  test('a server with only SSTP passthrough needs nothing but the self-test', () => {
    const config = loadConfigText(
      'pools: {p: {backends: [{name: s1, address: 198.18.1.10}]}}\nservices: {sstp: [{name: sstp, virtualIp: 198.19.0.1, pool: p}]}\n',
    );
    const text = renderRrasScript(config, rrasServers(config)[0] as never);
    assert.match(text, /nothing to change/);
    assert.doesNotMatch(text, /Invoke-Step \$/);
    assertPowerShellShape(text);
  });

  test('offload without the front certificate is an error naming --cert', () => {
    const config = loadConfigFile(offload);
    assert.throws(() => renderRrasScript(config, rrasServers(config)[0] as never, {}), {
      code: 'VPNLB_SSTP_TLS_CONFIG',
      message: /--cert FILE/,
    });
  });

  test('options are checked: a gateway must be an address, a client network a prefix', () => {
    assert.throws(() => validateRrasOptions({ gateways: ['balancer'] }), {
      code: 'VPNLB_CLI_USAGE',
      message: /--gateway/,
    });
    assert.throws(() => validateRrasOptions({ gateways: ['198.18.1.1', '198.18.1.2'] }), {
      code: 'VPNLB_CLI_USAGE',
      message: /one IPv4 and one IPv6/,
    });
    for (const bad of [
      '203.0.113.0',
      '203.0.113.0/33',
      'x/24',
      '2001:db8::/129',
      '203.0.113.0/24/1',
    ]) {
      assert.throws(
        () => validateRrasOptions({ clientNetworks: [bad] }),
        { code: 'VPNLB_CLI_USAGE', message: /--client-network/ },
        bad,
      );
    }
    validateRrasOptions({
      gateways: ['198.18.1.1', '2001:db8::1'],
      clientNetworks: ['203.0.113.0/24', '2001:db8::/32'],
    });
  });
});

test('every golden script belongs to a server of a configuration (none left over)', () => {
  const expected = new Set(
    CONFIGS.flatMap((f) =>
      rrasServers(loadConfigFile(f)).map((s) => `${basename(f, '.yaml')}.${s.name}.ps1`),
    ),
  );
  assert.deepEqual(
    readdirSync(goldenDir).filter((f) => !expected.has(f)),
    [],
  );
});
