import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StoreLockedError } from './errors.js';

export interface StoreLock {
  readonly path: string;
  release(): void;
}

/**
 * An exclusive lock on the embedded store: `dataDir/pglite.lock` holding the owner's pid,
 * created with O_EXCL so two processes cannot both take it. A lock left behind by a process
 * that no longer runs is taken over.
 */
export function acquireStoreLock(dataDir: string): StoreLock {
  const path = join(dataDir, 'pglite.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, `${process.pid}\n`);
      } finally {
        closeSync(fd);
      }
      let released = false;
      return {
        path,
        release() {
          if (released) return;
          released = true;
          try {
            if (ownerPid(path) === process.pid) unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = ownerPid(path);
      if (pid === null && isFresh(path)) {
        // Just created by another process that has not written its pid yet.
        throw new StoreLockedError(`the embedded store in ${dataDir} is being opened by another process; try again`);
      }
      if (pid !== null && isProcessRunning(pid)) {
        throw new StoreLockedError(
          `the embedded store in ${dataDir} is in use by another vmaccess process (pid ${pid}); ` +
          'stop it first or use the running server',
        );
      }
      // Stale lock (owner gone or file unreadable): remove it and try once more.
      try {
        unlinkSync(path);
      } catch {
        // Someone else removed it first; the retry decides.
      }
    }
  }
  throw new StoreLockedError(`the embedded store in ${dataDir} is being opened by another process; try again`);
}

function ownerPid(path: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(path, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Whether a process with this pid exists (EPERM: it does, but belongs to another user). */
export function isProcessRunning(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isFresh(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < 5_000;
  } catch {
    return false;
  }
}
