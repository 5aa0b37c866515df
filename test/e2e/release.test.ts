/**
 * BYE at any point releases everything a call holds (issue 4): calls that end at different
 * points — during the first prompt, halfway through the access code, while the code is being
 * checked, in the main menu, halfway through a new code, in the Auto Attendant's replayed menu,
 * over TCP, and a normal goodbye — all at once, then the server process is compared with itself
 * before: the same open file descriptors, the same UDP sockets, no RTP port in use, no call, and
 * once the SIP transactions have run out (RFC 3261 Timer J / RFC 6026 Timer L, 64·T1 = 32 s)
 * no more timers than before. The server runs in this process, so /proc/self is the server's.
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../src/telephony/embedded/engine.js';
import { runSipp, sippAvailable, sippReport, type SippOptions } from '../support/sipp.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { sleep, waitFor } from '../support/wait.js';

const haveSipp = sippAvailable();

/**
 * Open file descriptors other than the store's own files: PGlite opens a table's files when it
 * is first used and keeps them, which is a cache, not a leak.
 */
function openFileDescriptors(storeDir: string): string[] {
  const open: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the directory handle readdir itself used, closed by now
    }
    if (!target.startsWith(storeDir)) open.push(`${fd} -> ${target}`);
  }
  return open;
}

/** UDP sockets this process holds: its socket fds looked up by inode in /proc/net/udp{,6}. */
function udpSockets(): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const socket = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`));
      if (socket) inodes.add(socket[1]!);
    } catch {
      // closed since readdir
    }
  }
  let count = 0;
  for (const table of ['/proc/net/udp', '/proc/net/udp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue; // no IPv6
    }
    for (const line of text.split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode !== undefined && inodes.has(inode)) count++;
    }
  }
  return count;
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

describe.skipIf(!haveSipp)('a call releases its RTP ports, sockets and timers however it ends [pglite]', () => {
  let t: TestServer;
  const engine = (): EmbeddedEngine => t.server.engine as EmbeddedEngine;

  beforeAll(async () => {
    t = await startTestServer('pglite');
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('after calls hung up at eight different points, nothing is left behind', async () => {
    const fds = (): string[] => openFileDescriptors(t.config.dataDir);
    const before = { fds: fds(), udp: udpSockets(), timers: timers() };
    expect(before.udp, 'the SIP socket is counted').toBeGreaterThanOrEqual(1);

    // Watch the batch: the counters must see the calls' RTP sockets while they are up.
    let peakUdp = 0;
    let peakPorts = 0;
    let peakTimers = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        peakUdp = Math.max(peakUdp, udpSockets());
        peakPorts = Math.max(peakPorts, engine().rtpPortsInUse);
        peakTimers = Math.max(peakTimers, timers());
        await sleep(50);
      }
    })();

    const base: SippOptions = { target: t.sipTarget, service: '*97', caller: '201', domain: 'demo.local', messageTrace: true };
    const calls: Array<[string, Partial<SippOptions>]> = [
      ['caller-hangs-up-mid-prompt.xml', {}],
      ['hangup-during-code-entry.xml', {}],
      ['hangup-while-verifying.xml', {}],
      ['hangup-in-main-menu.xml', { caller: '202', service: 'voicemail' }],
      ['hangup-during-new-code.xml', {}],
      ['aa-hangup-after-invalid-option.xml', { service: '15550100', caller: '299' }],
      ['hangup-in-main-menu.xml', { transport: 't1' }],
      ['login-202-goodbye.xml', { caller: '202' }],
    ];
    const runs = await Promise.all(calls.map(([scenario, over]) => runSipp(scenario, { ...base, ...over })));
    watching = false;
    await watcher;
    runs.forEach((run, i) => expect(run.exitCode, `${calls[i]![0]}: ${sippReport(run)}`).toBe(0));
    expect(peakPorts, 'RTP ports in use during the batch').toBeGreaterThan(1);
    expect(peakUdp, 'UDP sockets during the batch').toBeGreaterThan(before.udp);
    expect(peakTimers, 'timers during the batch').toBeGreaterThan(before.timers);

    await waitFor(() => engine().activeCalls === 0 && engine().rtpPortsInUse === 0, 5000, 'no call and no RTP port in use');
    await waitFor(() => udpSockets() === before.udp, 5000, `UDP sockets back to ${before.udp} (now ${udpSockets()})`);
    await waitFor(() => fds().length === before.fds.length, 5000, 'as many open fds as before');
    expect(fds()).toEqual(before.fds);

    // SIP transactions linger on purpose (absorbing retransmissions) for up to 64·T1 = 32 s;
    // when they are gone, so must be every timer the calls started.
    await waitFor(() => {
      const s = engine().sipStats;
      return s.serverTransactions === 0 && s.clientTransactions === 0 && s.dialogs === 0;
    }, 45_000, `SIP transactions and dialogs to end (${JSON.stringify(engine().sipStats)})`);
    await waitFor(() => timers() <= before.timers, 5000, `timers back to ${before.timers} (now ${timers()})`);
  }, 90_000);
});
