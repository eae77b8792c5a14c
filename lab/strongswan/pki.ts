/**
 * A certificate hierarchy for the certificate-authentication scenario, made with strongSwan's
 * `pki` (strongswan-pki): a root CA, a long chain of intermediate CAs, and end-entity
 * certificates. Each peer sends its certificate and every intermediate in IKE_AUTH, so the
 * message is several times the MTU; with IKE fragmentation off (RFC 7383 not negotiated) the IP
 * layer fragments it — exactly what a balancer must reassemble before it can read the SPI.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../netns.js';

export interface LabPki {
  /** PEM files by name, to be written under a peer's `swanctl/` directory. */
  readonly caFiles: Readonly<Record<string, string>>;
  /** For each end entity (by identity): its certificate and key files (swanctl-relative). */
  readonly endEntities: Readonly<
    Record<string, { cert: string; key: string; files: Readonly<Record<string, string>> }>
  >;
  /** Total DER size of one end entity's certificate plus the intermediates it sends. */
  readonly chainBytes: number;
}

async function genKey(path: string, bits: number): Promise<void> {
  writeFileSync(
    path,
    await run('pki', ['--gen', '--type', 'rsa', '--size', String(bits), '--outform', 'pem']),
  );
}

async function pub(keyPath: string, out: string): Promise<void> {
  writeFileSync(
    out,
    await run('pki', ['--pub', '--in', keyPath, '--type', 'rsa', '--outform', 'pem']),
  );
}

function pemToDerLength(pem: string): number {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
  return Buffer.from(b64, 'base64').length;
}

/**
 * Creates the hierarchy in `dir`. `intermediates` CAs chain below the root; every end entity
 * is issued by the last one, with its identity as subjectAltName (so `id = <identity>` matches).
 */
export async function createLabPki(
  dir: string,
  identities: readonly string[],
  options: { intermediates?: number; bits?: number } = {},
): Promise<LabPki> {
  mkdirSync(dir, { recursive: true });
  const bits = options.bits ?? 2048;
  const levels = options.intermediates ?? 5;
  const caFiles: Record<string, string> = {};
  await genKey(join(dir, 'ca0.key'), bits);
  const root = await run('pki', [
    '--self',
    '--ca',
    '--lifetime',
    '30',
    '--in',
    join(dir, 'ca0.key'),
    '--type',
    'rsa',
    '--dn',
    'C=ZZ, O=vpnlb lab, CN=Lab Root CA',
    '--outform',
    'pem',
  ]);
  writeFileSync(join(dir, 'ca0.pem'), root);
  caFiles['x509ca/ca0.pem'] = root;
  let chainBytes = 0;
  for (let i = 1; i <= levels; i++) {
    await genKey(join(dir, `ca${i}.key`), bits);
    await pub(join(dir, `ca${i}.key`), join(dir, `ca${i}.pub`));
    const cert = await run('pki', [
      '--issue',
      '--ca',
      '--lifetime',
      '30',
      '--cacert',
      join(dir, `ca${i - 1}.pem`),
      '--cakey',
      join(dir, `ca${i - 1}.key`),
      '--in',
      join(dir, `ca${i}.pub`),
      '--type',
      'pub',
      '--dn',
      `C=ZZ, O=vpnlb lab, CN=Lab Intermediate CA ${i} with a deliberately long name to make the chain larger`,
      '--outform',
      'pem',
    ]);
    writeFileSync(join(dir, `ca${i}.pem`), cert);
    // Untrusted (x509/, not x509ca/): charon builds the trust chain through untrusted
    // issuers first and sends each as an intermediate; a trusted one would end the chain.
    caFiles[`x509/ca${i}.pem`] = cert;
    chainBytes += pemToDerLength(cert);
  }
  const issuer = `ca${levels}`;
  const endEntities: Record<string, { cert: string; key: string; files: Record<string, string> }> =
    {};
  let leafBytes = 0;
  for (const id of identities) {
    const safe = id.replace(/[^a-zA-Z0-9_-]/g, '_');
    await genKey(join(dir, `${safe}.key`), bits);
    await pub(join(dir, `${safe}.key`), join(dir, `${safe}.pub`));
    const cert = await run('pki', [
      '--issue',
      '--lifetime',
      '30',
      '--cacert',
      join(dir, `${issuer}.pem`),
      '--cakey',
      join(dir, `${issuer}.key`),
      '--in',
      join(dir, `${safe}.pub`),
      '--type',
      'pub',
      '--dn',
      `C=ZZ, O=vpnlb lab, CN=${id}`,
      '--san',
      id,
      '--flag',
      'serverAuth',
      '--flag',
      'clientAuth',
      '--outform',
      'pem',
    ]);
    leafBytes = Math.max(leafBytes, pemToDerLength(cert));
    endEntities[id] = {
      cert: `${safe}.pem`,
      key: `${safe}.key`,
      files: {
        [`x509/${safe}.pem`]: cert,
        [`private/${safe}.key`]: readFileSync(join(dir, `${safe}.key`), 'utf8'),
      },
    };
  }
  return { caFiles, endEntities, chainBytes: chainBytes + leafBytes };
}
