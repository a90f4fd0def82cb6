import type { Argv, CommandModule } from 'yargs';
import { formatHostPort } from '../../config/index.js';
import { initNode } from '../../node/init.js';
import { nodeDirOf, out, parseListenOption, type GlobalArgs } from '../context.js';

interface InitArgs extends GlobalArgs {
  listen?: string;
}

export const initCommand: CommandModule<GlobalArgs, InitArgs> = {
  command: 'init',
  describe: 'Create a node directory: configuration, host keys, secrets, an empty accounts file and the store',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('listen', {
        type: 'string',
        describe: 'SFTP address written to capstan.cfg ([sftpd] listen)',
        defaultDescription: '127.0.0.1:8022',
      })
      .example('$0 init', 'create ~/.capstan (or $CAPSTAN_NODE_DIR)')
      .example('$0 init -d /srv/capstan --listen 0.0.0.0:22', 'a node that accepts remote clients') as unknown as Argv<InitArgs>,
  handler: async (args) => {
    const listen = parseListenOption(args.listen);
    const result = await initNode(nodeDirOf(args), listen ? { listen } : {});
    await out(`created capstan node in ${result.nodeDir}\n`);
    for (const key of result.hostKeys) await out(`host key ${key.type} ${key.fingerprint}\n`);
    await out(`SFTP will listen on ${formatHostPort(result.listen)}; add an account with "capstan account add", then "capstan run"\n`);
  },
};
