import { checkConfigFile, formatIssue } from '../../config/load-config.js';
import { ConfigError } from '../../config/load-config.js';
import { createLogger } from '../../log/logger.js';
import { logPrivileges } from '../../platform/privileges-log.js';
import { ServiceNotifier } from '../../platform/sd-notify.js';
import { parseCommandArgs, required, type Command } from '../command.js';

/**
 * `vpnlb run --config FILE`: the service. Reloads its configuration on SIGHUP (only the
 * difference is applied; a file with errors is refused). Stops on SIGINT/SIGTERM; with `--keep-state` (or
 * SIGTERM while `VPNLB_KEEP_STATE=1`) the kernel data plane is left programmed so that a new
 * start adopts it without dropping a tunnel.
 */
export const runCommand: Command = {
  name: 'run',
  summary: 'run the balancer with a configuration file',
  usage: 'vpnlb run --config FILE [--admin HOST:PORT] [--keep-state]',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, {
      config: { type: 'string', short: 'c' },
      admin: { type: 'string' },
      'keep-state': { type: 'boolean' },
    });
    const file = required(this, values.config, '--config FILE');
    const checked = checkConfigFile(file);
    if (!checked.config) throw new ConfigError(file, checked.issues);
    const config = checked.config;
    const logger = createLogger({ level: config.log.level });
    const warnings = checked.issues
      .filter((i) => i.severity === 'warning')
      .map((i) => formatIssue(file, i));
    for (const w of warnings) logger.warn({ component: 'config' }, w);
    logPrivileges(logger);
    let admin: { host: string; port: number } | undefined;
    if (values.admin) {
      const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(values.admin);
      if (!m)
        throw new ConfigError(file, [
          {
            severity: 'error',
            path: '',
            message: `--admin: expected HOST:PORT, got ${values.admin}`,
          },
        ]);
      admin = { host: m[1]!, port: Number(m[2]) };
    }
    // Loaded on demand: `vpnlb check` and friends should not pay for the data planes.
    const { Runtime } = await import('../../runtime/runtime.js');
    const { createDataPlane } = await import('../../dataplane/registry.js');
    const { createHealthChecker } = await import('../../health/index.js');
    const runtime = new Runtime({
      config,
      logger,
      createDataPlane,
      createWatcher: (ctx) => createHealthChecker(ctx),
      configWarnings: warnings,
      configFile: file,
      ...(admin ? { admin } : {}),
    });
    await runtime.start();
    // SIGHUP: re-read the file and apply the difference (systemd's ExecReload sends it). The
    // outcome is logged; `vpnlb reload` gives the same with the answer on the terminal.
    const onHup = () => {
      logger.info(
        { component: 'runtime', signal: 'SIGHUP' },
        'received SIGHUP: reloading the configuration',
      );
      void runtime.reload();
    };
    process.on('SIGHUP', onHup);
    const keepState = values['keep-state'] === true || process.env.VPNLB_KEEP_STATE === '1';
    // Handlers first: a SIGTERM right after "running" (a supervisor, a test) must stop cleanly,
    // not kill the process with Node's default action and leave the kernel tables behind.
    const stopped = new Promise<void>((resolve) => {
      const stop = (sig: string) => {
        logger.info(
          { component: 'runtime', signal: sig, keepState },
          `received ${sig}, stopping${keepState ? ' (kernel state kept)' : ''}`,
        );
        resolve();
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
    const running = `vpnlb running (config ${file}${runtime.adminAddress ? `, admin ${runtime.adminAddress.url}` : ''})`;
    io.out(running);
    // Type=notify: ready only now, every data plane programmed (platform/sd-notify.ts).
    const notifier = new ServiceNotifier({ logger });
    await notifier.ready(running);
    await stopped;
    await notifier.stopping(`stopping${keepState ? ' (kernel state kept)' : ''}`);
    process.off('SIGHUP', onHup);
    await runtime.stop({ keepState });
    return 0;
  },
};
