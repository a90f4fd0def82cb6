import type { ShellWord } from '../shell-words.js';

/** Paths one word may expand to, and names it may look at to find them. */
export const MAX_GLOB_MATCHES = 10_000;
export const MAX_GLOB_NAMES = 200_000;

/** A glob asked for more than MAX_GLOB_MATCHES paths or MAX_GLOB_NAMES names. */
export class GlobLimitError extends Error {
  constructor() {
    super('too many names match');
    this.name = 'GlobLimitError';
  }
}

export interface GlobOptions {
  /** The session's user: `~` and `~USER` are its home, `/`. */
  user: string;
  /** The names in directory `dir` (`.` and `..` left out); a directory that cannot be listed gives none. */
  list(dir: string): Promise<string[]>;
}

/**
 * What sh makes of one word of a remote path, as the login shell on the
 * other end of a legacy scp would: a bare `~` or `~USER` at its start is the
 * home (`/`; another user's name stays as written); each path component
 * holding a bare `*`, `?` or `[…]` is matched against the names of the
 * directory so far (a leading `.` only by a literal one; sorted); a word
 * that matches nothing stays as written, so the caller reports it as not
 * found. Quoted and escaped characters are never special.
 */
export async function expandWord(word: ShellWord, opts: GlobOptions): Promise<string[]> {
  const { text, bare } = tilde(word, opts.user);
  if (!bare.some((b, i) => b && '*?['.includes(text.charAt(i)))) return [text];
  const components: { text: string; bare: boolean[] }[] = [];
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    if (i === text.length || text[i] === '/') {
      components.push({ text: text.slice(start, i), bare: bare.slice(start, i) });
      start = i + 1;
    }
  }
  let prefixes = [''];
  let looked = 0;
  for (const [index, component] of components.entries()) {
    const last = index === components.length - 1;
    const match = matcher(component.text, component.bare);
    const next: string[] = [];
    for (const prefix of prefixes) {
      if (match === undefined) {
        next.push(prefix + component.text + (last ? '' : '/'));
        continue;
      }
      const names = await opts.list(prefix === '' ? '.' : prefix);
      looked += names.length;
      if (looked > MAX_GLOB_NAMES) throw new GlobLimitError();
      for (const name of names.sort()) if (match(name)) next.push(prefix + name + (last ? '' : '/'));
      if (next.length > MAX_GLOB_MATCHES) throw new GlobLimitError();
    }
    prefixes = next;
    if (prefixes.length === 0) return [text];
  }
  return prefixes;
}

/** `~` or `~USER` (this user) at the start, bare, replaced by `/`. */
function tilde(word: ShellWord, user: string): { text: string; bare: boolean[] } {
  const bare = [...word.bare];
  if (!word.text.startsWith('~') || bare[0] !== true) return { text: word.text, bare };
  const slash = word.text.indexOf('/');
  const end = slash === -1 ? word.text.length : slash;
  const name = word.text.slice(1, end);
  if ((name !== '' && name !== user) || !bare.slice(0, end).every(Boolean)) return { text: word.text, bare };
  const rest = slash === -1 ? '' : word.text.slice(slash + 1);
  return { text: `/${rest}`, bare: [false, ...bare.slice(slash === -1 ? end : slash + 1)] };
}

/** A test for names matching a component with bare glob characters; undefined if it has none. */
export function matcher(text: string, bare: readonly boolean[]): ((name: string) => boolean) | undefined {
  let source = '';
  let glob = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (bare[i] === true && c === '*') {
      source += '.*';
      glob = true;
    } else if (bare[i] === true && c === '?') {
      source += '.';
      glob = true;
    } else if (bare[i] === true && c === '[') {
      const close = classEnd(text, bare, i);
      if (close === -1) {
        source += escapeChar(c);
        continue;
      }
      source += bracket(text.slice(i + 1, close));
      glob = true;
      i = close;
    } else {
      source += escapeChar(c);
    }
  }
  if (!glob) return undefined;
  let re: RegExp;
  try {
    re = new RegExp(`^${source}$`, 'su');
  } catch {
    return () => false; // a range out of order matches nothing, as in sh
  }
  // A leading dot is matched only by a literal one (sh's rule for hidden names).
  const hiddenOk = text.startsWith('.');
  return (name) => (hiddenOk || !name.startsWith('.')) && re.test(name);
}

/** Where the bare `]` closing the class opened at `open` is (a `]` first in the class is a member), or -1. */
function classEnd(text: string, bare: readonly boolean[], open: number): number {
  let i = open + 1;
  if (text[i] === '!' || text[i] === '^') i++;
  if (text[i] === ']') i++;
  for (; i < text.length; i++) if (text[i] === ']' && bare[i] === true) return i;
  return -1;
}

/** A regular-expression class for the inside of `[…]`: `!` or `^` first negates, `a-z` is a range. */
function bracket(inside: string): string {
  let negate = false;
  let body = inside;
  if (body.startsWith('!') || body.startsWith('^')) {
    negate = true;
    body = body.slice(1);
  }
  let out = '';
  const chars = [...body];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    const to = chars[i + 2];
    if (chars[i + 1] === '-' && to !== undefined) {
      out += `${classChar(c)}-${classChar(to)}`;
      i += 2;
    } else {
      out += classChar(c);
    }
  }
  return `[${negate ? '^' : ''}${out}]`;
}

function classChar(c: string): string {
  return /[\\\]^[-]/.test(c) ? `\\${c}` : c;
}

function escapeChar(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
