#!/usr/bin/env -S node --single-threaded-gc --expose-gc --max-semi-space-size=4 --no-incremental-marking-task
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { accountCommand } from './commands/account.js';
import { banCommand } from './commands/ban.js';
import { checkCommand } from './commands/check.js';
import { cpCommand } from './commands/cp.js';
import { demoCommand } from './commands/demo.js';
import { exchangeCommand } from './commands/exchange.js';
import { gcCommand } from './commands/gc.js';
import { getCommand } from './commands/get.js';
import { initCommand } from './commands/init.js';
import { lnCommand } from './commands/ln.js';
import { lsCommand } from './commands/ls.js';
import { mkdirCommand } from './commands/mkdir.js';
import { mvCommand } from './commands/mv.js';
import { pinCommand } from './commands/pin.js';
import { snapshotCommand } from './commands/snapshot.js';
import { putCommand } from './commands/put.js';
import { readonlyCommand } from './commands/readonly.js';
import { repackCommand } from './commands/repack.js';
import { rmCommand } from './commands/rm.js';
import { runCommand } from './commands/run.js';
import { statusCommand } from './commands/status.js';
import { EXIT_USAGE, UsageError, redactCaps, reportError } from './errors.js';
import { CLI_VERSION } from './version.js';
import { STDIO_ARG } from './context.js';

/**
 * capstan's command line. Each command is one module in ./commands; this file
 * only wires them and turns every failure into one `capstan: …` line on
 * stderr with a non-zero exit (see ./errors.ts).
 */
async function main(argv: string[]): Promise<number> {
  const debug = argv.includes('--debug');
  const cli = yargs(argv)
    .scriptName('capstan')
    .usage('$0 COMMAND [options]\n\nA capability-based SFTP gateway to an encrypted, content-addressed chunk store.')
    .option('node-dir', {
      alias: 'd',
      type: 'string',
      global: true,
      describe: 'node directory',
      defaultDescription: '$CAPSTAN_NODE_DIR, else ~/.capstan',
    })
    .option('debug', { type: 'boolean', global: true, describe: 'print stack traces of errors' })
    .option('progress', {
      type: 'boolean',
      global: true,
      describe: 'progress line (bytes, rate, ETA) on stderr for put, get, check and gc when stderr is a terminal; --no-progress: never',
      defaultDescription: 'on',
    })
    .command(initCommand)
    .command(runCommand)
    .command(demoCommand)
    .command(accountCommand)
    .command(banCommand)
    .command(mkdirCommand)
    .command(lsCommand)
    .command(putCommand)
    .command(getCommand)
    .command(rmCommand)
    .command(mvCommand)
    .command(cpCommand)
    .command(lnCommand)
    .command(exchangeCommand)
    .command(readonlyCommand)
    .command(checkCommand)
    .command(gcCommand)
    .command(repackCommand)
    .command(pinCommand)
    .command(snapshotCommand)
    .command(statusCommand)
    .example('$0 init && $0 account add alice --key ~/.ssh/id_ed25519.pub', 'a node with one account')
    .example('$0 run', 'serve it over SFTP')
    .example('$0 put notes.txt "$ROOT/notes.txt"', 'upload to the directory whose cap is in $ROOT')
    .example('$0 check --verify "$ROOT"', 'read everything back; a progress line on a terminal')
    .example('$0 ls --json "$ROOT" | jq -r .name', 'JSON for scripts (ls, status, account list, check)')
    .demandCommand(1, 'name a command (capstan --help lists them)')
    .recommendCommands()
    .strict()
    .help()
    .alias('h', 'help')
    .version(CLI_VERSION)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .epilogue(
      'CAP/PATH arguments are a cap, then optionally /path/below/it. Caps are secrets: quote them, and keep them out of shell history where you can.',
    )
    .fail((message, err) => {
      // Handler errors come through here too: keep them as they are.
      if (err) throw err;
      const text = message ?? 'invalid command line';
      throw new UsageError(/--help/.test(text) ? text : `${text} (see capstan --help)`);
    });
  try {
    await cli.parseAsync();
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return reportError(err, debug);
  }
}

main(hideBin(process.argv).map((a) => (a === '-' ? STDIO_ARG : a))).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`capstan: ${redactCaps(String((err as Error)?.message ?? err))}\n`);
    process.exitCode = EXIT_USAGE;
  },
);
