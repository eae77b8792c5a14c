import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfigFile } from '../../config/load-config.js';
import type { CertificateHashes } from '../../rras/rras-registry.js';
import { readCertificateHashes } from '../../rras/rras-registry.js';
import {
  renderRrasScript,
  rrasServers,
  validateRrasOptions,
  type RrasScriptOptions,
} from '../../rras/render-rras-script.js';
import { VpnlbError } from '../../errors.js';
import { parseCommandArgs, required, type Command } from '../command.js';
import { writeOutput } from '../write-output.js';

/**
 * `vpnlb rras`: the PowerShell each RRAS server behind vpnlb needs (route back through the
 * balancer, SSTP offload certificate hash, the IKEEXT per-address limit for full NAT, a
 * self-test), a dry run unless started with -Apply. One script per server: `--server NAME`
 * picks one, `--output` writes it to a file (without --server: a directory, NAME.ps1 each).
 */
export const rrasCommand: Command = {
  name: 'rras',
  summary: 'write the PowerShell each RRAS server needs behind vpnlb (dry run unless -Apply)',
  usage:
    'vpnlb rras --config FILE [--server NAME] [--gateway IP]... [--client-network PREFIX]... [--cert FILE] [--output FILE|DIR]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      config: { type: 'string', short: 'c' },
      server: { type: 'string' },
      gateway: { type: 'string', multiple: true },
      'client-network': { type: 'string', multiple: true },
      cert: { type: 'string' },
      output: { type: 'string', short: 'o' },
    });
    const file = required(this, values.config, '--config FILE');
    const options: RrasScriptOptions = {
      ...(values.gateway ? { gateways: values.gateway } : {}),
      ...(values['client-network'] ? { clientNetworks: values['client-network'] } : {}),
    };
    validateRrasOptions(options);
    const config = loadConfigFile(file);
    let servers = rrasServers(config);
    if (values.server !== undefined) {
      servers = servers.filter((s) => s.name === values.server);
      if (servers.length === 0) {
        throw new VpnlbError(
          'VPNLB_CLI_USAGE',
          `--server: no server named "${values.server}" in ${file} (servers: ${rrasServers(config)
            .map((s) => s.name)
            .join(', ')})`,
          'client',
        );
      }
    }
    // Offload and re-encryption: RRAS needs the front certificate's hashes (--cert overrides tls.cert).
    const certificates: Record<string, CertificateHashes> = {};
    for (const s of config.services.sstp) {
      if (s.mode === 'passthrough' || !s.tls) continue;
      const path = values.cert ?? s.tls.cert;
      try {
        certificates[s.name] = readCertificateHashes(path);
      } catch (err) {
        throw new VpnlbError(
          'VPNLB_SSTP_TLS_CONFIG',
          `SSTP service ${s.name}: ${(err as Error).message} (RRAS needs the hash of the certificate the balancer presents: pass --cert FILE)`,
          'client',
        );
      }
    }
    // Render every script before writing any: an error leaves nothing behind.
    const scripts = servers.map((s) => ({
      name: s.name,
      text: renderRrasScript(config, s, { ...options, certificates }),
    }));
    if (values.server !== undefined || values.output === undefined) {
      const text = scripts
        .map((s, i) =>
          scripts.length > 1 ? `${i ? '\n' : ''}# ==== ${s.name}.ps1 ====\n${s.text}` : s.text,
        )
        .join('');
      writeOutput(io, text, values.output);
    } else {
      mkdirSync(values.output, { recursive: true });
      for (const s of scripts) writeOutput(io, s.text, join(values.output, `${s.name}.ps1`));
      io.err(`wrote ${scripts.map((s) => join(values.output ?? '', `${s.name}.ps1`)).join(', ')}`);
    }
    return 0;
  },
};
