/**
 * Throw-away Postgres databases next to DATABASE_URL's, for tests and for the benchmark (bench/),
 * so nothing here may import vitest.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * A new empty Postgres database next to DATABASE_URL's, for a server process under test to use
 * (`DATABASE_URL=<databaseUrl>`), named `<namePrefix>_<random>`. `drop()` ends its connections
 * and removes it.
 */
export async function createPostgresTestDatabase(
  { namePrefix = 'vmaccess_test' }: { namePrefix?: string } = {},
): Promise<{ databaseUrl: string; drop(): Promise<void> }> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) throw new Error('createPostgresTestDatabase needs DATABASE_URL');
  const name = `${namePrefix}_${randomBytes(6).toString('hex')}`;
  await withAdminClient(adminUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    databaseUrl: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      // WITH (FORCE) (Postgres 13+) ends connections a crashed server process left behind.
      await withAdminClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function withAdminClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
