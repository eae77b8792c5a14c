/**
 * What the kernel data plane's integration tests share: the skip reason when this machine
 * cannot run them (root, nft, conntrack; lab/requirements.ts), and the runtime a data plane is
 * built from (a config, its controller, a silent logger, fresh metrics).
 */
import { canUseConntrack } from '../../lab/netns.js';
import { requireOrSkip } from '../../lab/requirements.js';
import { loadConfigText } from '../../src/config/load-config.js';
import { Controller } from '../../src/control/controller.js';
import type { RuntimeContext } from '../../src/control/runtime-context.js';
import { silentLogger } from '../../src/log/logger.js';
import { Metrics } from '../../src/observability/metrics.js';

/** The `skip` option of a kernel test: false when it can run, else why not (or a failure in CI). */
export function kernelTestSkip(label: string): string | false {
  return requireOrSkip(label, canUseConntrack());
}

/** A data plane's runtime for the config `yaml`: the context and the controller inside it. */
export function runtimeFor(yaml: string): { ctx: RuntimeContext; controller: Controller } {
  const config = loadConfigText(yaml);
  const controller = new Controller(config);
  return {
    controller,
    ctx: { config, controller, logger: silentLogger(), metrics: new Metrics() },
  };
}
