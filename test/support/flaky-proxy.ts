import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP proxy in front of a real server (Redis, Postgres) that a test can take away —
 * every connection through it drops — and bring back on the same port: an outage of the
 * dependency without stopping the shared server every other test uses.
 */
export class FlakyProxy {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly upstream: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((downstream) => {
      const up = connect(this.upstream.port, this.upstream.host);
      this.sockets.add(downstream).add(up);
      const drop = (): void => { downstream.destroy(); up.destroy(); this.sockets.delete(downstream); this.sockets.delete(up); };
      downstream.on('error', drop).on('close', drop);
      up.on('error', drop).on('close', drop);
      downstream.pipe(up);
      up.pipe(downstream);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
