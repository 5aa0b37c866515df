import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { migrationsDir } from '../paths.js';
import type { Database } from './database.js';

/**
 * Key of the transaction-scoped advisory lock that serialises migrations between servers
 * starting at the same time against one Postgres. Any constant works; this one reads "vmaccess".
 */
const MIGRATION_LOCK_KEY = '7613426533';

/** Migration files are `NNN_description.sql`, applied in ascending NNN order. */
const FILE_PATTERN = /^(\d{3,})_[a-z0-9_]+\.sql$/;

export interface Migration {
  readonly version: string;
  readonly name: string;
  readonly sql: string;
  readonly checksum: string;
}

export async function loadMigrations(dir: string = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.sql'));
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) throw new Error(`migration file name ${file} does not match NNN_name.sql`);
    const sql = await readFile(join(dir, file), 'utf8');
    migrations.push({
      version: match[1] as string,
      name: file,
      sql,
      checksum: createHash('sha256').update(sql).digest('hex'),
    });
  }
  migrations.sort((a, b) => Number(a.version) - Number(b.version));
  for (let i = 1; i < migrations.length; i++) {
    if (Number(migrations[i]?.version) === Number(migrations[i - 1]?.version)) {
      throw new Error(`two migrations share version ${migrations[i]?.version}`);
    }
  }
  return migrations;
}

/**
 * Applies every migration not yet recorded in `schema_migrations`, each in its own transaction,
 * and returns the file names applied now. Safe to run again (nothing to do) and safe to run from
 * several servers at once: each transaction first takes `pg_advisory_xact_lock`, so the second
 * server waits, then sees the version recorded and skips it.
 */
export async function migrate(db: Database, logger: Logger, dir: string = migrationsDir): Promise<string[]> {
  const migrations = await loadMigrations(dir);
  const applied: string[] = [];
  for (const migration of migrations) {
    const ran = await db.transaction(async (tx) => {
      // The store's short per-statement limits suit calls, not schema changes (or waiting for
      // another server's migration): lift them for this transaction only.
      await tx.exec(`SET LOCAL statement_timeout = '10min'; SET LOCAL lock_timeout = '10min';
        SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_KEY});`);
      // Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide in
      // Postgres' catalog.
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version    text PRIMARY KEY,
        name       text NOT NULL,
        checksum   text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const done = await tx.query<{ checksum: string }>(
        'SELECT checksum FROM schema_migrations WHERE version = $1', [migration.version]);
      const existing = done[0];
      if (existing) {
        if (existing.checksum !== migration.checksum) {
          logger.warn({ migration: migration.name }, 'migration file changed after it was applied; not re-run');
        }
        return false;
      }
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)',
        [migration.version, migration.name, migration.checksum]);
      return true;
    });
    if (ran) {
      logger.info({ migration: migration.name }, 'migration applied');
      applied.push(migration.name);
    }
  }
  return applied;
}
