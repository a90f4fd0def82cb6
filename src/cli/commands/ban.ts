import type { Argv, CommandModule } from 'yargs';
import { clientKey, normalizeAddress, type DefenderStore } from '../../defender/index.js';
import { InvalidInputError } from '../../errors.js';
import { openDefenderStore } from '../../node/open.js';
import { isLevelLocked } from '../../store/index.js';
import { loadNodeConfig, out, type GlobalArgs } from '../context.js';
import type { NodeConfig } from '../../config/index.js';

/**
 * `capstan ban list|remove`: the defender's bans as the gateways keep them
 * (docs/operations.md, Brute-force defence). With postgres slots this talks
 * to the shared tables while gateways run (they drop a removed ban within a
 * second); the embedded node's database is held by its running gateway.
 */
async function withDefenderStore<T>(config: NodeConfig, fn: (store: DefenderStore) => Promise<T>): Promise<T> {
  let store: DefenderStore;
  try {
    store = await openDefenderStore(config);
  } catch (err) {
    if (isLevelLocked(err)) {
      throw new InvalidInputError(
        `the defender database ${config.defender.stateDir} is held by the running gateway: stop it first (with postgres slots this works while gateways run)`,
      );
    }
    throw err;
  }
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

interface RemoveArgs extends GlobalArgs {
  address: string;
}

const banListCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'list',
  describe: 'List current bans: ADDRESS<TAB>UNTIL (UTC)<TAB>OFFENCES, the latest-ending first',
  handler: async (args) => {
    const config = await loadNodeConfig(args);
    const bans = await withDefenderStore(config, (store) => store.bans(Date.now(), config.defender.maxEntries));
    for (const b of bans) await out(`${b.key}\t${new Date(b.bannedUntil).toISOString()}\t${b.offences}\n`);
  },
};

const banRemoveCommand: CommandModule<GlobalArgs, RemoveArgs> = {
  command: 'remove <address>',
  aliases: ['rm'],
  describe: "Lift ADDRESS's ban and forget its score (an IPv6 address lifts its whole /64, as it was banned)",
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('address', { type: 'string', demandOption: true, describe: 'an address, or a key as `ban list` prints it' })
      .example('$0 ban remove 203.0.113.7', 'let 203.0.113.7 connect again') as unknown as Argv<RemoveArgs>,
  handler: async (args) => {
    const config = await loadNodeConfig(args);
    // `ban list` prints IPv6 clients as their network (…:0000/64): the address part keys it again.
    const address = args.address.includes(':') ? args.address.replace(/\/\d+$/, '') : args.address;
    if (normalizeAddress(address) === undefined) throw new InvalidInputError(`not an IP address: ${JSON.stringify(args.address)}`);
    const key = clientKey(address, config.defender.ipv6Prefix);
    const now = Date.now();
    const wasBanned = await withDefenderStore(config, async (store) => {
      const record = await store.get(key);
      await store.delete(key);
      return record !== undefined && record.record.bannedUntil > now;
    });
    await out(wasBanned ? `unbanned ${key}\n` : `${key} was not banned (its score, if any, is forgotten)\n`);
  },
};

export const banCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'ban <command>',
  aliases: ['bans'],
  describe: "The defender's bans: list, remove",
  builder: (y: Argv<GlobalArgs>) =>
    y.command(banListCommand).command(banRemoveCommand).demandCommand(1, 'name a ban command: list or remove'),
  handler: () => undefined,
};
