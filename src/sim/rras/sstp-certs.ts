/**
 * Test certificates for the SSTP lab: a self-signed P-256 certificate generated with the real
 * `openssl` at test time into a temporary directory (no key is ever committed).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  readonly dir: string;
  readonly certPath: string;
  readonly keyPath: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** SHA-256 of the DER certificate, lower-case hex. */
  readonly sha256: string;
  /** Removes the temporary directory. */
  dispose(): void;
}

/**
 * A self-signed test certificate from the `openssl` CLI (`req -x509`): ECDSA P-256 by default
 * or RSA 2048, for `commonName`, with subjectAltName DNS:commonName, IP:127.0.0.1 and IP:::1
 * (so clients may verify it on loopback). Tests, the lab and the benchmarks all use this one.
 */
export function generateTestCertificate(
  commonName = 'vpn.example.test',
  options: { keyType?: 'ec' | 'rsa' } = {},
): TestCertificate {
  const keyArgs =
    options.keyType === 'rsa' ? ['rsa:2048'] : ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  const dir = mkdtempSync(join(tmpdir(), 'vpnlb-sstp-cert-'));
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      ...keyArgs,
      '-nodes',
      '-keyout',
      keyPath,
      '-out',
      certPath,
      '-days',
      '2',
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      `subjectAltName=DNS:${commonName},IP:127.0.0.1,IP:::1`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const cert = readFileSync(certPath);
  const key = readFileSync(keyPath);
  const sha256 = new X509Certificate(cert).fingerprint256.replaceAll(':', '').toLowerCase();
  return {
    dir,
    certPath,
    keyPath,
    cert,
    key,
    sha256,
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}
