import { pathToFileURL } from 'node:url';

/** The value after `name` in `argv` (`--files 200`), or undefined when the flag is absent. */
export function optionValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
}

/** optionValue as a number. */
export function numericOption(argv: string[], name: string): number | undefined {
  const value = optionValue(argv, name);
  return value === undefined ? undefined : Number(value);
}

/**
 * Runs `main` with the command line's arguments when `moduleUrl` (the
 * caller's import.meta.url) is the script node was started with; a failure
 * is printed and exits 1. Imported as a library, the module runs nothing.
 */
export function runIfMain(moduleUrl: string, main: (argv: string[]) => Promise<void>): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
