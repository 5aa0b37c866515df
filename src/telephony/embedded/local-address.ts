/**
 * Which of our addresses to put in SDP (c=) and Contact when we listen on a wildcard address.
 * A UDP socket "connected" to the peer makes the kernel pick the source address of the route
 * towards it — no packet is sent. This is the "something better known" of CONTRACT's
 * RTP_ADDRESS default; 127.0.0.1 when even that fails.
 */
import { createSocket } from 'node:dgram';
import { isIP } from 'node:net';

const cache = new Map<string, { address: string; at: number }>();
const CACHE_MS = 60_000;
const CACHE_MAX = 1024;

export async function localAddressToward(remote: string): Promise<string> {
  const family = isIP(remote);
  if (family === 0) return '127.0.0.1';
  const cached = cache.get(remote);
  if (cached !== undefined && Date.now() - cached.at < CACHE_MS) return cached.address;
  const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
  try {
    const address = await new Promise<string>((resolve) => {
      socket.once('error', () => resolve(family === 6 ? '::1' : '127.0.0.1'));
      // Port 9 (discard): only the route lookup matters.
      socket.connect(9, remote, () => resolve(socket.address().address));
    });
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(remote, { address, at: Date.now() });
    return address;
  } finally {
    socket.close();
  }
}
