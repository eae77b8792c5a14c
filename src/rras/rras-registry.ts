/**
 * What RRAS keeps in the registry for a server behind a load balancer, and the certificate
 * hashes SSTP offload needs: shared by `vpnlb sstp-offload-hash` and `vpnlb rras`.
 *
 * - SSTP offload: [MS-SSTP] §3.3.3 — behind an SSL load balancer "the server administrator MUST
 *   populate the certificate hash of the machine certificate in the ServerCertificateHash state
 *   variable"; RRAS keeps it in `SstpSvc\Parameters\SHA256CertificateHash` (REG_BINARY, 32
 *   octets: RasSstp event 18 when it is not), and `UseHttps` = 0 makes it listen in plain HTTP
 *   on 80 (the `isUseHttps` of SSTP_CONFIG_PARAMS, mprapi.h).
 * - Full NAT: IKEEXT limits the IKE SAs it establishes per source address
 *   (`IKEEXT\Parameters\IkeNumEstablishedForInitialQuery`, DWORD); the Always On VPN guides'
 *   partial workaround is 50000 and a restart of IKEEXT.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const SSTP_PARAMETERS_KEY =
  'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\SstpSvc\\Parameters';
export const IKEEXT_PARAMETERS_KEY =
  'HKLM:\\SYSTEM\\CurrentControlSet\\Services\\IKEEXT\\Parameters';
/** The value the Always On VPN guides give IkeNumEstablishedForInitialQuery behind full NAT. */
export const IKE_NUM_ESTABLISHED_FOR_INITIAL_QUERY = 50_000;

/** A certificate as RRAS needs to know it: hashes of its DER encoding, in upper-case hex. */
export interface CertificateHashes {
  readonly subject: string;
  readonly notAfter: string;
  /** SHA-256: what SHA256CertificateHash holds. */
  readonly sha256: string;
  /** SHA-1: the thumbprint Windows shows in the certificate store. */
  readonly sha1: string;
}

/** Reads a PEM or DER certificate; throws an Error naming the file when it is not one. */
export function readCertificateHashes(file: string): CertificateHashes {
  let x: X509Certificate;
  try {
    x = new X509Certificate(readFileSync(file));
  } catch (err) {
    throw new Error(`cannot read a PEM or DER certificate from ${file}: ${(err as Error).message}`);
  }
  return {
    subject: x.subject.replaceAll('\n', ', '),
    notAfter: x.validTo,
    sha256: createHash('sha256').update(x.raw).digest('hex').toUpperCase(),
    sha1: createHash('sha1').update(x.raw).digest('hex').toUpperCase(),
  };
}

/** A PowerShell byte-array literal of a hex string: `[byte[]](0x20,0xD9,...)`. */
export function powershellBytes(hex: string): string {
  return `[byte[]](${(hex.match(/../g) ?? []).map((h) => `0x${h.toUpperCase()}`).join(',')})`;
}
