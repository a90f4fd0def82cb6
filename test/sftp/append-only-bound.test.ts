import { describe, expect, it } from 'vitest';
import { RecentSet } from '../../src/sftp/append-only.js';

/** What an append-only session remembers is bounded; forgetting only ever refuses more. */
describe('append-only: the bounded set of names a session made', () => {
  it('past the bound forgets the oldest; adding again makes a name the newest', () => {
    const set = new RecentSet(3);
    for (const name of ['a', 'b', 'c']) set.add(name);
    set.add('a'); // a is now the newest: b is the oldest
    set.add('d');
    expect(['a', 'b', 'c', 'd'].filter((n) => set.has(n))).toEqual(['a', 'c', 'd']);
    set.delete('c');
    set.add('e');
    expect(['a', 'b', 'c', 'd', 'e'].filter((n) => set.has(n))).toEqual(['a', 'd', 'e']);
    set.add('f');
    expect(set.has('a')).toBe(false);
  });
});
