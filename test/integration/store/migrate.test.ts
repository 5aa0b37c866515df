import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { openDatabase, type Database } from '../../../src/store/database.js';
import { loadMigrations, migrate } from '../../../src/store/migrate.js';
import { describeEachDatabase, withTestDatabase, type TestDatabase } from './helpers.js';

const TABLES = [
  'access_code_credentials', 'access_code_history', 'access_numbers', 'api_tokens', 'audit_events', 'auto_attendant_options',
  'domains', 'mailbox_members', 'mailboxes', 'message_audio', 'messages', 'operators', 'portal_accounts', 'portal_sessions', 'schema_migrations', 'users',
];
const MIGRATIONS = ['001_initial.sql', '002_portal_and_messages.sql', '003_account_audit.sql', '004_message_folders_and_audio.sql'];
const VERSIONS = ['001', '002', '003', '004'];

describeEachDatabase('migrations', (variant) => {
  let t: TestDatabase;
  let db: Database;
  beforeAll(async () => {
    t = await withTestDatabase(variant, { migrate: false });
    db = t.db;
  });
  afterAll(async () => { await t?.cleanup(); });

  it('two servers migrating a fresh database at once apply each migration exactly once', async () => {
    // Postgres: a second pool is a second server; the advisory lock makes one wait for the other.
    const second = t.databaseUrl ? await openDatabase({ databaseUrl: t.databaseUrl, dataDir: t.dataDir, logger: silentLogger }) : db;
    try {
      const [a, b] = await Promise.all([migrate(db, silentLogger), migrate(second, silentLogger)]);
      expect([...a, ...b].sort()).toEqual(MIGRATIONS);
    } finally {
      if (second !== db) await second.close();
    }
  });

  it('a second run applies nothing and changes nothing', async () => {
    expect(await migrate(db, silentLogger)).toEqual([]);
    expect(await migrate(db, silentLogger)).toEqual([]);
    const rows = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(VERSIONS);
  });

  it('creates every table', async () => {
    const rows = await db.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
    expect(rows.map((r) => r.table_name)).toEqual(TABLES);
  });

  it('enforces the checks and keys the data relies on', async () => {
    const bad = async (sql: string, params: unknown[] = []): Promise<string | undefined> => {
      const err = await db.transaction((tx) => tx.query(sql, params)).then(() => undefined, (e: { code?: string }) => e);
      return (err as { code?: string } | undefined)?.code;
    };
    const domain = await db.query<{ id: number }>(`INSERT INTO domains (name) VALUES ('checks.test') RETURNING id`);
    const d = domain[0]?.id;
    const defaults = await db.query(`SELECT access_code_min_length, access_code_max_length FROM domains WHERE id = $1`, [d]);
    expect(defaults).toEqual([{ access_code_min_length: 4, access_code_max_length: 10 }]);

    // 23514 check_violation, 23505 unique_violation, 23503 foreign_key_violation
    expect(await bad(`INSERT INTO domains (name, access_code_min_length) VALUES ('a.test', 3)`)).toBe('23514');
    expect(await bad(`INSERT INTO domains (name, access_code_min_length, access_code_max_length) VALUES ('a.test', 8, 6)`)).toBe('23514');
    expect(await bad(`INSERT INTO domains (name, access_code_max_length) VALUES ('a.test', 21)`)).toBe('23514');
    expect(await bad(`INSERT INTO domains (name) VALUES ('Upper.Test')`)).toBe('23514');
    expect(await bad(`INSERT INTO domains (name) VALUES ('checks.test')`)).toBe('23505');
    expect(await bad(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, '*97', 'fax')`, [d])).toBe('23514');
    await db.query(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, '*97', 'voicemail')`, [d]);
    expect(await bad(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, '*97', 'auto_attendant')`, [d])).toBe('23505');
    // Options only on Auto Attendant numbers, and a transfer needs a target.
    expect(await bad(`INSERT INTO auto_attendant_options (domain_id, number, digit, action) VALUES ($1, '*97', '9', 'voicemail_login')`, [d])).toBe('23503');
    await db.query(`INSERT INTO access_numbers (domain_id, number, kind) VALUES ($1, '100', 'auto_attendant')`, [d]);
    expect(await bad(`INSERT INTO auto_attendant_options (domain_id, number, digit, action) VALUES ($1, '100', '0', 'transfer')`, [d])).toBe('23514');
    expect(await bad(`INSERT INTO auto_attendant_options (domain_id, number, digit, action, target) VALUES ($1, '100', '9', 'voicemail_login', '201')`, [d])).toBe('23514');
    expect(await bad(`INSERT INTO auto_attendant_options (domain_id, number, digit, action) VALUES ($1, '100', '99', 'voicemail_login')`, [d])).toBe('23514');
    expect(await bad(`INSERT INTO users (domain_id, extension, display_name, role) VALUES ($1, '201', 'X', 'root')`, [d])).toBe('23514');
    expect(await bad(`INSERT INTO mailboxes (domain_id, number) VALUES ($1, '20a')`, [d])).toBe('23514');
    const user = await db.query<{ id: number }>(
      `INSERT INTO users (domain_id, extension, display_name, role) VALUES ($1, '201', 'X', 'basic') RETURNING id`, [d]);
    expect(await bad(`INSERT INTO mailboxes (domain_id, number, owner_user_id, shared) VALUES ($1, '201', $2, true)`, [d, user[0]?.id])).toBe('23514');
    const mailbox = await db.query<{ id: number }>(
      `INSERT INTO mailboxes (domain_id, number, owner_user_id) VALUES ($1, '201', $2) RETURNING id`, [d, user[0]?.id]);
    expect(await bad(`INSERT INTO access_code_credentials (mailbox_id, hash) VALUES ($1, '4826')`, [mailbox[0]?.id])).toBe('23514');
    expect(await bad(`INSERT INTO audit_events (domain, mailbox, event, channel, actor) VALUES ('x', '1', 'login', 'phone', 'a')`)).toBe('23514');
    expect(await bad(`INSERT INTO audit_events (domain, mailbox, event, channel, actor) VALUES ('x', '1', 'pin_set', 'fax', 'a')`)).toBe('23514');

    // Deleting a domain removes its rows (audit events stay: they are history).
    await db.query(`INSERT INTO audit_events (domain, mailbox, event, channel, actor) VALUES ('checks.test', '201', 'pin_set', 'cli', 'test')`);
    await db.query(`DELETE FROM domains WHERE id = $1`, [d]);
    for (const table of ['access_numbers', 'auto_attendant_options', 'users', 'mailboxes']) {
      expect(await db.query(`SELECT 1 FROM ${table} WHERE domain_id = $1`, [d])).toEqual([]);
    }
    expect(await db.query(`SELECT 1 FROM audit_events WHERE domain = 'checks.test'`)).toHaveLength(1);
  });

  it('applies each migration in its own transaction: a failing one leaves nothing behind', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'vmaccess-migrations-'));
    try {
      await writeFile(join(dir, '900_ok.sql'), 'CREATE TABLE ok_one (id integer);\nCREATE TABLE ok_two (id integer);\n');
      await writeFile(join(dir, '901_broken.sql'), 'CREATE TABLE half_done (id integer);\nSELECT no_such_function();\n');
      await expect(migrate(db, silentLogger, dir)).rejects.toThrow(/no_such_function/);
      const tables = await db.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables WHERE table_name IN ('ok_one', 'ok_two', 'half_done') ORDER BY 1`);
      expect(tables.map((r) => r.table_name)).toEqual(['ok_one', 'ok_two']);
      const versions = await db.query<{ version: string }>(`SELECT version FROM schema_migrations ORDER BY version`);
      expect(versions.map((r) => r.version)).toEqual([...VERSIONS, '900']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

it('refuses a migration file not named NNN_name.sql', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vmaccess-migrations-'));
  try {
    await writeFile(join(dir, 'initial.sql'), 'SELECT 1;');
    await expect(loadMigrations(dir)).rejects.toThrow(/NNN_name\.sql/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
