import { readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * The fail2ban filter published in docs/operations.md, and a JavaScript
 * rendering of what fail2ban does with it (fail2ban itself is not a test
 * dependency): expand `<HOST>`, find the date with `datepattern` and cut it
 * out of the line, then search `failregex` in what is left. Sources:
 * fail2ban/server/failregex.py (R_HOST, IPAddr.IP_4_RE / IP_6_RE),
 * datetemplate.py (the word boundaries around a datepattern, group 1 is the
 * date), strptime.py (%Y … %z), filter.py processLine (the line minus the
 * date). ConfigParser's `%%` becomes `%` first.
 */

const IP_4_RE = String.raw`(?:\d{1,3}\.){3}\d{1,3}`;
const IP_6_RE = String.raw`(?:[0-9a-fA-F]{1,4}::?|::){1,7}(?:[0-9a-fA-F]{1,4}|(?<=:):)`;
/** fail2ban's `<HOST>` with the default usedns (ipv4, ipv6 or a DNS name). */
export const HOST_RE = String.raw`(?:\[?(?:(?:::f{4,6}:)?(?<ip4>${IP_4_RE})|(?<ip6>${IP_6_RE}))\]?|(?<dns>[\w\-.^_]*\w))`;

const TIME_RE: Record<string, string> = {
  Y: String.raw`(?<Y>\d\d\d\d)`,
  m: String.raw`(?<m>1[0-2]|0[1-9]|[1-9])`,
  d: String.raw`(?<d>3[01]|[12]\d|0[1-9]|[1-9]| [1-9])`,
  H: String.raw`(?<H>2[0-3]|[0-1]\d|\d)`,
  M: String.raw`(?<M>[0-5]\d|\d)`,
  S: String.raw`(?<S>6[0-1]|[0-5]\d|\d)`,
  f: String.raw`(?<f>[0-9]{1,6})`,
  z: String.raw`(?<z>Z|UTC|GMT|[+-][01]\d(?::?\d{2})?)`,
};

export interface Fail2banFilter {
  failregex: string;
  datepattern: string;
}

/** The [Definition] block of the ```ini fence in docs/operations.md that defines failregex. */
export async function filterFromDocs(repo: string): Promise<Fail2banFilter> {
  const doc = await readFile(path.join(repo, 'docs/operations.md'), 'utf8');
  const block = [...doc.matchAll(/```ini\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => /^failregex\s*=/m.test(b));
  if (block === undefined) throw new Error('no fail2ban filter block in docs/operations.md');
  const value = (key: string): string => {
    const m = new RegExp(`^${key}\\s*=\\s*(.*)$`, 'm').exec(block);
    if (!m) throw new Error(`filter has no ${key}`);
    return m[1]!.trim();
  };
  return { failregex: value('failregex'), datepattern: value('datepattern') };
}

/** What fail2ban would do with one log line: the host it would ban, or undefined. */
export function matchLine(filter: Fail2banFilter, line: string): string | undefined {
  const datepattern = filter.datepattern.replace(/%%/g, '%');
  const dateBody = datepattern.replace(/%([A-Za-z])/g, (_, c: string) => {
    const re = TIME_RE[c];
    if (re === undefined) throw new Error(`datepattern directive %${c} not translated`);
    return re;
  });
  const date = new RegExp(String.raw`(?:^|\b|\W)(${dateBody})(?=\b|\W|$)`);
  const m = date.exec(line);
  const withoutDate = m ? line.slice(0, m.index + m[0].length - m[1]!.length) + line.slice(m.index + m[0].length) : line;
  const fail = new RegExp(filter.failregex.replace(/%%/g, '%').replace(/<HOST>/g, HOST_RE));
  const found = fail.exec(withoutDate + '\n');
  if (!found) return undefined;
  return found.groups?.ip4 ?? found.groups?.ip6 ?? found.groups?.dns;
}
