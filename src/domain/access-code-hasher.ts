import { createHmac, randomBytes } from 'node:crypto';
import { hash as argon2Hash, verify as argon2Verify, type Algorithm, type Options } from '@node-rs/argon2';

/**
 * argon2id with the OWASP Password Storage Cheat Sheet minimum (m = 19 MiB, t = 2, p = 1).
 * `Algorithm` is a const enum that isolatedModules cannot inline (and the package exports it as
 * an empty object at run time), hence the literal: 2 = Argon2id.
 */
const ARGON2_OPTIONS: Options = {
  algorithm: 2 as Algorithm,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
};

/**
 * Hashes and checks mailbox access codes. A 4-digit code has only 10^4 values, so a leaked
 * hash alone would fall to brute force whatever the work factor; the argon2 input is therefore
 * HMAC-SHA256(pepper, code), and the pepper lives outside the database (PIN_PEPPER or a file in
 * DATA_DIR). Without it a stolen table cannot be checked offline.
 */
export class AccessCodeHasher {
  readonly #pepper: Buffer;
  /**
   * A hash of a random secret, made once at startup. Checking a code for a mailbox that does not
   * exist (or has no code yet) costs one full argon2 verify against it, so the time to answer
   * does not tell a caller whether the mailbox exists.
   */
  readonly #dummyHash: Promise<string>;

  constructor(pepper: Buffer) {
    if (pepper.length < 16) throw new Error('access-code pepper must be at least 16 bytes');
    this.#pepper = Buffer.from(pepper);
    this.#dummyHash = argon2Hash(randomBytes(32).toString('hex'), ARGON2_OPTIONS);
    // Surfaced by the first verify(null) that awaits it; never an unhandled rejection.
    this.#dummyHash.catch(() => undefined);
  }

  /** The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) to store for `accessCode`. */
  async hash(accessCode: string): Promise<string> {
    return argon2Hash(this.#keyed(accessCode), ARGON2_OPTIONS);
  }

  /**
   * True when `accessCode` matches `hash`. A `null` hash (no mailbox, or no code set) is checked
   * against the dummy hash and always yields false. argon2's verify recomputes the hash with the
   * parameters stored in the PHC string and compares the digests in constant time, so the
   * comparison leaks nothing about how many bytes matched.
   */
  async verify(hash: string | null, accessCode: string): Promise<boolean> {
    const keyed = this.#keyed(accessCode);
    if (hash === null) {
      await argon2Verify(await this.#dummyHash, keyed);
      return false;
    }
    try {
      return await argon2Verify(hash, keyed);
    } catch {
      // Only a malformed stored hash gets here; the message must not carry the input.
      throw new Error('stored access-code hash is not a valid argon2 PHC string');
    }
  }

  /**
   * The argon2 input: HMAC-SHA256(pepper, code), 32 bytes, passed as 64 hex characters because
   * @node-rs/argon2 2.x `verify` rejects a password that is not valid UTF-8 ("invalid utf-8
   * sequence") although `hash` accepts it. Same 256 bits either way.
   */
  #keyed(accessCode: string): string {
    return createHmac('sha256', this.#pepper).update(accessCode, 'utf8').digest('hex');
  }
}
