import assert from 'node:assert/strict';
import { X509Certificate, createHash } from 'node:crypto';
import { it } from 'node:test';
import { generateTestCertificate } from '../../sim/rras/sstp-certs.js';
import { sstpOffloadHashCommand } from './sstp-offload-hash.js';

it('prints the certificate hashes (as openssl computes them) and the RRAS registry steps', async () => {
  const cert = generateTestCertificate();
  try {
    let out = '';
    const code = await sstpOffloadHashCommand.run(['--cert', cert.certPath], {
      out: (t) => (out += `${t}\n`),
      err: () => {},
    });
    assert.equal(code, 0);
    const x = new X509Certificate(cert.cert);
    const sha256 = x.fingerprint256.replaceAll(':', '');
    assert.ok(out.includes(`SHA-256:   ${sha256}`));
    assert.ok(out.includes(`SHA-1:     ${x.fingerprint.replaceAll(':', '')}`));
    assert.match(out, /HKLM:\\SYSTEM\\CurrentControlSet\\Services\\SstpSvc\\Parameters/);
    assert.match(out, /-Name 'UseHttps' -PropertyType DWord -Value 0/);
    // The byte array given to SHA256CertificateHash is the SHA-256 of the DER certificate.
    const bytes = /\$Hash = \[byte\[\]\]\(([^)]+)\)/
      .exec(out)?.[1]
      ?.split(',')
      .map((b) => Number(b));
    assert.equal(
      Buffer.from(bytes ?? []).toString('hex'),
      createHash('sha256').update(x.raw).digest('hex'),
    );
    let json = '';
    await sstpOffloadHashCommand.run(['--cert', cert.certPath, '--json'], {
      out: (t) => (json += t),
      err: () => {},
    });
    assert.equal(JSON.parse(json).sha256, sha256);
  } finally {
    cert.dispose();
  }
});

it('a file that is not a certificate is a usage error', async () => {
  await assert.rejects(
    sstpOffloadHashCommand.run(['--cert', '/etc/hostname'], { out: () => {}, err: () => {} }),
    { code: 'VPNLB_CLI_USAGE' },
  );
});
