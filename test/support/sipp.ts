import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sippScenariosDir } from '../../src/paths.js';
import { freeEvenPortRange, freePort } from './ports.js';

const PCAP = '/usr/share/sip-tester/dtmf_2833_1.pcap';

/** Why sipp tests cannot run here, or null when sipp and its DTMF pcaps are installed. */
export function sippUnavailableReason(): string | null {
  const probe = spawnSync('sipp', ['-v'], { encoding: 'utf8' });
  if (probe.error !== undefined) return 'sipp is not installed (Debian package sip-tester)';
  const pcap = spawnSync('test', ['-r', PCAP]);
  if (pcap.status !== 0) return `sipp's RFC 4733 sample pcaps are missing (${PCAP})`;
  return null;
}

let printed = false;
/** True when sipp can run; otherwise prints one line saying why the sipp scenarios are skipped. */
export function sippAvailable(): boolean {
  const reason = sippUnavailableReason();
  if (reason !== null && !printed) {
    printed = true;
    console.log(`sipp scenarios skipped: ${reason}`);
  }
  return reason === null;
}

export interface SippRun {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly errors: string;
  /** Every SIP message sipp sent and received, when the run asked for `messageTrace`. */
  readonly messages: string;
  /** The Call-ID of the call, read from the message trace (null without `messageTrace`). */
  readonly callId: string | null;
}

export interface SippOptions {
  readonly target: string; // host:port
  readonly service: string;
  readonly caller: string;
  readonly domain: string;
  readonly localAddress?: string;
  readonly transport?: 'u1' | 't1';
  readonly timeoutS?: number;
  /** More `-key NAME VALUE` keywords for the scenario, e.g. `{ asserted: '201' }`. */
  readonly keys?: Readonly<Record<string, string>>;
  /** Keep sipp's message trace (-trace_msg) and return it in `messages`, for failure reports. */
  readonly messageTrace?: boolean;
}

/** Runs one call of a scenario from sipp-scenarios/ and reports how sipp ended (0 = the call passed). */
export async function runSipp(scenarioFile: string, opts: SippOptions): Promise<SippRun> {
  const dir = await mkdtemp(join(tmpdir(), 'vmaccess-sipp-'));
  const errorFile = join(dir, 'errors.log');
  const messageFile = join(dir, 'messages.log');
  const local = opts.localAddress ?? '127.0.0.1';
  const sipPort = await freePort();
  const media = await freeEvenPortRange(4);
  const args = [
    '-sf', join(sippScenariosDir, scenarioFile),
    '-s', opts.service,
    '-key', 'caller', opts.caller,
    '-key', 'domain', opts.domain,
    ...Object.entries(opts.keys ?? {}).flatMap(([name, value]) => ['-key', name, value]),
    '-i', local, '-mi', local,
    '-p', String(sipPort), '-mp', String(media.min),
    '-t', opts.transport ?? 'u1',
    '-m', '1', '-l', '1',
    '-timeout', `${opts.timeoutS ?? 60}s`, '-timeout_error',
    '-max_recv_loops', '1000',
    '-nostdin',
    '-trace_err', '-error_file', errorFile,
    ...(opts.messageTrace === true ? ['-trace_msg', '-message_file', messageFile] : []),
    opts.target,
  ];
  try {
    const { exitCode, stdout } = await new Promise<{ exitCode: number | null; stdout: string }>((resolve, reject) => {
      const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      child.once('error', reject);
      child.once('exit', (code) => resolve({ exitCode: code, stdout: out }));
    });
    const errors = await readFile(errorFile, 'utf8').catch(() => '');
    const messages = opts.messageTrace === true ? await readFile(messageFile, 'utf8').catch(() => '') : '';
    const callId = /^(?:Call-ID|i)\s*:\s*(\S+)/im.exec(messages)?.[1] ?? null;
    return { exitCode, stdout, errors, messages, callId };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What to print when a sipp run did not pass: its error log (or output), and the message trace if kept. */
export function sippReport(run: SippRun): string {
  const main = run.errors !== '' ? run.errors : run.stdout.slice(-4000);
  return run.messages === '' ? main : `${main}\n--- messages ---\n${run.messages.slice(-12000)}`;
}
