/**
 * A self-signed certificate for the sstp probe tests (made once per process with the `openssl`
 * CLI, which CI installs): subject and SAN `vpn.example.test`, so the same PEM serves as the
 * trusted CA in the verification tests.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Name in the test certificate. */
export const TEST_CERT_NAME = 'vpn.example.test';

let cached: Promise<{ cert: string; key: string }> | undefined;

/** The test certificate and key (PEM). */
export function testCertificate(): Promise<{ cert: string; key: string }> {
  cached ??= (async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vpnlb-sstp-probe-'));
    try {
      await execFileP('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
        '-subj', `/CN=${TEST_CERT_NAME}`, '-addext', `subjectAltName=DNS:${TEST_CERT_NAME}`,
      ]);
      return { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return cached;
}
