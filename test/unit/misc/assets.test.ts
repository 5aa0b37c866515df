import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROMPT_IDS } from '../../../src/ivr/prompts.js';
import { promptsDir, sippScenariosDir } from '../../../src/paths.js';
// @ts-expect-error plain ESM script without types
import { outdated } from '../../../sipp-scenarios/build.mjs';

describe('committed assets', () => {
  it('every prompt the IVR plays has a WAV and a line in prompts.txt', () => {
    const list = readFileSync(join(promptsDir, 'en', 'prompts.txt'), 'utf8');
    for (const id of PROMPT_IDS) {
      expect(existsSync(join(promptsDir, 'en', `${id}.wav`)), `${id}.wav`).toBe(true);
      expect(list).toMatch(new RegExp(`^${id}\\|`, 'm'));
    }
  });

  it('the sipp scenarios are generated from the current build.mjs', () => {
    expect((outdated as (dir: string) => string[])(sippScenariosDir)).toEqual([]);
  });
});
