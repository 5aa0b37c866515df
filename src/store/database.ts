import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import type { Logger } from '../log.js';
import { acquireStoreLock, type StoreLock } from './store-lock.js';
import { isUnavailableError, StoreUnavailableError } from './errors.js';

export { StoreUnavailableError, StoreLockedError, isStoreUnavailable } from './errors.js';

/** Anything that runs one parameterised SQL statement: the database itself or an open transaction. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
}

/**
 * The handle a transaction body receives. `exec` runs a multi-statement script without
 * parameters (migrations) and, unlike `query`, without the short per-query client timeout: a
 * migration may legitimately take minutes. Limit its server-side time with SET LOCAL.
 */
export interface Transaction extends Queryable {
  exec(script: string): Promise<void>;
}

export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws (and rethrows). */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Resolves when the store answers a trivial query; rejects with STORE_UNAVAILABLE otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** Postgres connection string; unset → embedded PGlite. */
  databaseUrl?: string | undefined;
  /** DATA_DIR; PGlite lives in `dataDir/pglite`. `':memory:'` keeps PGlite in memory (tests). */
  dataDir: string;
  logger: Logger;
  /** Postgres pool size (default 10). */
  maxConnections?: number;
}

export const MEMORY_DATA_DIR = ':memory:';

/**
 * Opens the store: Postgres through a `pg` pool when `databaseUrl` is given, else PGlite in
 * `dataDir/pglite` (or in memory). Both run the same SQL; callers never see the difference.
 */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  if (opts.databaseUrl !== undefined && opts.databaseUrl !== '') {
    return openPostgres(opts.databaseUrl, opts.logger, opts.maxConnections ?? 10);
  }
  return openPglite(opts.dataDir, opts.logger);
}

// ---------------------------------------------------------------------------------------------
// Postgres (pg)

/** Time to get a connection before the store counts as unreachable. */
const CONNECT_TIMEOUT_MS = 3_000;
/** Server-side limit per statement; a hung statement must not hold a call for long. */
const STATEMENT_TIMEOUT_MS = 5_000;
/** Client-side limit per query: covers a server that stops answering without closing the socket. */
const QUERY_TIMEOUT_MS = 7_000;
/** Client-side limit for `Transaction.exec` scripts (migrations). */
const SCRIPT_TIMEOUT_MS = 15 * 60_000;

async function openPostgres(databaseUrl: string, logger: Logger, max: number): Promise<Database> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: STATEMENT_TIMEOUT_MS,
    lock_timeout: STATEMENT_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'vmaccess',
  });
  // An idle client whose server went away emits 'error' on the pool; unhandled it would crash the
  // process. The pool drops that client by itself; the next query reconnects.
  pool.on('error', (err) => {
    logger.warn({ error: describeError(err) }, 'postgres: idle connection lost');
  });

  const run = async <R>(
    client: pg.Pool | pg.PoolClient, sql: string, params?: unknown[], queryTimeout = QUERY_TIMEOUT_MS,
  ): Promise<R[]> => {
    try {
      const result = await client.query({ text: sql, values: params, query_timeout: queryTimeout } as pg.QueryConfig);
      return result.rows as R[];
    } catch (err) {
      throw wrapError(err);
    }
  };

  const db: Database = {
    kind: 'postgres',
    query: (sql, params) => run(pool, sql, params),
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw wrapError(err);
      }
      // All statements of one transaction go through this one client: BEGIN..COMMIT are
      // per-connection state in Postgres.
      let releaseError: Error | undefined;
      // pg-pool removes its own 'error' listener from a checked-out client; without this one a
      // connection lost mid-transaction would be an unhandled 'error' event and end the process.
      // The pending query fails on its own; the client must not go back to the pool.
      const onClientError = (err: Error): void => {
        releaseError = err;
        logger.warn({ error: describeError(err) }, 'postgres: connection lost during a transaction');
      };
      client.on('error', onClientError);
      try {
        await run(client, 'BEGIN');
        const tx: Transaction = {
          query: (sql, params) => run(client, sql, params),
          exec: async (script) => { await run(client, script, undefined, SCRIPT_TIMEOUT_MS); },
        };
        const result = await fn(tx);
        await run(client, 'COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          // The connection is in an unknown state; destroy it instead of returning it to the pool.
          releaseError = rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
        }
        throw err;
      } finally {
        client.removeListener('error', onClientError);
        client.release(releaseError);
      }
    },
    async ping() {
      await run(pool, 'SELECT 1');
    },
    async close() {
      await pool.end();
    },
  };
  return db;
}

// ---------------------------------------------------------------------------------------------
// PGlite (embedded Postgres compiled to WASM)

async function openPglite(dataDir: string, logger: Logger): Promise<Database> {
  let lock: StoreLock | undefined;
  let pglite: PGlite;
  if (dataDir === MEMORY_DATA_DIR) {
    pglite = new PGlite();
  } else {
    const dir = join(dataDir, 'pglite');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // PGlite is a single-process database: a second process opening the same directory would
    // corrupt it. The lock file turns that into a clear refusal (CONTRACT: "refuse with a clear
    // message").
    lock = acquireStoreLock(dataDir);
    try {
      pglite = new PGlite(dir);
    } catch (err) {
      lock.release();
      throw err;
    }
  }
  try {
    await pglite.waitReady;
  } catch (err) {
    lock?.release();
    throw new StoreUnavailableError('the embedded store could not be opened', err);
  }
  logger.debug({ store: 'pglite', inMemory: dataDir === MEMORY_DATA_DIR }, 'store opened');

  let closed = false;
  const guard = (): void => {
    if (closed) throw new StoreUnavailableError('the store is closed');
  };
  const run = async <R>(q: Pick<PGlite, 'query'>, sql: string, params?: unknown[]): Promise<R[]> => {
    guard();
    try {
      const result = await q.query<R>(sql, params);
      return result.rows;
    } catch (err) {
      throw wrapError(err);
    }
  };

  return {
    kind: 'pglite',
    // PGlite's own query() waits for a running transaction to finish (it runs under the same
    // mutex), so statements outside a transaction never slip into it. A transaction body must
    // use `tx`, never `db`, or it waits for itself.
    query: (sql, params) => run(pglite, sql, params),
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      guard();
      try {
        return await pglite.transaction(async (ptx) => fn({
          query: (sql, params) => run(ptx, sql, params),
          exec: async (script) => {
            try {
              await ptx.exec(script);
            } catch (err) {
              throw wrapError(err);
            }
          },
        }));
      } catch (err) {
        throw wrapError(err);
      }
    },
    async ping() {
      await run(pglite, 'SELECT 1');
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await pglite.close();
      } finally {
        lock?.release();
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------

/** Unreachable-store failures become StoreUnavailableError; SQL errors pass through unchanged. */
function wrapError(err: unknown): unknown {
  if (err instanceof StoreUnavailableError) return err;
  if (isUnavailableError(err)) return new StoreUnavailableError('the store is unreachable', err);
  return err;
}

/**
 * An error as safe log fields: name, code and message only — no SQL parameters, no row details
 * (they could hold digits). The code is logged as `errorCode` because the logger redacts every
 * `code` key (src/log.ts). One level of `cause` is kept: it says why the store was unavailable.
 */
export interface LoggedError {
  name: string;
  errorCode?: string;
  message: string;
  cause?: LoggedError;
}

export function describeError(err: unknown, depth = 0): LoggedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as { code?: unknown }).code;
  const cause = depth === 0 && err.cause !== undefined ? describeError(err.cause, 1) : undefined;
  return {
    name: err.name,
    ...(typeof code === 'string' ? { errorCode: code } : {}),
    message: err.message,
    ...(cause ? { cause } : {}),
  };
}
