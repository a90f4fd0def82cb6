import { randomBytes } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { isIP } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { addAccountLine, formatKeyLine, formatPasswordLine, hashPassword, isValidUserName } from '../../auth/index.js';
import { CONFIG_FILE, loadConfig, type HostPort, type NodeConfig } from '../../config/index.js';
import { initNode } from '../../node/init.js';
import { openNode } from '../../node/open.js';
import { readPublicKeyFile } from '../../node/secrets.js';
import { NODE_DIR_ENV, nodeDirOf, parseListenOption, type GlobalArgs } from '../context.js';
import { UsageError } from '../errors.js';
import { httpLine, listeningLine, say, startLogged } from '../serve.js';
import { existingRoot } from '../accounts.js';
import { isRefusedName } from './account-add.js';

interface DemoArgs extends GlobalArgs {
  listen?: string;
}

/** The public keys demo offers to log in with, in order of preference. */
const KEY_FILES = ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub'];

/**
 * The account name the demo makes: the login name, unless the gateway would
 * refuse it (root, admin, … are on [defender] refused_users: run as root, a
 * demo account `root` could never log in, and each try would count towards
 * a ban of 127.0.0.1) or the accounts file cannot hold it; then `capstan`.
 */
function demoUser(config: NodeConfig): string {
  let name = process.env.USER;
  if (name === undefined || name === '') {
    try {
      name = userInfo().username;
    } catch {
      name = undefined;
    }
  }
  for (const candidate of [name, 'capstan', 'capstan-demo']) {
    if (candidate !== undefined && isValidUserName(candidate) && !isRefusedName(config, candidate)) return candidate;
  }
  throw new UsageError(
    'every name the demo would use is in [defender] refused_users; give the account another name with `capstan account add`',
  );
}

/** The first usable key line among ~/.ssh/id_*.pub, with its file. */
async function findLocalKey(user: string): Promise<{ file: string; line: string } | undefined> {
  for (const name of KEY_FILES) {
    const file = path.join(homedir(), '.ssh', name);
    const key = await readPublicKeyFile(file).catch(() => undefined);
    if (key === undefined) continue;
    try {
      formatKeyLine(user, key.line, 'CS1:DIR:placeholder');
      return { file, line: key.line };
    } catch {
      // a key the accounts file refuses (RSA under 2048 bits, say): try the next
    }
  }
  return undefined;
}

/** How a client on this machine reaches `listen`: a wildcard address means loopback will do. */
function clientHost({ host }: HostPort): string {
  if (host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return isIP(host) === 6 ? `[${host}]` : host;
}

export const demoCommand: CommandModule<GlobalArgs, DemoArgs> = {
  command: 'demo',
  describe:
    'Try capstan: create a node if needed (-d, else $CAPSTAN_NODE_DIR, else ~/.capstan), an account for you, and run the gateway (what npm start does)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('listen', { type: 'string', describe: 'SFTP address, overriding [sftpd] listen' })
      .example('npm start', 'the same as: capstan demo')
      .example('$0 demo -d /tmp/try-capstan', 'use another directory') as unknown as Argv<DemoArgs>,
  handler: async (args) => {
    const listen = parseListenOption(args.listen);
    // The same default as every other command, so `capstan status` (or ls, put, ...) finds this node
    // without -d. A node an older quick start made in ./capstan-node keeps being used.
    const legacy = path.resolve(LEGACY_DEMO_DIR);
    const useLegacy = args.nodeDir === undefined && !process.env[NODE_DIR_ENV] && (await isNodeDir(legacy));
    const nodeDir = useLegacy ? legacy : nodeDirOf(args);
    const overrides = listen ? { sftpListen: listen } : {};
    if (!(await isNodeDir(nodeDir))) {
      await initNode(nodeDir);
      say(`created a capstan node in ${nodeDir}`);
    } else {
      say(`using the capstan node in ${nodeDir}`);
    }
    const config = await loadConfig(nodeDir, overrides);

    const user = demoUser(config);
    let password: string | undefined;
    if ((await existingRoot(config.sftpd.accountsFile, user)) !== undefined) {
      say(`account ${user} exists (its password, if it has one, was shown when it was created; "capstan account" manages it)`);
    } else {
      const key = await findLocalKey(user);
      const node = await openNode(config);
      let rootCap: string;
      try {
        rootCap = (await node.tree.createDirectory()).toString();
      } finally {
        await node.close();
      }
      if (key !== undefined) {
        await addAccountLine(config.sftpd.accountsFile, formatKeyLine(user, key.line, rootCap));
        say(`added account ${user}, logging in with your key ${key.file}`);
      } else {
        const secret = randomBytes(12).toString('base64url');
        password = secret;
        await addAccountLine(config.sftpd.accountsFile, formatPasswordLine(user, await hashPassword(secret), rootCap));
        say(`added account ${user} with password ${secret} (shown once: only its hash is stored)`);
      }
    }

    const { gateway, stopped } = await startLogged(config);
    say(listeningLine(gateway));
    const http = httpLine(gateway);
    if (http) say(http);
    if (gateway.sftp) {
      for (const line of connectLines({ user, address: gateway.sftp.address, password, nodeDir, usedDefault: nodeDir === nodeDirOf({}) }))
        say(line);
    }
    await stopped();
  },
};

/**
 * What to type next, for this account and node: the clients, then the CLI
 * on the same node. A password account's lines show how to give sshfs the
 * password without a prompt (`-o password_stdin`: sshpass cannot, sshfs
 * reads the password before it daemonizes and sshpass returns 0 having
 * mounted nothing). The password itself appears only the one time it was
 * made, as in the "added account" line.
 */
export function connectLines(o: {
  user: string;
  address: HostPort;
  password: string | undefined;
  nodeDir: string;
  usedDefault: boolean;
}): string[] {
  const host = clientHost(o.address);
  const port = o.address.port;
  const target = `${o.user}@${host}`;
  const cli = cliCommand();
  // Keepalives keep an idle mount past [sftpd] idle_timeout; reconnect brings it back after a restart.
  const mountOptions = 'reconnect,ServerAliveInterval=15';
  const lines = [
    'connect with:',
    `  sftp -P ${port} ${target}`,
    `  mkdir -p ~/capstan && sshfs -o ${mountOptions} -p ${port} ${target}:/ ~/capstan`,
  ];
  if (o.password !== undefined) {
    lines.push(
      `  (sshfs asks for the password; in a script: echo '${o.password}' | sshfs -o password_stdin,${mountOptions} -p ${port} ${target}:/ ~/capstan)`,
    );
  }
  lines.push('  unmount with: fusermount3 -u ~/capstan');
  lines.push('from the command line, in another terminal, while this runs:');
  if (!o.usedDefault) lines.push(`  export ${NODE_DIR_ENV}=${shellQuote(o.nodeDir)}`);
  lines.push(`  ${cli} status`);
  lines.push(`  ROOT=$(${cli} account list --show-caps | awk -F'\\t' '$1 == "${o.user}" && $2 == "root" {print $3}')`);
  lines.push(`  ${cli} ls -l "$ROOT"        # what you uploaded; "$ROOT/path" for a file or folder in it`);
  lines.push('stop with Ctrl-C');
  return lines;
}

/** How the user runs this CLI: `capstan` when that is what PATH finds, else the script's path. */
function cliCommand(): string {
  const script = process.argv[1] ?? 'capstan';
  const onPath = (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      return dir !== '' && realpathSync(path.join(dir, 'capstan')) === realpathSync(script);
    } catch {
      return false;
    }
  });
  if (onPath) return 'capstan';
  const relative = path.relative(process.cwd(), script);
  return relative.startsWith('..') || path.isAbsolute(relative) ? shellQuote(script) : `./${relative}`;
}

function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}

/** Where older quick starts made their node (the current directory); still used when it exists. */
const LEGACY_DEMO_DIR = 'capstan-node';

async function isNodeDir(dir: string): Promise<boolean> {
  return access(path.join(dir, CONFIG_FILE)).then(
    () => true,
    () => false,
  );
}
