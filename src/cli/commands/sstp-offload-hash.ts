import { VpnlbError } from '../../errors.js';
import {
  powershellBytes,
  readCertificateHashes,
  SSTP_PARAMETERS_KEY,
  type CertificateHashes,
} from '../../rras/rras-registry.js';
import { parseCommandArgs, required, type Command } from '../command.js';

/**
 * `vpnlb sstp-offload-hash --cert FILE`: the hashes RRAS needs when vpnlb terminates TLS for
 * SSTP (mode offload), and the exact RRAS-side steps.
 *
 * Why: SSTP's crypto binding covers the hash of the certificate the client saw ([MS-SSTP]
 * §3.3.3: behind an SSL load balancer "the server administrator MUST populate the certificate
 * hash of the machine certificate in the ServerCertificateHash state variable"). RRAS keeps it
 * in `HKLM\SYSTEM\CurrentControlSet\Services\SstpSvc\Parameters\SHA256CertificateHash`
 * (REG_BINARY, 32 octets: Microsoft, RasSstp event 18), and `UseHttps` = 0 makes it listen in
 * plain HTTP on 80 (the `isUseHttps` of SSTP_CONFIG_PARAMS, mprapi.h).
 */
export const sstpOffloadHashCommand: Command = {
  name: 'sstp-offload-hash',
  summary: 'print the certificate hashes and RRAS steps for SSTP TLS offload',
  usage: 'vpnlb sstp-offload-hash --cert FILE [--json]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      cert: { type: 'string' },
      json: { type: 'boolean' },
    });
    const file = required(this, values.cert, '--cert FILE');
    let cert: CertificateHashes;
    try {
      cert = readCertificateHashes(file);
    } catch (err) {
      throw new VpnlbError('VPNLB_CLI_USAGE', `--cert: ${(err as Error).message}`, 'client');
    }
    const { subject, notAfter, sha256, sha1 } = cert;
    if (values.json) {
      io.out(
        JSON.stringify(
          { certificate: file, subject, notAfter, sha256, sha1, powershell: powershell(sha256) },
          null,
          2,
        ),
      );
      return 0;
    }
    io.out(
      [
        `Certificate: ${file}`,
        `  subject:   ${subject}`,
        `  expires:   ${notAfter}`,
        `  SHA-256:   ${sha256}`,
        `  SHA-1:     ${sha1}  (the thumbprint Windows shows in the certificate store)`,
        '',
        'On every RRAS server behind vpnlb (mode: offload), in an elevated PowerShell:',
        '',
        powershell(sha256),
        '',
        'Then:',
        "  - RRAS now serves SSTP in plain HTTP on TCP 80: point vpnlb's backendPort at 80 (the default in",
        '    offload mode) and allow 80 from the balancer only; clients still connect with TLS to vpnlb.',
        '  - The public certificate and its key stay on the balancer (tls.cert / tls.key); RRAS only needs the',
        '    hash. Re-run this command and the steps above whenever the certificate is renewed: a stale hash',
        '    makes every SSTP tunnel fail crypto binding after authentication.',
        '  - Check: Get-ItemProperty -Path $Path | Select-Object SHA256CertificateHash, UseHttps',
        '  - Undo: Remove-ItemProperty -Path $Path -Name SHA256CertificateHash, UseHttps; Restart-Service RemoteAccess',
      ].join('\n'),
    );
    return 0;
  },
};

/** The PowerShell that sets the offload registry values on RRAS and restarts the service. */
function powershell(sha256Hex: string): string {
  return [
    `$Path = '${SSTP_PARAMETERS_KEY}'`,
    `$Hash = ${powershellBytes(sha256Hex)}`,
    `New-ItemProperty -Path $Path -Name 'SHA256CertificateHash' -PropertyType Binary -Value $Hash -Force`,
    `New-ItemProperty -Path $Path -Name 'UseHttps' -PropertyType DWord -Value 0 -Force`,
    'Restart-Service RemoteAccess -PassThru',
  ].join('\n');
}
