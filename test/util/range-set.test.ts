import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../src/util/range-set.js';

type Op = { kind: 'add'; start: number; length: number } | { kind: 'clip'; limit: number };

const SPAN = 64;
const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('add' as const), start: fc.nat(SPAN), length: fc.nat(12) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('clip' as const), limit: fc.nat(SPAN + 12) }) },
);

/** The set as one flag per integer, and its ranges as the set should hold them (maximal runs). */
function runsOf(flags: boolean[]): [number, number][] {
  const runs: [number, number][] = [];
  flags.forEach((held, i) => {
    if (!held) return;
    const last = runs.at(-1);
    if (last !== undefined && last[1] === i) last[1] = i + 1;
    else runs.push([i, i + 1]);
  });
  return runs;
}

describe('RangeSet', () => {
  it('agrees with one flag per integer: merged maximal ranges, pieces covering any span in order', () => {
    fc.assert(
      fc.property(fc.array(opArbitrary, { maxLength: 30 }), fc.nat(SPAN + 12), fc.nat(30), (ops, from, length) => {
        const set = new RangeSet();
        let flags: boolean[] = [];
        for (const op of ops) {
          if (op.kind === 'add') {
            set.add(op.start, op.start + op.length);
            for (let i = op.start; i < op.start + op.length; i++) flags[i] = true;
          } else {
            set.clip(op.limit);
            flags = flags.slice(0, op.limit);
          }
        }
        const runs = runsOf(flags);
        expect(set.count).toBe(runs.length);
        const pieces = [...set.pieces(from, from + length)];
        let at = from;
        for (const piece of pieces) {
          expect(piece.start).toBe(at);
          expect(piece.end).toBeGreaterThan(piece.start);
          for (let i = piece.start; i < piece.end; i++) expect(flags[i] === true).toBe(piece.held);
          at = piece.end;
        }
        expect(at).toBe(from + length);
        const gaps = runs.slice(1).map(([start], i) => start - runs[i]![1]);
        const gap = set.smallestGap();
        if (gaps.length === 0) expect(gap).toBeUndefined();
        else expect(gap!.end - gap!.start).toBe(Math.min(...gaps));
      }),
      { numRuns: 500 },
    );
  });
});
