/** Runs the CLI from sources (development: `node --import tsx src/cli/run-cli.ts ARGS`). */
import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`vpnlb: ${(err as Error)?.stack ?? String(err)}`);
    process.exitCode = 70;
  },
);
