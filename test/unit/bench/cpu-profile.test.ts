import { describe, expect, it } from 'vitest';
import { hotFunctions } from '../../../bench/cpu-profile.js';

describe('bench CPU profile summary', () => {
  it('sums self time per function over the tree, leaves idle out of the shares, largest first', () => {
    const frame = (functionName: string, lineNumber: number) => ({ functionName, url: 'file:///work/main/src/x.js', lineNumber });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', 0) },
        { id: 2, callFrame: frame('tick', 9) },
        { id: 3, callFrame: frame('send', 19) },
        { id: 4, callFrame: frame('tick', 9) }, // the same function reached another way
        { id: 5, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
      ],
      startTime: 0,
      endTime: 10_000,
      samples: [2, 3, 4, 5, 3, 3],
      timeDeltas: [1000, 1000, 1000, 4000, 1000, 2000],
    };
    const hot = hotFunctions(profile, 5);
    expect(hot.totalMs).toBe(10);
    expect(hot.idlePercent).toBe(40);
    expect(hot.functions.map((f) => [f.name, f.selfMs, f.percent])).toEqual([['send', 4, 66.7], ['tick', 2, 33.3]]);
    expect(hot.functions[1]?.where).toMatch(/x\.js:10$/);
  });
});
