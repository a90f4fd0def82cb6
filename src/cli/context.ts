import { homedir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { loadConfig, parseHostPort, type ConfigOverrides, type HostPort, type NodeConfig } from '../config/index.js';
import { openNode, type OpenNode } from '../node/open.js';
import { UsageError } from './errors.js';

/** Options every command has (declared in main.ts). */
export interface GlobalArgs {
  nodeDir?: string | undefined;
  debug?: boolean | undefined;
  /** false with --no-progress; see progress.ts. */
  progress?: boolean | undefined;
}

export const NODE_DIR_ENV = 'CAPSTAN_NODE_DIR';

/**
 * A lone `-` on the command line (stdin or stdout). yargs-parser reads `-` as
 * an empty flag and hands the positional over as '' or true, so main.ts swaps
 * it for this before parsing: NUL cannot occur in a real argument.
 */
export const STDIO_ARG = '\0-';

export function isStdio(arg: string | undefined): boolean {
  return arg === STDIO_ARG;
}

/** -d, else $CAPSTAN_NODE_DIR, else `fallback` (~/.capstan for every command but demo). */
export function nodeDirOf(args: GlobalArgs, fallback = path.join(homedir(), '.capstan')): string {
  const given = args.nodeDir ?? process.env[NODE_DIR_ENV];
  return path.resolve(given !== undefined && given !== '' ? given : fallback);
}

export function parseListenOption(value: string | undefined): HostPort | undefined {
  if (value === undefined) return undefined;
  const hp = parseHostPort(value);
  if (!hp) throw new UsageError(`--listen: expected HOST:PORT, got ${JSON.stringify(value)}`);
  return hp;
}

export async function loadNodeConfig(args: GlobalArgs, overrides: ConfigOverrides = {}): Promise<NodeConfig> {
  return loadConfig(nodeDirOf(args), overrides);
}

/** Runs `fn` with the node's stores open, and closes them whatever happens. */
export async function withNode<T>(args: GlobalArgs, fn: (node: OpenNode) => Promise<T>): Promise<T> {
  const node = await openNode(await loadNodeConfig(args));
  try {
    return await fn(node);
  } finally {
    await node.close();
  }
}

/** Writes to stdout, waiting when its buffer is full (large listings, piped output). */
export async function out(text: string): Promise<void> {
  if (!process.stdout.write(text)) await once(process.stdout, 'drain');
}

/** Reads all of stdin as text, at most `maxBytes` (passwords, keys). */
export async function readStdinText(maxBytes: number): Promise<string> {
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw new UsageError(`stdin: more than ${maxBytes} bytes`);
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}
