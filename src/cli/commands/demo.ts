import { randomBytes } from 'node:crypto';
import { access } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import path from 'node:path';
import { isIP } from 'node:net';
import type { Argv, CommandModule } from 'yargs';
import { addAccountLine, formatKeyLine, formatPasswordLine, hashPassword, isValidUserName } from '../../auth/index.js';
import { CONFIG_FILE, loadConfig, type HostPort } from '../../config/index.js';
import { initNode } from '../../node/init.js';
import { openNode } from '../../node/open.js';
import { readPublicKeyFile } from '../../node/secrets.js';
import { parseListenOption, type GlobalArgs } from '../context.js';
import { httpLine, listeningLine, say, startLogged, stopOnSignal } from '../serve.js';
import { existingRoot } from './account-add.js';

interface DemoArgs extends GlobalArgs {
  listen?: string;
}

/** The public keys demo offers to log in with, in order of preference. */
const KEY_FILES = ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub'];

function localUser(): string {
  let name = process.env.USER;
  if (name === undefined || name === '') {
    try {
      name = userInfo().username;
    } catch {
      name = undefined;
    }
  }
  // A login name outside the accounts file's alphabet (spaces, say) gets a fixed one.
  return name !== undefined && isValidUserName(name) ? name : 'capstan';
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
  describe: 'Try capstan: create ./capstan-node if needed, an account for you, and run the gateway (what npm start does)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('listen', { type: 'string', describe: 'SFTP address, overriding [sftpd] listen' })
      .example('npm start', 'the same as: capstan demo')
      .example('$0 demo -d /tmp/try-capstan', 'use another directory') as unknown as Argv<DemoArgs>,
  handler: async (args) => {
    const listen = parseListenOption(args.listen);
    // -d wins; otherwise ./capstan-node in the current directory, so a demo never touches ~/.capstan.
    const nodeDir = path.resolve(args.nodeDir ?? 'capstan-node');
    const overrides = listen ? { sftpListen: listen } : {};
    const isNode = await access(path.join(nodeDir, CONFIG_FILE)).then(
      () => true,
      () => false,
    );
    if (!isNode) {
      await initNode(nodeDir);
      say(`created a capstan node in ${nodeDir}`);
    } else {
      say(`using the capstan node in ${nodeDir}`);
    }
    const config = await loadConfig(nodeDir, overrides);

    const user = localUser();
    if ((await existingRoot(config.sftpd.accountsFile, user)) !== undefined) {
      say(`account ${user} exists (its password, if it has one, was shown when it was created; "capstan account" manages it)`);
    } else {
      const key = await findLocalKey(user);
      const password = key === undefined ? randomBytes(12).toString('base64url') : undefined;
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
        await addAccountLine(config.sftpd.accountsFile, formatPasswordLine(user, await hashPassword(password!), rootCap));
        say(`added account ${user} with password ${password} (shown once: only its hash is stored)`);
      }
    }

    const { gateway, log } = await startLogged(config);
    say(listeningLine(gateway));
    const http = httpLine(gateway);
    if (http) say(http);
    if (gateway.sftp) {
      const host = clientHost(gateway.sftp.address);
      const port = gateway.sftp.address.port;
      say('connect with:');
      say(`  sftp -P ${port} ${user}@${host}`);
      say(`  sshfs -p ${port} ${user}@${host}:/ ~/capstan`);
      say('(sshfs needs the mount point first: mkdir -p ~/capstan; unmount with: fusermount3 -u ~/capstan)');
      say('stop with Ctrl-C');
    }
    await stopOnSignal(gateway, log);
  },
};
