import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';

/** Shorter secrets are within reach of brute force once the hash table leaks. */
const MIN_PEPPER_LENGTH = 16;
export const PEPPER_FILE_NAME = 'pin-pepper';

export interface LoadPepperOptions {
  /** The PIN_PEPPER environment variable, undefined when unset. */
  env: string | undefined;
  /** DATABASE_URL; with a shared Postgres every server needs the same pepper, so it must be given. */
  databaseUrl?: string | undefined;
  dataDir: string;
  logger?: Logger;
}

/**
 * The server secret mixed into every access-code hash (CONTRACT: PIN_PEPPER). From the
 * environment when set; required with DATABASE_URL; otherwise read from `DATA_DIR/pin-pepper`,
 * generated there (32 random bytes as hex, mode 0600) on first start.
 *
 * The pepper is the UTF-8 bytes of the text, whether from the variable or the file, so moving
 * from the embedded store to Postgres with `PIN_PEPPER=$(cat data/pin-pepper)` keeps every
 * existing hash valid.
 */
export async function loadPepper(opts: LoadPepperOptions): Promise<Buffer> {
  if (opts.env !== undefined) {
    if (opts.env.length < MIN_PEPPER_LENGTH) {
      throw new Error(`PIN_PEPPER: expected a secret of at least ${MIN_PEPPER_LENGTH} characters, got ${opts.env.length}`);
    }
    return Buffer.from(opts.env, 'utf8');
  }
  if (opts.databaseUrl !== undefined && opts.databaseUrl !== '') {
    throw new Error('PIN_PEPPER is required when DATABASE_URL is set');
  }
  return loadOrCreatePepperFile(opts.dataDir, opts.logger);
}

async function loadOrCreatePepperFile(dataDir: string, logger: Logger | undefined): Promise<Buffer> {
  const path = join(dataDir, PEPPER_FILE_NAME);
  const existing = await readPepperFile(path, logger);
  if (existing) return existing;

  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  // Written to a private temporary file, then hard-linked into place: link() fails if the name
  // exists, so two servers starting together cannot both create a pepper, and nobody ever reads
  // a half-written file.
  const tmp = join(dataDir, `.${PEPPER_FILE_NAME}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    await chmod(tmp, 0o600); // in case the umask was odd; 0600 is the point of the file
    await link(tmp, path);
    logger?.info({ path }, 'generated a new access-code pepper');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const created = await readPepperFile(path, logger);
  if (!created) throw new Error(`${path}: pepper file vanished while starting`);
  return created;
}

async function readPepperFile(path: string, logger: Logger | undefined): Promise<Buffer | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error(`${path}: cannot read the access-code pepper (${(err as Error).message})`);
  }
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    // Readable by group/others: anyone with a shell could take the secret; tighten it.
    try {
      await chmod(path, 0o600);
      logger?.warn({ path, mode: mode.toString(8) }, 'access-code pepper file was readable by others; changed to 0600');
    } catch {
      logger?.warn({ path, mode: mode.toString(8) }, 'access-code pepper file is readable by others and could not be changed to 0600');
    }
  }
  const pepper = text.trim();
  if (pepper.length < MIN_PEPPER_LENGTH) {
    throw new Error(`${path}: expected an access-code pepper of at least ${MIN_PEPPER_LENGTH} characters; ` +
      'restore the file or remove it to generate a new one (existing access codes then stop working)');
  }
  return Buffer.from(pepper, 'utf8');
}
