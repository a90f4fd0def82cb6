import { out } from './context.js';

/**
 * `--json`: output for programs instead of people, specified field by field
 * in docs/cli-json.md. Reports (status, check) are one JSON document;
 * listings (ls, account list) are JSON Lines, one object per line, so a
 * long listing can be read as it comes and filtered line by line. Either way
 * stdout carries nothing else, and caps appear only where the human output
 * shows them too (`account list --show-caps`).
 */

/** The yargs option, with what this command prints in `describe`. */
export function jsonOption(describe: string) {
  return { type: 'boolean', default: false, describe: `print JSON: ${describe}` } as const;
}

/** One JSON value on one line of stdout. */
export async function outJson(value: unknown): Promise<void> {
  await out(`${JSON.stringify(value)}\n`);
}
