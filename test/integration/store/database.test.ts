import { createServer, type Socket } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../../src/log.js';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';
import { AccessCodeService } from '../../../src/mailbox/access-code-service.js';
import { openDatabase, type Database } from '../../../src/store/database.js';
import { describeEachDatabase, TEST_PEPPER, withTestDatabase, type TestDatabase } from './helpers.js';
import { expectNoSecretsInLogs } from '../../support/secrets.js';

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger('trace', new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }));
  return { logger, lines };
}

describeEachDatabase('database', (variant) => {
  let t: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    t = await withTestDatabase(variant, { migrate: false });
    db = t.db;
    await db.query('CREATE TABLE t (id integer PRIMARY KEY, v text NOT NULL)');
  });
  afterAll(async () => { await t?.cleanup(); });

  it('reports its kind and answers ping', async () => {
    expect(db.kind).toBe(variant);
    await expect(db.ping()).resolves.toBeUndefined();
  });

  it('binds parameters (never interpolates them)', async () => {
    await db.query('INSERT INTO t (id, v) VALUES ($1, $2)', [1, "x'); DROP TABLE t; --"]);
    expect(await db.query('SELECT v FROM t WHERE id = $1', [1])).toEqual([{ v: "x'); DROP TABLE t; --" }]);
  });

  it('commits a transaction that resolves, with its result', async () => {
    const result = await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t (id, v) VALUES ($1, $2)', [2, 'two']);
      await tx.exec(`INSERT INTO t (id, v) VALUES (3, 'three'); INSERT INTO t (id, v) VALUES (4, 'four');`);
      return 'done';
    });
    expect(result).toBe('done');
    expect(await db.query('SELECT id FROM t WHERE id IN (2, 3, 4) ORDER BY id')).toEqual([{ id: 2 }, { id: 3 }, { id: 4 }]);
  });

  it('rolls back everything when the body throws after writing, and rethrows', async () => {
    const boom = new Error('boom after update');
    await expect(db.transaction(async (tx) => {
      await tx.query(`UPDATE t SET v = 'changed' WHERE id = 2`);
      await tx.query(`INSERT INTO t (id, v) VALUES (5, 'five')`);
      throw boom;
    })).rejects.toBe(boom);
    expect(await db.query('SELECT v FROM t WHERE id = 2')).toEqual([{ v: 'two' }]);
    expect(await db.query('SELECT 1 FROM t WHERE id = 5')).toEqual([]);
  });

  it('rolls back on an SQL error and keeps the SQL error code (not STORE_UNAVAILABLE)', async () => {
    const err = await db.transaction(async (tx) => {
      await tx.query(`INSERT INTO t (id, v) VALUES (6, 'six')`);
      await tx.query(`INSERT INTO t (id, v) VALUES (6, 'again')`);
    }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('23505');
    expect(await db.query('SELECT 1 FROM t WHERE id = 6')).toEqual([]);
    await expect(db.query('SELEC 1')).rejects.toMatchObject({ code: '42601' });
  });

  it('keeps working after a failed transaction', async () => {
    await db.transaction(async (tx) => { await tx.query(`INSERT INTO t (id, v) VALUES (7, 'seven')`); });
    expect(await db.query('SELECT v FROM t WHERE id = 7')).toEqual([{ v: 'seven' }]);
  });

  if (variant === 'postgres') {
    it('logs (does not throw) when the server drops an idle pooled connection, then reconnects', async () => {
      const { logger, lines } = captureLogger();
      const own = await openDatabase({ databaseUrl: t.databaseUrl, dataDir: t.dataDir, logger });
      try {
        const [{ pid }] = await own.query<{ pid: number }>('SELECT pg_backend_pid() AS pid') as [{ pid: number }];
        await db.query('SELECT pg_terminate_backend($1)', [pid]);
        for (let i = 0; i < 100 && !lines.some((l) => l.includes('idle connection lost')); i++) {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(lines.some((l) => l.includes('idle connection lost'))).toBe(true);
        await expect(own.ping()).resolves.toBeUndefined();
      } finally {
        await own.close();
      }
    });

    it('a connection lost inside a transaction fails it with STORE_UNAVAILABLE, and the pool recovers', async () => {
      const { logger } = captureLogger();
      const own = await openDatabase({ databaseUrl: t.databaseUrl, dataDir: t.dataDir, logger });
      try {
        const err = await own.transaction(async (tx) => {
          const [{ pid }] = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid') as [{ pid: number }];
          await tx.query(`INSERT INTO t (id, v) VALUES (40, 'lost')`);
          await db.query('SELECT pg_terminate_backend($1)', [pid]);
          await tx.query('SELECT 1');
        }).catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'STORE_UNAVAILABLE' });
        expect(await own.query('SELECT 1 FROM t WHERE id = 40')).toEqual([]);
        await expect(own.ping()).resolves.toBeUndefined();
      } finally {
        await own.close();
      }
    });
  }
});

describe('an unreachable Postgres', () => {
  let db: Database;
  beforeAll(async () => {
    const port = await closedPort();
    db = await openDatabase({ databaseUrl: `postgres://nobody@127.0.0.1:${port}/none`, dataDir: ':memory:', logger: silentLogger });
  });
  afterAll(async () => { await db.close(); });

  it('fails with code STORE_UNAVAILABLE for query, transaction and ping', async () => {
    await expect(db.ping()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(db.query('SELECT 1')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(db.transaction((tx) => tx.query('SELECT 1'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('makes the access-code service answer "unavailable" without throwing or logging the code', async () => {
    const { logger, lines } = captureLogger();
    const service = new AccessCodeService({ db, hasher: new AccessCodeHasher(TEST_PEPPER), logger });
    const ctx = { channel: 'phone' as const, actor: 'sip:alice@demo.local', callId: 'call-x' };
    expect(await service.verifyLogin('demo.local', '201', '4826', ctx)).toEqual({ result: 'unavailable' });
    expect(await service.hasAccessCode('demo.local', '201')).toBe('unavailable');
    expect(await service.checkNewAccessCode('demo.local', '201', '3865')).toEqual({ result: 'unavailable' });
    expect(await service.changeAccessCode('demo.local', '201', '3865', ctx)).toEqual({ result: 'unavailable' });
    expect(lines.length).toBeGreaterThan(0);
    const text = lines.map((l) => JSON.stringify({ ...JSON.parse(l), time: 0, pid: 0 })).join('\n');
    expect(text).toContain('STORE_UNAVAILABLE');
    // As whole numbers: the random closed port in the error text may contain the digits.
    expectNoSecretsInLogs(lines.map((l) => JSON.parse(l) as Record<string, unknown>), ['4826', '3865']);
  });
});

describe('a Postgres that accepts connections but never answers', () => {
  it('fails with STORE_UNAVAILABLE (connect timeout) instead of hanging the caller', async () => {
    const sockets = new Set<Socket>();
    const server = createServer((socket) => { sockets.add(socket); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    const db = await openDatabase({ databaseUrl: `postgres://nobody@127.0.0.1:${port}/none`, dataDir: ':memory:', logger: silentLogger });
    try {
      await expect(db.ping()).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    } finally {
      await db.close();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('embedded store on disk', () => {
  let dataDir: string;
  beforeAll(async () => { dataDir = await mkdtemp(join(tmpdir(), 'vmaccess-pglite-')); });
  afterAll(async () => { await rm(dataDir, { recursive: true, force: true }); });

  it('keeps data across a reopen, refuses a second opener, and takes over a stale lock', async () => {
    const first = await openDatabase({ dataDir, logger: silentLogger });
    try {
      await first.query('CREATE TABLE kept (v text)');
      await first.query(`INSERT INTO kept VALUES ('yes')`);
      await expect(openDatabase({ dataDir, logger: silentLogger }))
        .rejects.toMatchObject({ code: 'STORE_LOCKED', message: expect.stringContaining('in use by another vmaccess process') });
    } finally {
      await first.close();
    }
    await expect(first.query('SELECT 1')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });

    // A lock left by a process that is gone (pid far above pid_max) does not block.
    await writeFile(join(dataDir, 'pglite.lock'), '999999999\n');
    const second = await openDatabase({ dataDir, logger: silentLogger });
    try {
      expect(await second.query('SELECT v FROM kept')).toEqual([{ v: 'yes' }]);
    } finally {
      await second.close();
    }
  });
});
