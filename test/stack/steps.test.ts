/** The stack check covers every sipp scenario the embedded e2e tests run, and nothing else. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot, sippScenariosDir } from '../../src/paths.js';
import { STACK_STEPS } from './steps.js';

describe('stack steps', () => {
  it('run every scenario the e2e tests use, and every scenario file in sipp-scenarios/', () => {
    const e2eDir = join(packageRoot, 'test', 'e2e');
    const used = new Set<string>();
    for (const file of readdirSync(e2eDir).filter((f) => f.endsWith('.test.ts'))) {
      for (const m of readFileSync(join(e2eDir, file), 'utf8').matchAll(/'([a-z0-9-]+\.xml)'/g)) used.add(m[1]!);
    }
    const files = readdirSync(sippScenariosDir).filter((f) => f.endsWith('.xml'));
    const stack = new Set(STACK_STEPS.flatMap((s) => [s.scenario, ...(s.alongside !== undefined ? [s.alongside.scenario] : [])]));
    expect([...used].filter((s) => !stack.has(s))).toEqual([]);
    expect(files.filter((f) => !stack.has(f))).toEqual([]);
    expect([...stack].filter((s) => !files.includes(s))).toEqual([]);
  });

  it('have unique names', () => {
    const names = STACK_STEPS.map((s) => s.name);
    expect(new Set(names).size).toBe(names.length);
  });
});
