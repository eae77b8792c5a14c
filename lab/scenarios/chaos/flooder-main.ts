/**
 * The flooder process, started by the chaos scenario inside its own namespace:
 * `node flooder-main.js '{"vip":"198.19.0.1","udpRate":1000,"tcpRate":20,"seconds":30,"seed":1,"sstpPort":443}'`.
 * Sends for `seconds`, then prints one FloodReport as JSON on stdout. Rates are per second and
 * bounded by the scenario; datagrams go out in 10 ms ticks.
 */
import { createSocket, type Socket } from 'node:dgram';
import { connect } from 'node:net';
import { mulberry32 } from '../../prng.js';
import {
  kernelVerdict,
  randomDatagram,
  randomSstpGarbage,
  sstpVerdict,
  type FloodReport,
  type KernelVerdict,
} from './flood.js';

export interface FloodOptions {
  readonly vip: string;
  readonly ikePort?: number;
  readonly natTPort?: number;
  readonly sstpPort: number;
  readonly udpRate: number;
  readonly tcpRate: number;
  readonly seconds: number;
  readonly seed: number;
}

/** Source sockets per verdict (each its own source port, see flood.ts); a few of each so that new flows keep coming. */
const SOCKETS_PER_VERDICT = 4;
const TICK_MS = 10;

export async function flood(o: FloodOptions): Promise<FloodReport> {
  const rnd = mulberry32(o.seed);
  const verdicts: KernelVerdict[] = ['forwarded', 'ike_unrouted', 'natt_unrouted'];
  const sockets = new Map<KernelVerdict, Socket[]>();
  for (const v of verdicts) {
    const list: Socket[] = [];
    for (let i = 0; i < SOCKETS_PER_VERDICT; i++) {
      const s = createSocket(o.vip.includes(':') ? 'udp6' : 'udp4');
      s.on('error', () => undefined);
      await new Promise<void>((resolve) => s.bind(0, resolve));
      list.push(s);
    }
    sockets.set(v, list);
  }
  const udp = Object.fromEntries(verdicts.map((v) => [v, { ike: 0, natT: 0 }])) as Record<
    KernelVerdict,
    { ike: number; natT: number }
  >;
  let udpSendErrors = 0;
  const tcp: Record<string, number> = {};
  let tcpConnectErrors = 0;
  const pendingTcp = new Set<Promise<void>>();
  const started = Date.now();
  const endAt = started + o.seconds * 1000;
  let udpDue = 0;
  let tcpDue = 0;

  const sendGarbageConnection = (garbage: Buffer, reason: string): Promise<void> =>
    new Promise<void>((resolve) => {
      const sock = connect({ host: o.vip, port: o.sstpPort });
      let connected = false;
      sock.setTimeout(15_000, () => sock.destroy());
      sock.once('connect', () => {
        connected = true;
        // Counted once the garbage and the FIN are handed to the kernel: the proxy sees both.
        sock.end(garbage, () => {
          tcp[reason] = (tcp[reason] ?? 0) + 1;
        });
      });
      sock.on('data', () => undefined);
      sock.on('error', () => undefined);
      sock.once('close', () => {
        if (!connected) tcpConnectErrors++;
        resolve();
      });
    });

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = Date.now();
      if (now >= endAt) {
        clearInterval(timer);
        resolve();
        return;
      }
      udpDue += (o.udpRate * TICK_MS) / 1000;
      tcpDue += (o.tcpRate * TICK_MS) / 1000;
      for (; udpDue >= 1; udpDue--) {
        const { natT, payload } = randomDatagram(rnd);
        const verdict = kernelVerdict(natT, payload);
        const list = sockets.get(verdict)!;
        const s = list[Math.floor(rnd() * list.length)]!;
        const port = natT ? (o.natTPort ?? 4500) : (o.ikePort ?? 500);
        s.send(payload, port, o.vip, (err) => {
          if (err) udpSendErrors++;
          else udp[verdict][natT ? 'natT' : 'ike']++;
        });
      }
      for (; tcpDue >= 1; tcpDue--) {
        let garbage = randomSstpGarbage(rnd);
        let reason = sstpVerdict(garbage);
        while (reason === undefined) {
          garbage = randomSstpGarbage(rnd);
          reason = sstpVerdict(garbage);
        }
        const p = sendGarbageConnection(garbage, reason);
        pendingTcp.add(p);
        void p.then(() => pendingTcp.delete(p));
      }
    }, TICK_MS);
  });
  await Promise.all(pendingTcp);
  // Let the last send callbacks report before the sockets close.
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (const list of sockets.values()) for (const s of list) s.close();
  return {
    seconds: Math.round((Date.now() - started) / 100) / 10,
    udp,
    udpSendErrors,
    tcp,
    tcpConnectErrors,
  };
}

// Run as a script: one JSON argument, one JSON line out.
if (process.argv[2]) {
  flood(JSON.parse(process.argv[2]) as FloodOptions).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: Error) => {
      process.stderr.write(`flooder: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    },
  );
}
