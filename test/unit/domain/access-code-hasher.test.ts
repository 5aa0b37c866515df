import { describe, expect, it } from 'vitest';
import { AccessCodeHasher } from '../../../src/domain/access-code-hasher.js';

const pepper = Buffer.from('unit-test-pepper-0123456789', 'utf8');

describe('AccessCodeHasher', () => {
  const hasher = new AccessCodeHasher(pepper);

  it('stores argon2id with m=19456 KiB, t=2, p=1 and a fresh salt each time', async () => {
    const a = await hasher.hash('4826');
    const b = await hasher.hash('4826');
    expect(a).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('4826');
  });

  it('verifies the right code and refuses a wrong one', async () => {
    const stored = await hasher.hash('4826');
    expect(await hasher.verify(stored, '4826')).toBe(true);
    expect(await hasher.verify(stored, '4827')).toBe(false);
    expect(await hasher.verify(stored, '48260')).toBe(false);
    expect(await hasher.verify(stored, '')).toBe(false);
  });

  it('needs the pepper: the same code under another pepper does not verify', async () => {
    const stored = await hasher.hash('4826');
    const other = new AccessCodeHasher(Buffer.from('another-pepper-0123456789', 'utf8'));
    expect(await other.verify(stored, '4826')).toBe(false);
  });

  it('hashes the HMAC of the code, not the code: plain argon2 of the code does not verify', async () => {
    const { hash } = await import('@node-rs/argon2');
    const plain = await hash('4826', { memoryCost: 19456, timeCost: 2, parallelism: 1 });
    expect(await hasher.verify(plain, '4826')).toBe(false);
  });

  it('a missing hash (no mailbox, no code yet) runs the dummy verify and is false for every code', async () => {
    for (const code of ['4826', '', '0000', '1234567890']) {
      expect(await hasher.verify(null, code)).toBe(false);
    }
  });

  it('a malformed stored hash is an error that does not repeat the code', async () => {
    await expect(hasher.verify('not-a-hash', '4826')).rejects.toThrow(/not a valid argon2/);
    await hasher.verify('not-a-hash', '4826').catch((err: Error) => {
      expect(err.message).not.toContain('4826');
    });
  });

  it('refuses a pepper shorter than 16 bytes', () => {
    expect(() => new AccessCodeHasher(Buffer.from('short'))).toThrow(/16 bytes/);
  });
});
