import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log.js';
import { loadPepper } from '../../../src/domain/pepper.js';

describe('loadPepper', () => {
  let base: string;
  beforeEach(async () => { base = await mkdtemp(join(tmpdir(), 'vmaccess-pepper-')); });
  afterEach(async () => { await rm(base, { recursive: true, force: true }); });

  it('uses PIN_PEPPER when given, as its UTF-8 bytes', async () => {
    const pepper = await loadPepper({ env: 'a-long-enough-secret!', dataDir: join(base, 'data') });
    expect(pepper.equals(Buffer.from('a-long-enough-secret!', 'utf8'))).toBe(true);
  });

  it('uses PIN_PEPPER with DATABASE_URL and writes no file', async () => {
    const dataDir = join(base, 'data');
    await loadPepper({ env: 'a-long-enough-secret!', databaseUrl: 'postgres://x@127.0.0.1/db', dataDir });
    await expect(stat(dataDir)).rejects.toThrow();
  });

  it('refuses a short PIN_PEPPER with a message naming it, without echoing the value', async () => {
    const err = await loadPepper({ env: 'tooshortsecret', dataDir: base }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/^PIN_PEPPER: expected a secret of at least 16 characters/);
    expect((err as Error).message).not.toContain('tooshortsecret');
    await expect(loadPepper({ env: '', dataDir: base })).rejects.toThrow(/PIN_PEPPER/);
  });

  it('requires PIN_PEPPER when DATABASE_URL is set', async () => {
    await expect(loadPepper({ env: undefined, databaseUrl: 'postgres://x@127.0.0.1/db', dataDir: base }))
      .rejects.toThrow('PIN_PEPPER is required when DATABASE_URL is set');
  });

  it('generates 32 random bytes as hex into DATA_DIR/pin-pepper with mode 0600, and reuses them', async () => {
    const dataDir = join(base, 'nested', 'data');
    const first = await loadPepper({ env: undefined, dataDir });
    const path = join(dataDir, 'pin-pepper');
    const text = await readFile(path, 'utf8');
    expect(text).toMatch(/^[0-9a-f]{64}\n$/);
    expect(first.toString('utf8')).toBe(text.trim());
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const second = await loadPepper({ env: undefined, dataDir });
    expect(second.equals(first)).toBe(true);
  });

  it('two servers starting together end up with the same pepper', async () => {
    const dataDir = join(base, 'data');
    const peppers = await Promise.all(Array.from({ length: 8 }, () => loadPepper({ env: undefined, dataDir })));
    for (const p of peppers) expect(p.equals(peppers[0] as Buffer)).toBe(true);
  });

  it('tightens a pepper file readable by others to 0600 and warns', async () => {
    const path = join(base, 'pin-pepper');
    await writeFile(path, 'f'.repeat(64) + '\n', { mode: 0o644 });
    await chmod(path, 0o644);
    const lines: string[] = [];
    const logger = createLogger('info', new Writable({ write(chunk, _e, cb) { lines.push(String(chunk)); cb(); } }));
    const pepper = await loadPepper({ env: undefined, dataDir: base, logger });
    expect(pepper.toString()).toBe('f'.repeat(64));
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(lines.join('')).toMatch(/readable by others/);
    expect(lines.join('')).not.toContain('f'.repeat(64));
  });

  it('refuses a truncated pepper file instead of silently replacing it', async () => {
    await writeFile(join(base, 'pin-pepper'), 'abc\n', { mode: 0o600 });
    await expect(loadPepper({ env: undefined, dataDir: base })).rejects.toThrow(/at least 16 characters/);
  });
});
