/**
 * A simulated RRAS SSTP endpoint as a process, for tests that put the servers in network
 * namespaces (`ip netns exec NS node sstp-endpoint-main.js '{"name":..,"host":..,"tlsPort":..,
 * "certPath":..,"keyPath":..}'`). Prints `{"ready":true}` once listening, then its whole report
 * as one JSON line after every change; ends on SIGTERM or when stdin closes.
 */
import { readFileSync } from 'node:fs';
import { SimSstpEndpoint } from './sstp-endpoint.js';

interface Args {
  readonly name: string;
  readonly host: string;
  readonly tlsPort: number;
  readonly certPath: string;
  readonly keyPath: string;
}

const a = JSON.parse(process.argv[2] ?? '{}') as Args;
const ep = await SimSstpEndpoint.start({
  name: a.name,
  host: a.host,
  tlsPort: a.tlsPort,
  cert: readFileSync(a.certPath),
  key: readFileSync(a.keyPath),
});
let pending = false;
ep.on('change', () => {
  if (pending) return;
  pending = true;
  setImmediate(() => {
    pending = false;
    process.stdout.write(`${JSON.stringify(ep.report())}\n`);
  });
});
process.stdout.write(`${JSON.stringify({ ready: true, port: ep.tlsPort })}\n`);
const end = () => void ep.close().then(() => process.exit(0));
process.on('SIGTERM', end);
process.stdin.on('end', end);
process.stdin.resume();
