/**
 * The certificate of the sstp probe tests: subject and SAN `vpn.example.test`, so the same PEM
 * serves as the trusted CA in the verification tests. Made once per process by the lab's
 * generator (the `openssl` CLI, which CI installs).
 */
import { generateTestCertificate } from '../../src/sim/rras/sstp-certs.js';

/** Name in the test certificate. */
export const TEST_CERT_NAME = 'vpn.example.test';

let cached: { cert: string; key: string } | undefined;

/** The test certificate and key (PEM). */
export async function testCertificate(): Promise<{ cert: string; key: string }> {
  if (!cached) {
    const made = generateTestCertificate(TEST_CERT_NAME);
    cached = { cert: made.cert.toString('utf8'), key: made.key.toString('utf8') };
    made.dispose();
  }
  return cached;
}
