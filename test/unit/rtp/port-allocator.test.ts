import { afterEach, describe, expect, it } from 'vitest';
import { createSocket, type Socket } from 'node:dgram';
import { RtpPortAllocator, RtpPortsExhaustedError, type RtpSocketPair } from '../../../src/telephony/embedded/rtp/index.js';

const allocators: RtpPortAllocator[] = [];
const foreignSockets: Socket[] = [];

afterEach(async () => {
  for (const allocator of allocators.splice(0)) allocator.releaseAll();
  await Promise.all(foreignSockets.splice(0).map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
});

function bindForeign(port: number): Promise<Socket | null> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => {
      socket.close();
      resolve(null);
    });
    socket.bind(port, '127.0.0.1', () => resolve(socket));
  });
}

/**
 * A range of `size` consecutive free ports starting at an even port, below Linux's ephemeral
 * range (32768+) so other tests' random ports do not wander into it. Checked by binding.
 */
async function freeRange(size: number): Promise<{ min: number; max: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 20000 + 2 * Math.floor(Math.random() * 6000);
    const sockets = await Promise.all(Array.from({ length: size }, (_, i) => bindForeign(min + i)));
    await Promise.all(sockets.map((socket) => socket && new Promise<void>((resolve) => socket.close(() => resolve()))));
    if (sockets.every((socket) => socket !== null)) return { min, max: min + size - 1 };
  }
  throw new Error('no free port range found');
}

function allocator(range: { min: number; max: number }): RtpPortAllocator {
  const created = new RtpPortAllocator({ address: '127.0.0.1', ...range });
  allocators.push(created);
  return created;
}

describe('RtpPortAllocator', () => {
  it('rejects ranges without an even/odd pair', () => {
    expect(() => new RtpPortAllocator({ address: '127.0.0.1', min: 40001, max: 40002 })).toThrow(RangeError);
    expect(() => new RtpPortAllocator({ address: '127.0.0.1', min: 40010, max: 40000 })).toThrow(RangeError);
    expect(() => new RtpPortAllocator({ address: '127.0.0.1', min: 0, max: 70000 })).toThrow(RangeError);
    expect(new RtpPortAllocator({ address: '127.0.0.1', min: 40001, max: 40004 }).capacity).toBe(1);
  });

  it('hands out bound pairs: RTP even, RTCP = RTP + 1 (RFC 3550 §11)', async () => {
    const range = await freeRange(8);
    const ports = allocator(range);
    const pair = await ports.allocate();
    expect(pair.rtpPort % 2).toBe(0);
    expect(pair.rtcpPort).toBe(pair.rtpPort + 1);
    expect(pair.rtpPort).toBeGreaterThanOrEqual(range.min);
    expect(pair.rtcpPort).toBeLessThanOrEqual(range.max);
    expect(pair.rtp.address()).toMatchObject({ address: '127.0.0.1', port: pair.rtpPort });
    expect(pair.rtcp.address()).toMatchObject({ address: '127.0.0.1', port: pair.rtcpPort });
    expect(ports.inUse).toBe(1);
    // Both ports are really taken.
    expect(await bindForeign(pair.rtpPort)).toBeNull();
    expect(await bindForeign(pair.rtcpPort)).toBeNull();
  });

  it('release closes both sockets and frees the ports; release is idempotent', async () => {
    const ports = allocator(await freeRange(4));
    const pair = await ports.allocate();
    ports.release(pair);
    ports.release(pair);
    expect(ports.inUse).toBe(0);
    const rtp = await bindForeign(pair.rtpPort);
    const rtcp = await bindForeign(pair.rtcpPort);
    expect(rtp).not.toBeNull();
    expect(rtcp).not.toBeNull();
    foreignSockets.push(rtp!, rtcp!);
  });

  it('goes round-robin: a just-released pair is not handed out again at once', async () => {
    const range = await freeRange(6); // three pairs
    const ports = allocator(range);
    const a = await ports.allocate();
    ports.release(a);
    const b = await ports.allocate();
    expect(b.rtpPort).not.toBe(a.rtpPort);
    ports.release(b);
    const c = await ports.allocate();
    expect(new Set([a.rtpPort, b.rtpPort, c.rtpPort]).size).toBe(3);
    ports.release(c);
    const d = await ports.allocate(); // wraps around
    expect(d.rtpPort).toBe(a.rtpPort);
  });

  it('rejects with RTP_PORTS_EXHAUSTED when every pair is in use, and recovers after a release', async () => {
    const ports = allocator(await freeRange(4)); // two pairs
    const first = await ports.allocate();
    const second = await ports.allocate();
    expect(ports.inUse).toBe(2);
    const error = await ports.allocate().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RtpPortsExhaustedError);
    expect((error as RtpPortsExhaustedError).code).toBe('RTP_PORTS_EXHAUSTED');
    ports.release(first);
    const third = await ports.allocate();
    expect(third.rtpPort).toBe(first.rtpPort);
    expect(second.rtpPort).not.toBe(first.rtpPort);
  });

  it('concurrent allocations get distinct pairs', async () => {
    const ports = allocator(await freeRange(10));
    const pairs = await Promise.all(Array.from({ length: 5 }, () => ports.allocate()));
    expect(new Set(pairs.map((pair) => pair.rtpPort)).size).toBe(5);
    await expect(ports.allocate()).rejects.toMatchObject({ code: 'RTP_PORTS_EXHAUSTED' });
  });

  it('skips a pair whose RTP port another socket holds', async () => {
    const range = await freeRange(4);
    const foreign = await bindForeign(range.min);
    expect(foreign).not.toBeNull();
    foreignSockets.push(foreign!);
    const ports = allocator(range);
    const pair = await ports.allocate();
    expect(pair.rtpPort).toBe(range.min + 2);
    await expect(ports.allocate()).rejects.toMatchObject({ code: 'RTP_PORTS_EXHAUSTED' });
  });

  it('skips a pair whose RTCP port another socket holds, without leaking its RTP socket', async () => {
    const range = await freeRange(4);
    const foreign = await bindForeign(range.min + 1);
    foreignSockets.push(foreign!);
    const ports = allocator(range);
    const pair = await ports.allocate();
    expect(pair.rtpPort).toBe(range.min + 2);
    // The RTP port of the skipped pair was closed again.
    const probe = await bindForeign(range.min);
    expect(probe).not.toBeNull();
    foreignSockets.push(probe!);
  });

  it('fails at once for an address that is not local', async () => {
    // 192.0.2.1 is TEST-NET-1 (RFC 5737): never a local address.
    const ports = new RtpPortAllocator({ address: '192.0.2.1', min: 20000, max: 20009 });
    const error = await ports.allocate().then(
      () => null,
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    expect(error?.code).toBe('EADDRNOTAVAIL');
    expect(ports.inUse).toBe(0);
  });

  it('the RTCP socket drains incoming RTCP', async () => {
    const ports = allocator(await freeRange(2));
    const pair: RtpSocketPair = await ports.allocate();
    expect(pair.rtcp.listenerCount('message')).toBeGreaterThan(0);
  });
});
