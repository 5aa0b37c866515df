/**
 * Running the `vmaccess` command line as a separate process, as an operator would: one-shot
 * commands (with optional stdin, for passwords) and a `serve` that is ready when it says so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';

export const BIN = join(packageRoot, 'bin', 'vmaccess.js');

export interface CliResult { code: number | null; stdout: string; stderr: string }

function baseEnv(logLevel: string, env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: logLevel, ...env };
}

/** Runs `vmaccess <args>` to its end; `stdin` is written and closed (default: nothing). */
export function runCli(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: baseEnv('warn', env), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

/** A `vmaccess serve` process; resolves once it logged "vmaccess ready" (at most 60 s). */
export async function serveCli(env: Record<string, string>, args: string[] = ['serve', '--demo']): Promise<{ child: ChildProcess; output: () => string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: baseEnv('info', env), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const until = Date.now() + 60_000;
  while (!out.includes('vmaccess ready')) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${out}`);
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`serve did not get ready: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, output: () => out, exited };
}
