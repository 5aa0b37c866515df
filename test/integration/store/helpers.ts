import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe } from 'vitest';
import { silentLogger, type Logger } from '../../../src/log.js';
import { MEMORY_DATA_DIR, openDatabase, type Database } from '../../../src/store/database.js';
import { migrate } from '../../../src/store/migrate.js';
import { createPostgresTestDatabase } from '../../support/postgres.js';

export { createPostgresTestDatabase };

/**
 * Shared by store integration tests and end-to-end tests: a fresh, private database per test
 * file, on PGlite always and on real Postgres when DATABASE_URL is set (a new database
 * `vmaccess_test_<random>` created through DATABASE_URL and dropped afterwards).
 */

export type TestDatabaseVariant = 'pglite' | 'postgres';

/** A fixed pepper for tests (at least 16 characters). */
export const TEST_PEPPER = Buffer.from('vmaccess-test-pepper-0123456789abcdef', 'utf8');

let skipNoticePrinted = false;

/** The variants this machine can run: PGlite, plus Postgres when DATABASE_URL is set. */
export function testDatabaseVariants(): TestDatabaseVariant[] {
  if (process.env.DATABASE_URL) return ['pglite', 'postgres'];
  if (!skipNoticePrinted) {
    skipNoticePrinted = true;
    console.log('DATABASE_URL is not set: the Postgres variant of the store tests is skipped (PGlite only)');
  }
  return ['pglite'];
}

/** `describe` once per available variant, named e.g. "access codes [postgres]". */
export function describeEachDatabase(name: string, fn: (variant: TestDatabaseVariant) => void): void {
  for (const variant of testDatabaseVariants()) {
    describe(`${name} [${variant}]`, () => fn(variant));
  }
}

export interface TestDatabase {
  variant: TestDatabaseVariant;
  /** Set for the Postgres variant: the URL of the fresh database (give it to a server process). */
  databaseUrl?: string;
  /** A private temporary directory (or ':memory:' for in-memory PGlite). */
  dataDir: string;
  db: Database;
  /** Closes the database, drops the Postgres database, removes the temporary directory. */
  cleanup(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Apply the migrations (default true). */
  migrate?: boolean;
  /** PGlite in a temporary directory instead of memory (default false). */
  onDisk?: boolean;
  logger?: Logger;
}

/** Opens a fresh database of the given variant; call `cleanup()` in afterAll. */
export async function withTestDatabase(
  variant: TestDatabaseVariant = 'pglite', opts: TestDatabaseOptions = {},
): Promise<TestDatabase> {
  const logger = opts.logger ?? silentLogger;
  if (variant === 'postgres') {
    const pgdb = await createPostgresTestDatabase();
    const dataDir = await mkdtemp(join(tmpdir(), 'vmaccess-test-'));
    let db: Database;
    try {
      db = await openDatabase({ databaseUrl: pgdb.databaseUrl, dataDir, logger });
      if (opts.migrate !== false) await migrate(db, logger);
    } catch (err) {
      await pgdb.drop();
      await rm(dataDir, { recursive: true, force: true });
      throw err;
    }
    return {
      variant,
      databaseUrl: pgdb.databaseUrl,
      dataDir,
      db,
      async cleanup() {
        await db.close().catch(() => undefined);
        await pgdb.drop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  }

  const dataDir = opts.onDisk ? await mkdtemp(join(tmpdir(), 'vmaccess-test-')) : MEMORY_DATA_DIR;
  const removeDir = async (): Promise<void> => {
    if (dataDir !== MEMORY_DATA_DIR) await rm(dataDir, { recursive: true, force: true });
  };
  let db: Database;
  try {
    db = await openDatabase({ dataDir, logger });
    if (opts.migrate !== false) await migrate(db, logger);
  } catch (err) {
    await removeDir();
    throw err;
  }
  return {
    variant,
    dataDir,
    db,
    async cleanup() {
      await db.close().catch(() => undefined);
      await removeDir();
    },
  };
}

/** A private temporary DATA_DIR for a server process using embedded PGlite (not opened here). */
export async function createTestDataDir(): Promise<{ dataDir: string; cleanup(): Promise<void> }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'vmaccess-test-'));
  return { dataDir, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
}
