import { describe, expect, it } from 'vitest';
import { parseScpCommand } from '../../src/sftp/scp/command.js';
import { expandWord, GlobLimitError, MAX_GLOB_NAMES, matcher } from '../../src/sftp/scp/glob.js';
import { type ShellWord, shellWords } from '../../src/sftp/shell-words.js';

const word = (text: string): ShellWord => {
  const words = shellWords(text);
  if (words?.length !== 1) throw new Error(`not one word: ${text}`);
  return words[0] as ShellWord;
};

describe('parseScpCommand', () => {
  it('reads what OpenSSH and PuTTY send', () => {
    expect(parseScpCommand('scp -v -r -p -d -t -- /a b')).toEqual({ error: 'scp: ambiguous target' });
    const to = parseScpCommand('scp -v -r -p -d -t /x/');
    expect(to).toMatchObject({ direction: 'to', recursive: true, preserve: true, targetIsDirectory: true });
    expect(parseScpCommand('scp -rpf -- -dash')).toMatchObject({ direction: 'from', recursive: true, paths: [{ text: '-dash' }] });
    expect(parseScpCommand("scp -f 'a b' c\\ d")).toMatchObject({ paths: [{ text: 'a b' }, { text: 'c d' }] });
  });

  it('is not scp, or not an scp this server runs', () => {
    expect(parseScpCommand('ls -l')).toBeUndefined();
    expect(parseScpCommand("'scp' -t /")).toBeUndefined();
    expect(parseScpCommand('scp -t')).toEqual({ error: 'scp: no path given' });
    expect(parseScpCommand('scp -x -t /')).toEqual({ error: 'scp: unknown option -- x' });
    expect(parseScpCommand('scp -t -f /')).toEqual({ error: 'scp: exactly one of -t and -f' });
    expect(parseScpCommand('scp -v a other:b')).toMatchObject({ error: expect.stringMatching(/scp -3/) });
    for (const bad of ['scp -f a;ls', 'scp -f $HOME', 'scp -f `id`', 'scp -f a|b', 'scp -f a>b', 'scp -f #x'])
      expect(parseScpCommand(bad), bad).toMatchObject({ error: expect.stringMatching(/no shell/) });
    // A backslash inside "…" is not taken (sh would give it a meaning there).
    expect(parseScpCommand('scp -f \'a;b\' "\\$x"')).toEqual({ error: 'scp: command not understood' });
    expect(parseScpCommand("scp -f 'a;b' '$x' \\#x")).toMatchObject({ paths: [{ text: 'a;b' }, { text: '$x' }, { text: '#x' }] });
    expect(parseScpCommand("scp -f 'open")).toEqual({ error: 'scp: command not understood' });
  });
});

describe('glob matching', () => {
  const m = (pattern: string) => {
    const w = word(pattern);
    return matcher(w.text, w.bare);
  };

  it('matches as sh does: *, ?, classes, ranges, negation; hidden names only by a literal dot', () => {
    expect(m('plain')).toBeUndefined();
    expect(m("'*.txt'")).toBeUndefined();
    const star = m('*.txt');
    expect(['a.txt', '.h.txt', 'a.txt.gz', 'é.txt'].map((n) => star?.(n))).toEqual([true, false, false, true]);
    expect(m('.*')?.('.h')).toBe(true);
    expect(['a1', 'b2', 'c1', 'ab'].map((n) => m('[ab][0-9]')?.(n))).toEqual([true, true, false, false]);
    expect(['a', 'x'].map((n) => m('[!a]')?.(n))).toEqual([false, true]);
    expect([']', 'a'].map((n) => m('[]a]')?.(n))).toEqual([true, true]);
    expect(m('?')?.('é')).toBe(true);
    expect(m('[z-a]')?.('b')).toBe(false);
    expect(m('a\\*')).toBeUndefined();
    expect(m('[unclosed')).toBeUndefined();
    expect(m('x.(y)+*')?.('x.(y)+z')).toBe(true);
  });

  it('expands component by component against the listing, sorted; no match leaves the word as written', async () => {
    const tree: Record<string, string[]> = { '.': ['b', 'a', 'c.d'], 'a/': ['x.txt', 'y.log'], 'b/': ['z.txt'] };
    const list = async (dir: string) => tree[dir] ?? [];
    expect(await expandWord(word('*/*.txt'), { user: 'u', list })).toEqual(['a/x.txt', 'b/z.txt']);
    expect(await expandWord(word('~/nope*'), { user: 'u', list })).toEqual(['/nope*']);
    expect(await expandWord(word('~u/a'), { user: 'u', list })).toEqual(['/a']);
    expect(await expandWord(word('~other/a'), { user: 'u', list })).toEqual(['~other/a']);
    expect(await expandWord(word("'~'/a"), { user: 'u', list })).toEqual(['~/a']);
    expect(await expandWord(word('?'), { user: 'u', list })).toEqual(['a', 'b']);
  });

  it('is bounded: a glob over too many names is an error, not a walk without end', async () => {
    const many = Array.from({ length: MAX_GLOB_NAMES + 1 }, (_, i) => `n${i}`);
    await expect(expandWord(word('*'), { user: 'u', list: async () => many })).rejects.toBeInstanceOf(GlobLimitError);
  });
});
