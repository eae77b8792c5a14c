/**
 * The relay's SO_REUSEPORT groups (no root): the kernel's choice of socket, made by the addon's
 * BPF program, is the one `workerOfAddress` computes, for IPv4 and IPv6; the hash spreads
 * consecutive addresses evenly.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { sleep } from '../../util/wait.js';
import {
  closeReuseportGroup,
  openReuseportGroup,
  reuseportUnavailable,
  workerOfAddress,
} from './reuseport-group.js';

describe('workerOfAddress', () => {
  it('spreads consecutive addresses evenly over any number of workers', () => {
    for (const count of [2, 3, 4, 7]) {
      const per = new Array<number>(count).fill(0);
      for (let i = 0; i < 4096; i++) per[workerOfAddress(`10.${i >> 8}.${i & 255}.1`, count)!]!++;
      for (const n of per)
        assert.ok(
          Math.abs(n - 4096 / count) < 0.1 * (4096 / count),
          `${count} workers: ${per.join(', ')}`,
        );
    }
  });
  it('is stable, covers IPv6, and refuses what is not an address', () => {
    assert.equal(workerOfAddress('198.18.11.2', 2), workerOfAddress('198.18.11.2', 2));
    assert.ok([0, 1, 2].includes(workerOfAddress('2001:db8::7', 3)!));
    assert.equal(workerOfAddress('not-an-address', 2), undefined);
  });
});

const unavailable = reuseportUnavailable();
describe('the kernel agrees with workerOfAddress', { skip: unavailable ?? false }, () => {
  async function deliveries(
    family: 4 | 6,
    listen: string,
    sources: readonly string[],
    count: number,
  ): Promise<Map<string, number>> {
    const group = openReuseportGroup(family, listen, 0, count);
    const got = new Map<string, number>();
    try {
      // The group's sockets are opened not reading (the main process only holds them): this
      // test plays the workers and reads them again.
      for (const [i, s] of group.sockets.entries()) {
        const sym = Object.getOwnPropertySymbols(s).find((x) => x.description === 'state symbol')!;
        (s as unknown as Record<symbol, { handle: { recvStart(): number } }>)[
          sym
        ]!.handle.recvStart();
        s.on('message', (_m, r) => got.set(r.address, i));
      }
      for (const src of sources) {
        const c = createSocket(family === 6 ? 'udp6' : 'udp4');
        await new Promise<void>((resolve) => c.bind(0, src, () => resolve()));
        await new Promise<void>((resolve) => c.send('x', group.port, listen, () => resolve()));
        c.close();
      }
      for (let i = 0; i < 50 && got.size < sources.length; i++) await sleep(20);
      return got;
    } finally {
      closeReuseportGroup(group);
    }
  }

  it('IPv4: each source address reaches the socket its hash names', async () => {
    const sources = Array.from({ length: 16 }, (_, i) => `127.0.61.${i + 1}`);
    const got = await deliveries(4, '127.0.0.1', sources, 3);
    assert.equal(got.size, sources.length, 'every datagram arrived');
    for (const src of sources) assert.equal(got.get(src), workerOfAddress(src, 3), src);
    assert.equal(new Set(got.values()).size, 3, 'all three sockets received');
  });

  it('IPv6: the program reads the 128-bit source address', async () => {
    const got = await deliveries(6, '::1', ['::1'], 3);
    assert.equal(got.get('::1'), workerOfAddress('::1', 3));
  });

  it('a port held by a socket without SO_REUSEPORT is refused with EADDRINUSE', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((resolve) =>
      holder.bind({ port: 0, address: '127.0.0.1', exclusive: true }, () => resolve()),
    );
    try {
      assert.throws(
        () => openReuseportGroup(4, '127.0.0.1', holder.address().port, 2),
        (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE' && /bind/.test(err.message),
      );
    } finally {
      holder.close();
    }
  });
});
