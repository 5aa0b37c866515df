/**
 * `npm run bench`: capacity of the embedded engine, measured from a separate process over
 * loopback (method and results: BENCHMARKS.md). Phases:
 *
 *   1. argon2 verifies per second with the server's parameters (in this process);
 *   2. call setups per second: calls placed as fast as the server answers them, hung up at once;
 *   3. ramp: N concurrent *97 calls (N = 100, 250, …) placed at 100/s; then for 10 s every call
 *      keeps hearing prompts (* replays "enter your access code", a key 1 s into it stops it:
 *      key → prompt-stop latency) while RTP gaps are measured; then each logs in (4826#) and
 *      says goodbye (*) and must get the server's BYE — a call that does not was lost or lost a
 *      key; keys sent are compared with keys the server counted. Stops at the first N with a
 *      failed call or a lost key;
 *   4. soak: 10 000 calls, 200 at a time, each logging in and saying goodbye; the server's RSS
 *      and open descriptors, read idle after the first 10 % and idle at the end, must be flat.
 *
 * Options: --quick (small numbers, a smoke run), --steps 100,500,1000, --soak N.
 * The last line printed is a one-line JSON summary.
 */
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { AccessCodeHasher } from '../src/domain/access-code-hasher.js';
import { LoadUa, type LoadCall } from './load-ua.js';
import { ServerProcess, type ProcessSample } from './server-process.js';
import { WireCapture } from './wire-gaps.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const option = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const STEPS = (option('--steps') ?? (quick ? '50,100' : '100,250,500,750,1000,1250,1500')).split(',').map(Number);
const SOAK_CALLS = Number(option('--soak') ?? (quick ? 500 : 10_000));
const SETUP_CALLS = quick ? 200 : 1000;
const CALL_RATE_PER_S = 100;
const MEASURE_MS = quick ? 4000 : 10_000;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(predicate: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) return false;
    await sleep(100);
  }
  return true;
}

const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

async function argon2Rate(): Promise<{ verifiesPerS: number; msPerVerify: number }> {
  const hasher = new AccessCodeHasher(Buffer.from('bench-pepper-0123456789abcdef'));
  const hash = await hasher.hash('4826');
  const until = performance.now() + 3000;
  let done = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < until) {
      await hasher.verify(hash, '4826');
      done += 1;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: 8 }, worker));
  const elapsedS = (performance.now() - started) / 1000;
  return { verifiesPerS: round(done / elapsedS), msPerVerify: round((elapsedS * 1000) / done, 2) };
}

function metric(m: Map<string, number>, name: string): number {
  return m.get(name) ?? 0;
}

async function setupRate(server: ServerProcess): Promise<{ setupsPerS: number; failed: number; p50: number; p99: number }> {
  const ua = await LoadUa.start({ address: '127.0.0.1', port: server.sipPort });
  const WINDOW = 100;
  let placed = 0;
  let answered = 0;
  let failed = 0;
  const started = performance.now();
  let lastAnswer = started;
  await new Promise<void>((resolve) => {
    const next = (): void => {
      if (placed >= SETUP_CALLS) {
        if (answered + failed >= SETUP_CALLS) resolve();
        return;
      }
      placed += 1;
      const call = ua.call({ from: '201', service: '*97', keys: '', firstKeyAfterMs: 0 });
      void call.answered.then(async (ok) => {
        if (ok) {
          answered += 1;
          lastAnswer = performance.now();
          await ua.hangup(call);
        } else {
          failed += 1;
        }
        next();
      });
    };
    for (let i = 0; i < WINDOW; i++) next();
  });
  const setupsPerS = answered / ((lastAnswer - started) / 1000);
  const result = { setupsPerS: round(setupsPerS), failed, p50: round(ua.setup.percentile(0.5)), p99: round(ua.setup.percentile(0.99)) };
  ua.close();
  return result;
}

interface StepResult {
  calls: number;
  failedCalls: number;
  lostKeys: number;
  /** RTP gaps on the wire (dumpcap on lo, kernel timestamps): the server's pacing. */
  wireGapMsP50: number | null;
  wireGapMsP99: number | null;
  wireGapMsMax: number | null;
  wirePackets: number | null;
  setupMsP50: number;
  setupMsP99: number;
  gapMsP50: number;
  gapMsP99: number;
  gapMsMax: number;
  keyToStopMsP50: number;
  keyToStopMsP99: number;
  serverCpuPercent: number;
  serverCpuPercentPerCall: number;
  serverRssMb: number;
  rssKbPerCall: number;
  lateTicks: number;
  skippedSlots: number;
}

async function ramp(server: ServerProcess, n: number, baseline: ProcessSample): Promise<StepResult> {
  const ua = await LoadUa.start({ address: '127.0.0.1', port: server.sipPort });
  const before = await server.metrics();
  const calls: LoadCall[] = [];
  for (let i = 0; i < n; i++) {
    calls.push(ua.call({ from: '201', service: '*97', keys: '', firstKeyAfterMs: 0 }));
    await sleep(1000 / CALL_RATE_PER_S);
  }
  await Promise.all(calls.map((c) => c.answered));
  await sleep(4000); // the first "enter your access code" prompts end

  // Steady state: every call keeps hearing prompts — * restarts the entry and replays "enter
  // your access code", 1 s into it a key stops it (key → prompt-stop), * again 0.4 s later.
  const idle = await server.sample();
  const capture = await WireCapture.start(ua.rtpPort);
  const m0 = await server.metrics();
  const s0 = await server.sample();
  ua.measuring = true;
  let open = true;
  const cycles = calls.map(async (c, i) => {
    await sleep((i / n) * 1400);
    while (open && c.state === 'up') {
      ua.pressKeys(c, '*');
      await sleep(1000);
      if (!open) break;
      ua.pressKeys(c, '4', true);
      await sleep(400);
    }
  });
  await sleep(MEASURE_MS);
  open = false;
  ua.measuring = false;
  const s1 = await server.sample();
  const m1 = await server.metrics();
  const wire = await capture?.stop() ?? null;
  await Promise.all(cycles);
  await sleep(500);

  // Log in and say goodbye: *, then 4826#*. No BYE = the call was lost or lost a key.
  for (const c of calls) {
    if (c.state === 'up') {
      ua.pressKeys(c, '*');
      setTimeout(() => ua.pressKeys(c, '4826#*'), 300);
    }
    await sleep(3000 / n);
  }
  await waitFor(() => calls.every((c) => c.state !== 'up'), 60_000);
  const after = await server.metrics();
  const keysReceived = metric(after, 'vmaccess_dtmf_total{method="rfc4733"}') - metric(before, 'vmaccess_dtmf_total{method="rfc4733"}');
  const keysSent = calls.reduce((sum, c) => sum + c.keyCount, 0);
  const failedCalls = calls.filter((c) => !c.byeReceived).length;
  const cpu = ((s1.cpuSeconds - s0.cpuSeconds) / ((s1.at - s0.at) / 1000)) * 100;
  for (const c of calls) if (c.state === 'up') await ua.hangup(c);
  ua.close();
  await waitFor(async () => metric(await server.metrics(), 'vmaccess_active_calls') === 0, 30_000);
  return {
    calls: n,
    failedCalls,
    lostKeys: Math.max(0, keysSent - keysReceived),
    wireGapMsP50: wire === null ? null : round(wire.gaps.percentile(0.5), 2),
    wireGapMsP99: wire === null ? null : round(wire.gaps.percentile(0.99), 2),
    wireGapMsMax: wire === null ? null : round(wire.gaps.max, 2),
    wirePackets: wire?.packets ?? null,
    setupMsP50: round(ua.setup.percentile(0.5)),
    setupMsP99: round(ua.setup.percentile(0.99)),
    gapMsP50: round(ua.gaps.percentile(0.5)),
    gapMsP99: round(ua.gaps.percentile(0.99)),
    gapMsMax: round(ua.gaps.max),
    keyToStopMsP50: round(ua.stopLatency.percentile(0.5)),
    keyToStopMsP99: round(ua.stopLatency.percentile(0.99)),
    serverCpuPercent: round(cpu),
    serverCpuPercentPerCall: round(cpu / n, 3),
    serverRssMb: round(s1.rssBytes / 1e6),
    rssKbPerCall: round((s1.rssBytes - Math.min(idle.rssBytes, baseline.rssBytes)) / 1024 / n),
    lateTicks: metric(m1, 'vmaccess_rtp_late_ticks_total') - metric(m0, 'vmaccess_rtp_late_ticks_total'),
    skippedSlots: metric(m1, 'vmaccess_rtp_skipped_slots_total') - metric(m0, 'vmaccess_rtp_skipped_slots_total'),
  };
}

async function soak(server: ServerProcess, total: number): Promise<{ calls: number; failed: number; rssStartMb: number; rssEndMb: number; fdsStart: number; fdsEnd: number; seconds: number }> {
  const CONCURRENCY = 200;
  /** `count` calls, CONCURRENCY at a time: each logs in (4826#) and says goodbye (* typed while
   * the code is checked is kept, type-ahead) and must end with the server's BYE. */
  const batch = async (count: number): Promise<number> => {
    const ua = await LoadUa.start({ address: '127.0.0.1', port: server.sipPort });
    let placed = 0;
    let finished = 0;
    let failed = 0;
    await new Promise<void>((resolve) => {
      const next = (): void => {
        if (placed >= count) {
          if (finished >= count) resolve();
          return;
        }
        placed += 1;
        const call = ua.call({ from: '201', service: '*97', keys: '4826#*', firstKeyAfterMs: 300 });
        const guard = setTimeout(() => { void ua.hangup(call); }, 20_000);
        void call.ended.then(() => {
          clearTimeout(guard);
          finished += 1;
          if (!call.byeReceived) failed += 1;
          ua.calls.delete(call.callId);
          next();
        });
      };
      for (let i = 0; i < CONCURRENCY; i++) next();
    });
    ua.close();
    await waitFor(async () => metric(await server.metrics(), 'vmaccess_active_calls') === 0, 30_000);
    await sleep(3000);
    return failed;
  };
  const warmup = Math.min(1000, Math.floor(total / 10));
  const started = performance.now();
  let failed = await batch(warmup);
  const start = await server.sample(); // idle, after the first 10 %
  failed += await batch(total - warmup);
  const end = await server.sample(); // idle again
  return {
    calls: total, failed,
    rssStartMb: round(start.rssBytes / 1e6), rssEndMb: round(end.rssBytes / 1e6),
    fdsStart: start.openFds, fdsEnd: end.openFds,
    seconds: round((performance.now() - started) / 1000),
  };
}

async function main(): Promise<void> {
  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGb: round(totalmem() / 2 ** 30), node: process.version };
  console.log(`machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memoryGb} GiB, Node ${machine.node}`);
  const argon2 = await argon2Rate();
  console.log(`argon2id verify (m=19 MiB, t=2): ${argon2.verifiesPerS}/s, ${argon2.msPerVerify} ms each over 8 concurrent`);

  const server = await ServerProcess.start();
  try {
    const idle = await server.sample();
    console.log(`server idle: RSS ${round(idle.rssBytes / 1e6)} MB, ${idle.openFds} fds`);
    const setup = await setupRate(server);
    console.log(`setups: ${setup.setupsPerS}/s (${SETUP_CALLS} calls, ${setup.failed} failed; INVITE→200 p50 ${setup.p50} ms, p99 ${setup.p99} ms)`);
    await waitFor(async () => metric(await server.metrics(), 'vmaccess_active_calls') === 0, 30_000);

    const baseline = await server.sample();
    const steps: StepResult[] = [];
    for (const n of STEPS) {
      const r = await ramp(server, n, baseline);
      steps.push(r);
      console.log(`${String(n).padStart(5)} calls: failed ${r.failedCalls}, lost keys ${r.lostKeys}, gap on the wire p50/p99/max ${r.wireGapMsP50}/${r.wireGapMsP99}/${r.wireGapMsMax} ms `
        + `(${r.wirePackets} packets), at the load UA ${r.gapMsP50}/${r.gapMsP99}/${r.gapMsMax} ms, `
        + `key→stop p50/p99 ${r.keyToStopMsP50}/${r.keyToStopMsP99} ms, setup p99 ${r.setupMsP99} ms, server CPU ${r.serverCpuPercent}% `
        + `(${r.serverCpuPercentPerCall}%/call), RSS ${r.serverRssMb} MB (${r.rssKbPerCall} KiB/call), late ticks ${r.lateTicks}, skipped ${r.skippedSlots}`);
      if (r.failedCalls > 0 || r.lostKeys > 0) break;
    }
    const soakResult = await soak(server, SOAK_CALLS);
    console.log(`soak: ${soakResult.calls} calls in ${soakResult.seconds} s, ${soakResult.failed} failed; RSS ${soakResult.rssStartMb} → ${soakResult.rssEndMb} MB, fds ${soakResult.fdsStart} → ${soakResult.fdsEnd}`);

    const clean = (x: StepResult): boolean => x.failedCalls === 0 && x.lostKeys === 0;
    /** The per-step targets of BENCHMARKS.md: pacing on the wire (else at the load UA) and key → stop. */
    const withinTargets = (x: StepResult): boolean => clean(x)
      && (x.wireGapMsP99 ?? x.gapMsP99) <= 25 && (x.wireGapMsMax ?? x.gapMsMax) <= 40 && x.keyToStopMsP99 <= 60;
    const best = steps.filter(clean).at(-1);
    const inTargets = steps.filter(withinTargets).at(-1);
    const summary = {
      machine,
      argon2VerifiesPerS: argon2.verifiesPerS,
      setupsPerS: setup.setupsPerS,
      maxConcurrentCallsWithoutFailure: best?.calls ?? 0,
      maxConcurrentCallsWithinTargets: inTargets?.calls ?? 0,
      atTargetLimit: inTargets ?? null,
      steps,
      soak: soakResult,
      targets: {
        concurrent1000: (inTargets?.calls ?? 0) >= 1000,
        gapP99Le25: inTargets !== undefined,
        gapMaxLe40: inTargets !== undefined,
        zeroLostKeys: steps.every((x) => x.lostKeys === 0),
        setups150: setup.setupsPerS >= 150,
        keyToStopP99Le60: inTargets !== undefined,
        soakFlat: soakResult.failed === 0 && soakResult.rssEndMb <= soakResult.rssStartMb * 1.1 + 5 && soakResult.fdsEnd <= soakResult.fdsStart + 5,
      },
    };
    console.log(JSON.stringify(summary));
  } finally {
    await server.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
