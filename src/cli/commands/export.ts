import { dirname, resolve } from 'node:path';
import { loadConfigFile } from '../../config/load-config.js';
import { VpnlbError } from '../../errors.js';
import { selectServices } from '../../export/export-format.js';
import { EXPORT_FORMATS } from '../../export/formats.js';
import { parseCommandArgs, required, type Command } from '../command.js';
import { writeOutput } from '../write-output.js';

/**
 * `vpnlb export`: the equivalent vendor configuration (F5 tmsh, Citrix ADC CLI, Kemp
 * LoadMaster API calls, HAProxy, nginx stream) of a vpnlb configuration, for running vpnlb
 * beside an appliance, migrating from one, or explaining vpnlb in a vendor's terms.
 * Checks everything before writing: a bad format, service or configuration writes nothing.
 */
export const exportCommand: Command = {
  name: 'export',
  summary: 'write the equivalent F5, Citrix ADC, Kemp, HAProxy or nginx configuration',
  usage: `vpnlb export --config FILE --format ${EXPORT_FORMATS.map((f) => f.name).join('|')} [--service NAME] [--output FILE]`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      config: { type: 'string', short: 'c' },
      format: { type: 'string', short: 'f' },
      service: { type: 'string' },
      output: { type: 'string', short: 'o' },
    });
    const file = required(this, values.config, '--config FILE');
    const name = required(this, values.format, '--format');
    const format = EXPORT_FORMATS.find((f) => f.name === name);
    if (!format) {
      throw new VpnlbError(
        'VPNLB_CLI_USAGE',
        `--format: unknown format "${name}" (one of: ${EXPORT_FORMATS.map((f) => f.name).join(', ')})\nusage: ${this.usage}`,
        'client',
      );
    }
    const config = loadConfigFile(file);
    const text = format.render(selectServices(config, values.service, dirname(resolve(file))));
    writeOutput(io, text, values.output);
    return 0;
  },
};
