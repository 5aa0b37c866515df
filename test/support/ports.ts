import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * A port free for both UDP and TCP on 127.0.0.1 right now (the OS picks it; we close and hand
 * it over). Used for peers such as sipp that must be told a port up front.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createSocket('udp4');
      s.once('error', reject);
      s.bind(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const tcpFree = await new Promise<boolean>((resolve) => {
      const t = createServer();
      t.once('error', () => resolve(false));
      t.listen(port, '127.0.0.1', () => t.close(() => resolve(true)));
    });
    if (tcpFree) return port;
  }
  throw new Error('no free port found');
}

/** An even port with its odd neighbour free (RTP/RTCP, or a sipp media port pair). */
export async function freeEvenPortRange(size: number): Promise<{ min: number; max: number }> {
  // Random base in a high range, probed for the whole block.
  for (let attempt = 0; attempt < 50; attempt++) {
    const min = 20000 + 2 * Math.floor(Math.random() * 10000);
    const max = min + size - 1;
    if (max > 60999) continue;
    let ok = true;
    for (let p = min; p <= max && ok; p++) {
      ok = await new Promise<boolean>((resolve) => {
        const s = createSocket('udp4');
        s.once('error', () => resolve(false));
        s.bind(p, '127.0.0.1', () => s.close(() => resolve(true)));
      });
    }
    if (ok) return { min, max };
  }
  throw new Error('no free port range found');
}
