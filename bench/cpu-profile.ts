/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per
 * function (name, file:line), the top N, plus self time per source file and
 * per package, which is usually the quicker read ("40 % in ssh2's cipher").
 *
 *     node dist-bench/bench/cpu-profile.js FILE.cpuprofile [--top 25]
 *     node dist-bench/bench/cpu-profile.js FILE.cpuprofile --callers REGEX [--depth 4]
 *
 * --callers lists, for the functions whose "name url" matches REGEX, their
 * self time split by call path (DEPTH frames up): who pays for a hot spot.
 *
 * `npm run bench -- --cpu-prof DIR` writes the gateway's profile into DIR
 * and prints this summary at the end.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface SelfTime {
  key: string;
  ms: number;
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  functions: SelfTime[];
  files: SelfTime[];
  packages: SelfTime[];
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** "ssh2", "@noble/ciphers", "capstan: sftp", "node:internal", "(native)" */
function packageOf(url: string): string {
  if (url === '') return '(native / GC / program)';
  if (url.startsWith('node:')) return 'node: (core)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = url.slice(nm + 'node_modules/'.length).split('/');
    return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
  }
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return `capstan: ${url.slice(dist + 6).split('/')[0]}`;
  return url;
}

function top(map: Map<string, number>, totalMs: number, n: number): SelfTime[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([key, ms]) => ({ key, ms, share: totalMs > 0 ? ms / totalMs : 0 }));
}

export function summariseProfile(profile: CpuProfile, n = 25): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const functions = new Map<string, number>();
  const files = new Map<string, number>();
  const packages = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const ms = us / 1000;
    totalMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const name = frame.functionName || '(anonymous)';
    const where = frame.url ? `${shortUrl(frame.url)}:${frame.lineNumber + 1}` : '';
    const add = (map: Map<string, number>, key: string): void => void map.set(key, (map.get(key) ?? 0) + ms);
    add(functions, where ? `${name} ${where}` : name);
    add(files, shortUrl(frame.url));
    add(packages, packageOf(frame.url));
  }
  const busy = totalMs - idleMs;
  return { totalMs, idleMs, functions: top(functions, busy, n), files: top(files, busy, n), packages: top(packages, busy, n) };
}

export function formatSummary(s: ProfileSummary): string {
  const table = (title: string, rows: SelfTime[]): string[] => [
    title,
    ...rows.map((r) => `  ${r.ms.toFixed(0).padStart(8)} ms ${(r.share * 100).toFixed(1).padStart(5)} %  ${r.key}`),
  ];
  return [
    `profile: ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.idleMs / 1000).toFixed(1)} s idle; shares below are of the ${((s.totalMs - s.idleMs) / 1000).toFixed(1)} s busy`,
    ...table('self time by package:', s.packages.slice(0, 12)),
    ...table('self time by file:', s.files.slice(0, 15)),
    ...table('self time by function:', s.functions),
  ].join('\n');
}

/** Self time of the functions matching `pattern`, split by their callers `depth` frames up. */
export function callersOf(profile: CpuProfile, pattern: RegExp, depth = 4, n = 15): SelfTime[] {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const paths = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)?.callFrame;
    if (!frame || !pattern.test(`${frame.functionName} ${frame.url}`)) continue;
    const chain: string[] = [`${frame.functionName || '(anonymous)'}`];
    for (let cur = parent.get(id), d = 0; cur !== undefined && d < depth; cur = parent.get(cur), d++) {
      const f = byId.get(cur)!.callFrame;
      chain.push(`${f.functionName || '(anonymous)'} ${shortUrl(f.url)}:${f.lineNumber + 1}`);
    }
    const key = chain.join(' <- ');
    paths.set(key, (paths.get(key) ?? 0) + us / 1000);
    total += us / 1000;
  }
  return top(paths, total, n);
}

export async function summariseProfileFile(file: string, n = 25): Promise<string> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  return formatSummary(summariseProfile(profile, n));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const argv = process.argv.slice(2);
  const optionValue = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const values = new Set(['--top', '--callers', '--depth'].map((f) => argv.indexOf(f) + 1).filter((i) => i > 0));
  const file = argv.find((a, i) => !a.startsWith('--') && !values.has(i));
  const callers = optionValue('--callers');
  if (!file) {
    process.stderr.write('usage: node dist-bench/bench/cpu-profile.js FILE.cpuprofile [--top 25] [--callers REGEX [--depth 4]]\n');
    process.exitCode = 2;
  } else {
    readFile(file, 'utf8')
      .then((text) => {
        const profile = JSON.parse(text) as CpuProfile;
        const n = Number(optionValue('--top') ?? 25);
        if (callers === undefined) return formatSummary(summariseProfile(profile, n));
        const rows = callersOf(profile, new RegExp(callers), Number(optionValue('--depth') ?? 4), n);
        return rows.map((r) => `${r.ms.toFixed(0).padStart(8)} ms ${(r.share * 100).toFixed(1).padStart(5)} %  ${r.key}`).join('\n');
      })
      .then(
        (text) => process.stdout.write(`${text}\n`),
        (err: unknown) => {
          process.stderr.write(`${String(err)}\n`);
          process.exitCode = 1;
        },
      );
  }
}
