import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

interface Cut {
  /** Client → server byte strings to see, in this order, on one connection; the last is never forwarded. */
  readonly sequence: readonly string[];
  readonly resolve: () => void;
}

/**
 * A loopback TCP proxy in front of a real server (Redis, Postgres) that a test can take away —
 * every connection through it drops — and bring back on the same port: an outage of the
 * dependency without stopping the shared server every other test uses.
 *
 * `cutAt` takes it away at a chosen point of a conversation rather than between two: e.g. in a
 * Postgres transaction after one statement has run and before the next one (or COMMIT) is sent,
 * which is the outage an all-or-nothing change has to survive.
 */
export class FlakyProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private cut: Cut | null = null;
  port = 0;

  constructor(private readonly upstream: { host: string; port: number }) {}

  /**
   * An open proxy in front of the server `url` names (at its port, or `defaultPort`), and the
   * same URL with the proxy's port: what the code under test is given instead.
   */
  static async inFrontOf(url: string, defaultPort: number): Promise<{ proxy: FlakyProxy; url: string }> {
    const upstream = new URL(url);
    const proxy = new FlakyProxy({ host: upstream.hostname, port: Number(upstream.port || defaultPort) });
    await proxy.open();
    const proxied = new URL(url);
    proxied.port = String(proxy.port);
    return { proxy, url: proxied.toString() };
  }

  async open(): Promise<void> {
    const server = createServer((downstream) => {
      const up = connect(this.upstream.port, this.upstream.host);
      this.sockets.add(downstream).add(up);
      const drop = (): void => { downstream.destroy(); up.destroy(); this.sockets.delete(downstream); this.sockets.delete(up); };
      downstream.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
      // How far this connection has come through the armed cut's sequence.
      let seen = 0;
      downstream.on('data', (chunk: Buffer) => {
        const cut = this.cut;
        if (cut !== null) {
          // The protocols proxied here put each statement or command in one write; latin1 keeps
          // every byte as one character, so a search never fails on binary framing around it.
          const text = chunk.toString('latin1');
          while (seen < cut.sequence.length - 1 && text.includes(cut.sequence[seen]!)) seen++;
          if (seen === cut.sequence.length - 1 && text.includes(cut.sequence[seen]!)) {
            this.cut = null;
            void this.close().then(cut.resolve);
            return;
          }
        }
        up.write(chunk);
      });
      up.pipe(downstream);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /**
   * Arms a cut: on the first connection whose client sends every string of `sequence` in order,
   * the message holding the last one is not forwarded, and the proxy goes away as with close().
   * Resolves once it has.
   */
  cutAt(sequence: readonly string[]): Promise<void> {
    if (sequence.length === 0) throw new Error('cutAt: empty sequence');
    return new Promise((resolve) => { this.cut = { sequence, resolve }; });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
