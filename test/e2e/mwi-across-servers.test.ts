/**
 * Message-waiting lights across servers: two whole vmaccess servers (embedded engine) on one
 * Postgres database, as behind a load balancer. A phone subscribed on server B must see the
 * deposits and deletes made on server A — through pg NOTIFY in A's committing transaction and B's
 * LISTEN connection — also after B's LISTEN connection was cut, for changes A made while B
 * could not listen (the resync after the reconnect), and for a reset through A's admin API.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { LISTEN_APPLICATION_NAME } from '../../src/messages/mailbox-changes.js';
import { encodePcmWav } from '../../src/messages/wav.js';
import { startServer, type RunningServer } from '../../src/server.js';
import { createApiToken, upsertOperator } from '../../src/store/accounts.js';
import { SipRequest } from '../../src/telephony/embedded/sip/index.js';
import { createPostgresTestDatabase, createTestDataDir } from '../integration/store/helpers.js';
import { freeEvenPortRange, freePort } from '../support/ports.js';
import { LogCapture } from '../support/test-server.js';
import { waitFor } from '../support/wait.js';
import { randomId, TestUac } from '../unit/sip/test-uac.js';

const DATABASE_URL = process.env.DATABASE_URL;
const wav = encodePcmWav(new Int16Array(12_000).fill(1000));
const ctx = { channel: 'admin' as const, actor: 'test', callId: null };

interface Node {
  readonly server: RunningServer;
  readonly sipPort: number;
  stop(): Promise<void>;
}

/** A whole server (demo tenant) on the given Postgres database, with its own DATA_DIR and ports. */
async function startNode(databaseUrl: string): Promise<Node> {
  const data = await createTestDataDir();
  const sipPort = await freePort();
  const rtp = await freeEvenPortRange(20);
  const config = loadConfig({
    SIP_ADDRESS: '127.0.0.1', SIP_PORT: String(sipPort), RTP_PORT_MIN: String(rtp.min), RTP_PORT_MAX: String(rtp.max),
    HTTP_ADDRESS: '127.0.0.1', HTTP_PORT: '0', DATA_DIR: data.dataDir, LOG_LEVEL: 'debug',
    DATABASE_URL: databaseUrl, PIN_PEPPER: 'e2e-test-pepper-0123456789', TRUSTED_SIP_PEERS: '127.0.0.1/32',
  }, { demo: true });
  const server = await startServer(config, { demo: true, logger: createLogger(config.logLevel, new LogCapture()) });
  return {
    server, sipPort,
    async stop() {
      await server.stop();
      await data.cleanup();
    },
  };
}

describe.skipIf(DATABASE_URL === undefined)('message-waiting lights across servers on one Postgres', () => {
  let database: { databaseUrl: string; drop(): Promise<void> };
  let a: Node;
  let b: Node;
  let admin: pg.Client;
  let phone: TestUac;
  const mwiCallId = randomId();
  const bodies = (): string[] => phone.received((m) => m instanceof SipRequest && m.method === 'NOTIFY' && m.callId === mwiCallId)
    .map((m) => m.body.toString('utf8'));
  const lastSays = (voice: string) => (): boolean => (bodies().at(-1) ?? '').includes(`Voice-Message: ${voice} `);
  /** The LISTEN connections of the servers on this database. */
  const listeners = async (): Promise<number[]> => (await admin.query<{ pid: number }>(
    'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [LISTEN_APPLICATION_NAME])).rows.map((r) => r.pid);

  beforeAll(async () => {
    database = await createPostgresTestDatabase();
    a = await startNode(database.databaseUrl);
    b = await startNode(database.databaseUrl);
    admin = new pg.Client({ connectionString: database.databaseUrl });
    await admin.connect();
    await waitFor(async () => (await listeners()).length === 2, 10_000, 'both servers listening');
    // 201's phone subscribes on server B (RFC 3842 over RFC 6665).
    phone = await TestUac.open(b.sipPort);
    phone.autoRespond('NOTIFY', 200, 'OK');
    await phone.request({
      method: 'SUBSCRIBE', uri: 'sip:201@demo.local', toUri: 'sip:201@demo.local', callId: mwiCallId, fromTag: randomId(), cseq: 1,
      headers: [`Contact: ${phone.contact}`, 'Event: message-summary', 'Expires: 3600', 'Accept: application/simple-message-summary'],
    });
    expect((await phone.response(200, mwiCallId, 'SUBSCRIBE')).status).toBe(200);
    await waitFor(lastSays('0/0'), 5000, 'the first NOTIFY, 0/0');
  });
  afterAll(async () => {
    await phone?.close();
    await admin?.end();
    await a?.stop();
    await b?.stop();
    await database?.drop();
  });

  it('a deposit and a delete on server A reach the phone subscribed on server B', async () => {
    const messages = a.server.core.messages;
    expect((await messages.deposit({ domain: 'demo.local', mailbox: '201', caller: '5551234', wav, durationMs: 1500 })).result).toBe('saved');
    await waitFor(lastSays('1/0'), 10_000, 'B: NOTIFY 1/0');
    expect(bodies().at(-1)).toContain('Messages-Waiting: yes');
    const [m] = await messages.list('demo.local', '201');
    expect(await messages.delete('demo.local', '201', m!.id, ctx)).toBe(true);
    await waitFor(lastSays('0/0'), 10_000, 'B: NOTIFY 0/0');
  });

  it('B\'s LISTEN connection cut: it reconnects and the next change on A still reaches the phone', async () => {
    const before = await listeners();
    await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [LISTEN_APPLICATION_NAME]);
    await waitFor(async () => {
      const now = await listeners();
      return now.length === 2 && now.every((pid) => !before.includes(pid));
    }, 20_000, 'both servers listening again');
    expect((await a.server.core.messages.deposit({ domain: 'demo.local', mailbox: '201', caller: '5551234', wav, durationMs: 1500 })).result).toBe('saved');
    await waitFor(lastSays('1/0'), 10_000, 'B: NOTIFY 1/0 after the reconnect');
  });

  it('a change A makes while B cannot listen reaches the phone once B is back (resync)', async () => {
    const notified = bodies().length;
    const name = new URL(database.databaseUrl).pathname.slice(1);
    // ALTER DATABASE … ALLOW_CONNECTIONS is refused from inside that database.
    const outside = new pg.Client({ connectionString: DATABASE_URL });
    await outside.connect();
    // A keeps a pooled connection; nobody gets a new one until the database allows it again.
    await a.server.core.db.query('SELECT 1');
    await outside.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    try {
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()', [LISTEN_APPLICATION_NAME]);
      await waitFor(async () => (await listeners()).length === 0, 10_000, 'nobody listening');
      const [m] = await a.server.core.messages.list('demo.local', '201');
      expect(await a.server.core.messages.markSaved('demo.local', '201', m!.id)).toBe(true);
    } finally {
      await outside.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await outside.end();
    }
    // No NOTIFY reached B: only the resync after its reconnect can tell the phone.
    await waitFor(lastSays('0/1'), 30_000, 'B: NOTIFY 0/1 after the resync');
    expect(bodies().length).toBeGreaterThan(notified);
  }, 60_000);

  it('a reset through server A\'s admin API (committed outside the message service) reaches the phone on B', async () => {
    const { core, http } = a.server;
    const root = await upsertOperator(core.db, 'root', await core.passwords.hash('root-password-123'));
    const token = randomBytes(32).toString('base64url');
    await createApiToken(core.db, root.id, 'mwi across servers', token);
    const res = await fetch(`http://127.0.0.1:${http.port}/api/domains/demo.local/mailboxes/201/reset`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ confirmMessages: 1 }),
    });
    expect(res.status).toBe(200);
    await waitFor(lastSays('0/0'), 10_000, 'B: NOTIFY 0/0 after the reset on A');
  });
});
