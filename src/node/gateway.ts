import { mkdir } from 'node:fs/promises';
import { AccountServerClient, AccountsFile, createAuthenticator, type Authenticator } from '../auth/index.js';
import { convergenceSecret } from '../crypto/convergence.js';
import { Defender } from '../defender/index.js';
import { HomeStore } from '../homes/index.js';
import { openUserDirectory } from '../users/index.js';
import { QuotaGuard, UsageBook } from '../quota/index.js';
import { formatHostPort, type HostPort, type NodeConfig } from '../config/index.js';
import { startEvents, type EventsService } from '../events/index.js';
import type { Logger } from '../log.js';
import { startSftpServer } from '../sftp/index.js';
import { accountRoots, SnapshotSchedule, snapshotEvents } from './snapshot-schedule.js';
import { GatewayStats } from '../sftp/stats.js';
import { addressOf, serveNodeStores, type NodeSocketServer } from '../store/index.js';
import { createTree, type Tree } from '../tree/index.js';
import { FileSlotWatermarks } from './slot-watermarks.js';
import { DirectoryContention, renderGatewayMetrics } from './gateway-metrics.js';
import { startHttpListener, type HttpListener } from './http.js';
import { CONVERGENCE_SECRET_FILE, SLOT_SOCKET_FILE, SLOT_WATERMARKS_FILE, SPOOL_DIR, nodePath } from './layout.js';
import { MeasuredChunkStore } from '../store/chunks/measured.js';
import { BUFFER_COLLECTOR, startBufferCollector } from './buffer-collector.js';
import { IDLE_COLLECTOR, startIdleCollector } from './idle-collector.js';
import { raiseMallocThresholds } from './malloc-thresholds.js';
import { MemoryBudget } from '../util/memory-budget.js';
import { MetricsText } from '../util/metrics.js';
import { ProcessMetrics } from './process-metrics.js';
import { openGatewayStores } from './stores.js';
import { openDefenderStore, openUsageLedger } from './open.js';
import { readConvergenceSecret, readHomesSecret, readHostKey } from './secrets.js';

/** How long shutdown lets uploads being closed finish before dropping connections. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** A directory update that needed this many compare-and-swaps is logged (directory_contention). */
const CONTENTION_LOG_ATTEMPTS = 16;

/** Fixed probe targets for /healthz: cheap lookups whose answer does not matter, only that one comes. */
const PROBE_ADDRESS = addressOf(new TextEncoder().encode('capstan health probe'));
const PROBE_STORAGE_INDEX = new Uint8Array(32);

export interface Gateway {
  /** undefined when [sftpd] enabled = false. */
  sftp?: { address: HostPort; hostKeys: { type: string; fingerprint: string }[] };
  http?: HostPort;
  /** How long stop() lets closes in flight run. */
  shutdownGraceMs: number;
  /** Stops accepting, lets closes in flight finish within SHUTDOWN_GRACE_MS, closes the stores. Idempotent. */
  stop(): Promise<void>;
}

/** The [events] outbox and sinks, for /metrics (nothing when no sink is configured). */
function renderEventMetrics(events: EventsService | undefined): string {
  if (events === undefined) return '';
  const m = new MetricsText();
  m.family('capstan_events_pending', 'gauge', 'Events in the outbox not yet confirmed by every sink.').sample(
    'capstan_events_pending',
    events.outbox.pending,
  );
  m.family('capstan_events_delivered_total', 'counter', 'Events confirmed by a sink since start, by sink.');
  for (const [sink, n] of events.dispatcher.delivered) m.sample('capstan_events_delivered_total', n, { sink });
  m.family('capstan_events_sink_failures', 'gauge', 'Consecutive failed delivery attempts of a sink (0: healthy).');
  for (const [sink, n] of events.dispatcher.failures) m.sample('capstan_events_sink_failures', n, { sink });
  return m.toString();
}

/** Runs `step`s in reverse on failure or stop, each once, logging (not throwing) their errors. */
class Closers {
  private readonly steps: { name: string; close: () => Promise<unknown> }[] = [];
  constructor(private readonly log: Logger) {}
  add(name: string, close: () => Promise<unknown>): void {
    this.steps.push({ name, close });
  }
  async closeAll(): Promise<void> {
    while (this.steps.length > 0) {
      const { name, close } = this.steps.pop()!;
      try {
        await close();
      } catch (err) {
        this.log.error({ event: 'close_failed', component: name, err: (err as Error)?.name }, 'close failed');
      }
    }
  }
}

/**
 * Starts everything `capstan run` runs: the stores, the slot socket for CLI
 * commands, the accounts and the SFTP server, and the HTTP listener if
 * configured. On a failure half way, what was started is closed again.
 */
export async function startGateway(config: NodeConfig, log: Logger): Promise<Gateway> {
  const startedAt = Date.now();
  const closers = new Closers(log);
  try {
    const secret = await readConvergenceSecret(nodePath(config.nodeDir, CONVERGENCE_SECRET_FILE));
    const hostKeys = config.sftpd.enabled ? await Promise.all(config.sftpd.hostKeyFiles.map(readHostKey)) : [];

    // startSftpServer empties the spool of a previous run's leftovers before it listens.
    const spoolDir = nodePath(config.nodeDir, SPOOL_DIR);
    await mkdir(spoolDir, { recursive: true, mode: 0o700 });

    // The embedded engine (packs and journal), or S3 and/or PostgreSQL: src/node/stores.ts.
    const stores = await openGatewayStores(config, log);
    closers.add('stores', () => stores.close());
    const chunks = new MeasuredChunkStore(stores.chunks);
    const slots = stores.slots;
    if (stores.serve !== undefined) {
      const socket: NodeSocketServer = await serveNodeStores(stores.serve, nodePath(config.nodeDir, SLOT_SOCKET_FILE), { logger: log });
      closers.add('node socket', () => socket.close());
    }
    const contention = new DirectoryContention();
    // One for the whole gateway: every session's queued WRITE bytes, and the chunks uploads and
    // downloads hold beyond their guaranteed minimum, draw from it (src/util/memory-budget.ts).
    const memory = new MemoryBudget(config.limits.memoryBudget);
    raiseMallocThresholds();
    const collector = startBufferCollector(BUFFER_COLLECTOR);
    closers.add('buffer collector', async () => collector.stop());
    const idleCollector = startIdleCollector(IDLE_COLLECTOR);
    closers.add('idle collector', async () => idleCollector.stop());
    const watermarks = await FileSlotWatermarks.open(nodePath(config.nodeDir, SLOT_WATERMARKS_FILE), log);
    closers.add('slot watermarks', () => watermarks.close());
    const tree: Tree = createTree({
      chunks,
      slots,
      chunkSize: config.storage.chunkSize,
      checksums: config.storage.checksums,
      memory,
      watermarks,
      onDirectoryUpdate: (u) => {
        contention.observe(u);
        if (!u.committed) {
          log.error(
            { event: 'directory_update_gave_up', storageIndex: u.storageIndex, attempts: u.attempts },
            'a directory update lost every compare-and-swap and gave up',
          );
        } else if (u.attempts >= CONTENTION_LOG_ATTEMPTS) {
          log.warn(
            { event: 'directory_contention', storageIndex: u.storageIndex, attempts: u.attempts },
            'a directory update needed many retries',
          );
        }
      },
      onRollback: (r) =>
        log.error(
          { event: 'slot_rollback', storageIndex: r.storageIndex, seen: r.seen.toString(), got: r.got?.toString() ?? null },
          'the slot store answered an older version of a directory than one already seen (or none): refused',
        ),
    });
    closers.add('tree', () => tree.close());

    // Before the SFTP server, so it is closed after it: CLOSEs still running at shutdown can queue their events.
    const events: EventsService | undefined = await startEvents(config.events, { gateway: config.node.nickname, tree }, log);
    if (events !== undefined) closers.add('events', () => events.close());

    const gateway: Gateway = { shutdownGraceMs: SHUTDOWN_GRACE_MS, stop: async () => undefined };
    const stats = new GatewayStats();
    if (config.sftpd.enabled) {
      const accountsFile = await AccountsFile.open(config.sftpd.accountsFile, { logger: log });
      const accountServer =
        config.sftpd.accountsUrl !== undefined
          ? new AccountServerClient({
              url: config.sftpd.accountsUrl,
              logger: log,
              timeoutMs: config.sftpd.accountsUrlTimeoutSeconds * 1000,
              cacheTtlMs: config.sftpd.accountsUrlCacheTtlSeconds * 1000,
            })
          : undefined;
      let directory: Awaited<ReturnType<typeof openUserDirectory>> | undefined;
      let homes: HomeStore | undefined;
      if (config.sftpd.users !== undefined) {
        // Before any login: a gateway whose homes secret differs from its peers' refuses to start rather than give everyone a second home.
        homes = new HomeStore({
          slots,
          secret: await readHomesSecret(config.sftpd.homesSecretFile),
          createRoot: async (options) => (await tree.createDirectory(options)).toString(),
        });
        await homes.checkSecret();
        directory = await openUserDirectory(config.sftpd.users, log);
      }
      const authenticator: Authenticator = createAuthenticator({
        accountsFile,
        ...(accountServer ? { accountServer } : {}),
        ...(directory ? { userDirectory: directory } : {}),
        ...(homes ? { homes } : {}),
        logger: log,
        allowRsaSha1: config.sftpd.rsaSha1,
      });
      closers.add('accounts', () => authenticator.close());
      if (config.snapshots.schedule !== 'off') {
        const schedule = new SnapshotSchedule({
          tree,
          slots,
          every: config.snapshots.schedule,
          keep: config.snapshots.keep,
          roots: () => accountRoots(accountsFile),
          logger: log,
          ...(events !== undefined ? { onChange: snapshotEvents(events.recorder, accountsFile, log) } : {}),
        });
        schedule.start();
        closers.add('snapshot schedule', () => schedule.close());
      }
      const usage = await openUsageLedger(config, { owner: true, logger: log });
      const quota = await QuotaGuard.open({
        quotasFile: config.quota.file,
        ...(usage instanceof UsageBook ? { usageFile: config.quota.usageFile } : {}),
        usage,
        tree,
        logger: log,
      });
      closers.add('quota usage', () => quota.close());
      // Scores and bans outlive the process: in the node directory, or shared in PostgreSQL.
      const defenderStore = await openDefenderStore(config, log);
      closers.add('defender store', () => defenderStore.close());
      const defender = new Defender({ ...config.defender, logger: log }, defenderStore);
      await defender.start();
      closers.add('defender', () => defender.close());
      const server = await startSftpServer({
        tree,
        authenticator,
        hostKeys: hostKeys.map((k) => k.privateKey),
        host: config.sftpd.listen.host,
        port: config.sftpd.listen.port,
        convergenceFor: (user: string) => convergenceSecret(secret, config.node.convergence, user),
        spoolDir,
        logger: log,
        stats,
        ...(config.sftpd.idleTimeoutSeconds > 0 ? { idleTimeoutMs: config.sftpd.idleTimeoutSeconds * 1000 } : {}),
        limits: config.limits,
        legacyScp: config.sftpd.legacyScp,
        kexSha1: config.sftpd.kexSha1,
        memory,
        snapshots: config.snapshots.browse,
        proxyProtocolFrom: config.sftpd.proxyProtocolFrom,
        quota,
        defender,
        authFailureDelayMs: config.defender.failureDelayMs,
        // The accounts file and what the user directory's cache holds (nothing remote): account-server users score as unknown ones.
        isKnownUser: (user: string) => authenticator.knowsUser(user),
        ...(events !== undefined ? { events: events.recorder } : {}),
      });
      closers.add('sftp server', () => server.close(SHUTDOWN_GRACE_MS));
      gateway.sftp = { address: server.address, hostKeys: hostKeys.map(({ type, fingerprint }) => ({ type, fingerprint })) };
    }

    if (config.http.listen !== undefined) {
      const processMetrics = new ProcessMetrics();
      closers.add('process metrics', async () => processMetrics.close());
      const listener: HttpListener = await startHttpListener({
        listen: config.http.listen,
        logger: log,
        probes: [
          { name: 'chunk store', run: (signal) => chunks.inner.has(PROBE_ADDRESS, { signal }) },
          { name: 'slot store', run: (signal) => slots.get(PROBE_STORAGE_INDEX, { signal }) },
          {
            name: 'commit path',
            run: async () => {
              const fault = stores.commitFault?.();
              if (fault !== undefined) throw fault;
            },
          },
        ],
        metrics: () =>
          renderGatewayMetrics(config.sftpd.enabled ? stats : undefined, chunks, startedAt, contention, memory) +
          renderEventMetrics(events) +
          processMetrics.render(),
      });
      closers.add('http listener', () => listener.close());
      gateway.http = listener.address;
    }

    let stopping: Promise<void> | undefined;
    gateway.stop = () => (stopping ??= closers.closeAll());
    log.info(
      {
        event: 'listening',
        ...(gateway.sftp
          ? { sftp: formatHostPort(gateway.sftp.address), hostKeys: gateway.sftp.hostKeys.map((k) => `${k.type} ${k.fingerprint}`) }
          : {}),
        ...(gateway.http ? { http: formatHostPort(gateway.http) } : {}),
      },
      'gateway listening',
    );
    return gateway;
  } catch (err) {
    await closers.closeAll();
    throw err;
  }
}
