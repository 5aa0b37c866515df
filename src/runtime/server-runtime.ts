/**
 * A running server advertises its admin endpoint in DATA_DIR/vmaccess.server.json (mode 0600):
 * its pid, the base URL and a bearer token. CLI commands that find a live server there reach
 * the data through it (CONTRACT: while a server holds the embedded PGlite store, other commands
 * must not open it; the in-process lockout counters also live only in the server).
 * Exclusive ownership of the PGlite files themselves is the store's own lock (store/store-lock).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isProcessRunning } from '../store/store-lock.js';

export interface ServerRuntimeInfo {
  readonly pid: number;
  readonly adminUrl: string;
  readonly adminToken: string;
  readonly startedAt: string;
}

export function runtimeFilePath(dataDir: string): string {
  return join(dataDir, 'vmaccess.server.json');
}

/** The live server advertised in DATA_DIR, or null (none, or a stale file left by a crash). */
export async function findRunningServer(dataDir: string): Promise<ServerRuntimeInfo | null> {
  try {
    const info = JSON.parse(await readFile(runtimeFilePath(dataDir), 'utf8')) as Partial<ServerRuntimeInfo>;
    if (typeof info.pid !== 'number' || typeof info.adminUrl !== 'string' || typeof info.adminToken !== 'string') return null;
    if (!isProcessRunning(info.pid) || info.pid === process.pid) return null;
    return info as ServerRuntimeInfo;
  } catch {
    return null;
  }
}

export interface PublishedRuntime {
  readonly token: string;
  remove(): Promise<void>;
}

export async function publishServerRuntime(dataDir: string, adminUrl: string): Promise<PublishedRuntime> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('hex');
  const info: ServerRuntimeInfo = { pid: process.pid, adminUrl, adminToken: token, startedAt: new Date().toISOString() };
  const path = runtimeFilePath(dataDir);
  await writeFile(path, JSON.stringify(info), { mode: 0o600 });
  return {
    token,
    async remove() {
      try {
        const current = JSON.parse(await readFile(path, 'utf8')) as Partial<ServerRuntimeInfo>;
        if (current.pid === process.pid) await rm(path, { force: true });
      } catch {
        // Already gone.
      }
    },
  };
}
