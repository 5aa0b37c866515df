import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';
import {
  createPostgresTestDatabase, createTestDataDir, type TestDatabaseVariant,
} from '../integration/store/helpers.js';
import { freeEvenPortRange, freePort } from './ports.js';

/** Collects the server's JSON log lines so tests can assert what was (not) logged. */
export class LogCapture extends Writable {
  readonly lines: string[] = [];
  private partial = '';

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const text = this.partial + chunk.toString('utf8');
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    this.lines.push(...parts.filter((l) => l !== ''));
    done();
  }

  records(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface TestServer {
  readonly server: RunningServer;
  readonly config: Config;
  readonly sipTarget: string;
  readonly logs: LogCapture;
  readonly variant: TestDatabaseVariant;
  stop(): Promise<void>;
}

/**
 * Starts a whole vmaccess server in this process on free loopback ports, with the demo tenant,
 * on a fresh store of the given variant (PGlite in a temp DATA_DIR, or a fresh Postgres database).
 */
export async function startTestServer(
  variant: TestDatabaseVariant, env: Record<string, string> = {},
): Promise<TestServer> {
  const data = await createTestDataDir();
  const pgdb = variant === 'postgres' ? await createPostgresTestDatabase() : null;
  const sipPort = await freePort();
  const rtp = await freeEvenPortRange(40);
  const config = loadConfig({
    SIP_ADDRESS: '127.0.0.1',
    SIP_PORT: String(sipPort),
    RTP_PORT_MIN: String(rtp.min),
    RTP_PORT_MAX: String(rtp.max),
    HTTP_ADDRESS: '127.0.0.1',
    HTTP_PORT: '0',
    DATA_DIR: data.dataDir,
    LOG_LEVEL: 'trace',
    ...(pgdb !== null ? { DATABASE_URL: pgdb.databaseUrl, PIN_PEPPER: 'e2e-test-pepper-0123456789' } : {}),
    ...env,
  }, { demo: true });
  const logs = new LogCapture();
  const logger = createLogger(config.logLevel, logs);
  let server: RunningServer;
  try {
    server = await startServer(config, { demo: true, logger });
  } catch (err) {
    await pgdb?.drop();
    await data.cleanup();
    throw err;
  }
  return {
    server, config, logs, variant,
    sipTarget: `127.0.0.1:${sipPort}`,
    async stop() {
      await server.stop();
      await pgdb?.drop();
      await data.cleanup();
    },
  };
}
