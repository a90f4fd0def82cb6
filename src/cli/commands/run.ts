import type { Argv, CommandModule } from 'yargs';
import { loadNodeConfig, parseListenOption, type GlobalArgs } from '../context.js';
import { httpLine, listeningLine, say, startLogged } from '../serve.js';

interface RunArgs extends GlobalArgs {
  listen?: string;
}

export const runCommand: CommandModule<GlobalArgs, RunArgs> = {
  command: 'run',
  describe: 'Run the gateway in the foreground until SIGTERM or SIGINT (JSON log on stdout, status lines on stderr)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('listen', { type: 'string', describe: 'SFTP address, overriding [sftpd] listen' })
      .example('$0 run', 'serve the node in ~/.capstan (or $CAPSTAN_NODE_DIR)')
      .example('$0 run -d /srv/capstan --listen 0.0.0.0:2222', 'another node directory and address') as unknown as Argv<RunArgs>,
  handler: async (args) => {
    const listen = parseListenOption(args.listen);
    const config = await loadNodeConfig(args, listen ? { sftpListen: listen } : {});
    const { gateway, stopped } = await startLogged(config);
    say(listeningLine(gateway));
    const http = httpLine(gateway);
    if (http) say(http);
    await stopped();
  },
};
