/**
 * Where message audio (and recorded greetings and names) lives: one interface, the filesystem
 * under DATA_DIR/messages by default. Keys are opaque random names; the store never sees who a
 * message is for. Files are written whole (temporary file, then rename) with mode 0600, so a
 * reader never sees half a recording.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface AudioStore {
  /** A fresh key for a new recording. */
  newKey(): string;
  put(key: string, audio: Buffer): Promise<void>;
  get(key: string): Promise<Buffer>;
  /** Removes the recordings; a key that is already gone is fine. */
  delete(keys: readonly string[]): Promise<void>;
}

const KEY = /^[0-9a-f]{32}\.wav$/;

export class FileAudioStore implements AudioStore {
  constructor(private readonly dir: string) {}

  newKey(): string {
    return `${randomBytes(16).toString('hex')}.wav`;
  }

  #path(key: string): string {
    // Keys come from newKey() and the store; anything else is refused, never joined into a path.
    if (!KEY.test(key)) throw new Error('invalid audio key');
    return join(this.dir, key);
  }

  async put(key: string, audio: Buffer): Promise<void> {
    const path = this.#path(key);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, audio, { mode: 0o600 });
    await rename(tmp, path);
  }

  get(key: string): Promise<Buffer> {
    return readFile(this.#path(key));
  }

  async delete(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map((key) => rm(this.#path(key), { force: true })));
  }
}
