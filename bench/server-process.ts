/**
 * The server under test as a separate process (`node bin/vmaccess.js serve --demo`), so the load
 * generator's work never counts as the server's; its CPU time, RSS and open descriptors are read
 * from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { onCpus } from './taskset.js';

export interface ProcessSample {
  readonly at: number;
  /** user + system CPU seconds so far. */
  readonly cpuSeconds: number;
  readonly rssBytes: number;
  readonly openFds: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface ServerOptions {
  readonly cpus?: string | null;
  readonly cpuProfileDir?: string | null;
  readonly nodeArgs?: readonly string[];
  readonly stdoutFile?: string | null;
}

export class ServerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly sipPort: number,
    readonly httpPort: number,
    private readonly dataDir: string,
    readonly stderr: string[],
  ) {}

  /**
   * `cpus`: run the server on those CPUs only (`taskset -c`, e.g. "0"), so it and the load
   * generator do not take turns on the same core and each one's timing is its own.
   * `cpuProfileDir`: run it with `--cpu-prof` (a .cpuprofile lands there when it exits).
   * `nodeArgs`: more node options (e.g. --trace-gc); `stdoutFile`: keep its stdout there.
   */
  static async start(env: Record<string, string> = {}, opts: ServerOptions = {}): Promise<ServerProcess> {
    const { cpus = null, cpuProfileDir = null, nodeArgs = [], stdoutFile = null } = opts;
    const dataDir = await mkdtemp(join(tmpdir(), 'vmaccess-bench-'));
    const sipPort = await freePort();
    const httpPort = await freePort();
    // --cpu-prof: V8 writes the server's profile into that folder when it exits (after SIGTERM).
    const profile = cpuProfileDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`];
    const node = [process.execPath, ...profile, ...nodeArgs, join(packageRoot, 'bin/vmaccess.js'), 'serve', '--demo'];
    // taskset execs node in the same process, so /proc/<pid> below is the server's.
    const argv = onCpus(node, cpus);
    const stdout = stdoutFile === null ? 'ignore' : openSync(stdoutFile, 'w');
    const child = spawn(argv[0]!, argv.slice(1), {
      env: {
        PATH: process.env.PATH ?? '',
        SIP_ADDRESS: '127.0.0.1', SIP_PORT: String(sipPort), HTTP_ADDRESS: '127.0.0.1', HTTP_PORT: String(httpPort),
        RTP_PORT_MIN: '20000', RTP_PORT_MAX: '39999', DATA_DIR: dataDir, LOG_LEVEL: 'warn',
        MAX_CALLS: '20000', IVR_NO_INPUT_TIMEOUT_MS: '60000', ...env,
      },
      stdio: ['ignore', stdout, 'pipe'],
    });
    if (typeof stdout === 'number') closeSync(stdout); // the child has its own copy
    const stderr: string[] = [];
    child.stderr?.on('data', (d: Buffer) => stderr.push(d.toString()));
    const server = new ServerProcess(child, sipPort, httpPort, dataDir, stderr);
    const until = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`server exited: ${stderr.join('')}`);
      try {
        const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
        if (res.status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) throw new Error('server did not become healthy');
      await new Promise((r) => setTimeout(r, 200));
    }
    return server;
  }

  async sample(): Promise<ProcessSample> {
    const pid = this.child.pid!;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const fds = (await readdir(`/proc/${pid}/fd`)).length;
    return { at: performance.now(), cpuSeconds: ticks / 100, rssBytes: rssKb * 1024, openFds: fds };
  }

  async metrics(): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.httpPort}/metrics`)).text();
    const values = new Map<string, number>();
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const space = line.lastIndexOf(' ');
      values.set(line.slice(0, space), Number(line.slice(space + 1)));
    }
    return values;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { this.child.kill('SIGKILL'); resolve(); }, 40_000);
        this.child.once('exit', () => { clearTimeout(timer); resolve(); });
      });
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }
}
