/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and tells where the time went: self time per
 * function, summed over every node of the call tree that is that function, largest first.
 * Enough to see a hot path without opening DevTools; the file itself stays for that.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { packageRoot } from '../src/paths.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly percent: number;
}

export function hotFunctions(profile: CpuProfile, top = 15): { totalMs: number; idlePercent: number; functions: HotFunction[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<string, { name: string; where: string; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  profile.samples.forEach((id, i) => {
    // timeDeltas[i] is the time before sample i; it belongs to the sample (as DevTools does).
    const us = profile.timeDeltas[i] ?? 0;
    const frame = byId.get(id)?.callFrame;
    if (frame === undefined) return;
    totalUs += us;
    if (frame.functionName === '(idle)') { idleUs += us; return; }
    const file = frame.url.startsWith('file://') ? relative(packageRoot, new URL(frame.url).pathname) : frame.url;
    const where = file === '' ? '' : `${file}:${frame.lineNumber + 1}`;
    const name = frame.functionName === '' ? '(anonymous)' : frame.functionName;
    const key = `${name} ${where}`;
    const entry = selfUs.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
  });
  const functions = [...selfUs.values()].sort((a, b) => b.us - a.us).slice(0, top).map((f) => ({
    name: f.name, where: f.where, selfMs: Math.round(f.us / 1000), percent: Math.round((f.us / Math.max(1, totalUs - idleUs)) * 1000) / 10,
  }));
  return { totalMs: Math.round(totalUs / 1000), idlePercent: Math.round((idleUs / Math.max(1, totalUs)) * 1000) / 10, functions };
}

/** The newest .cpuprofile in `dir`, summarised. */
export async function summariseProfileDir(dir: string, top = 15): Promise<ReturnType<typeof hotFunctions> & { file: string }> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).sort();
  const file = files.at(-1);
  if (file === undefined) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
  return { file: join(dir, file), ...hotFunctions(profile, top) };
}
