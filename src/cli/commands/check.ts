import { checkConfigFile, formatIssue } from '../../config/load-config.js';
import { parseCommandArgs, required, type Command } from '../command.js';

/** `vpnlb check --config FILE`: every problem with its YAML path and line; exit 1 on any error. */
export const checkCommand: Command = {
  name: 'check',
  summary: 'check a configuration file and print every problem with its path and line',
  usage: 'vpnlb check --config FILE [--json]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
    });
    const file = required(this, values.config, '--config FILE');
    const result = checkConfigFile(file);
    const errors = result.issues.filter((i) => i.severity === 'error');
    if (values.json) {
      io.out(JSON.stringify({ file, valid: errors.length === 0, issues: result.issues }, null, 2));
      return errors.length === 0 ? 0 : 1;
    }
    for (const issue of result.issues)
      (issue.severity === 'error' ? io.err : io.out)(formatIssue(file, issue));
    const warnings = result.issues.length - errors.length;
    if (errors.length > 0) {
      io.err(`${file}: ${errors.length} error(s), ${warnings} warning(s)`);
      return 1;
    }
    io.out(`${file}: valid (${warnings} warning(s))`);
    return 0;
  },
};
