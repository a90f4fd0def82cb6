import type { Argv, CommandModule } from 'yargs';
import { hashPassword } from '../../auth/index.js';
import { out, type GlobalArgs } from '../context.js';
import { readPasswordFromStdin } from './account-add.js';

export const accountHashPasswordCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'hash-password',
  describe: 'Read a password from stdin and print its $scrypt$ hash, for editing the accounts file by hand',
  builder: (y: Argv<GlobalArgs>) => y.example('printf %s "$PW" | $0 account hash-password', 'prints $scrypt$ln=15,r=8,p=1$…'),
  handler: async () => {
    await out(`${await hashPassword(await readPasswordFromStdin())}\n`);
  },
};
