import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlreadyExistsError, TransientError } from '../../src/errors.js';
import {
  holds,
  isCommitted,
  lacks,
  Outbox,
  OutboxRecorder,
  recordAround,
  resolveIntents,
  type ChangeInput,
  type CommitResolver,
} from '../../src/events/index.js';
import { silentLogger } from '../../src/log.js';
import { MemoryChunkStore, MemorySlotStore } from '../../src/store/index.js';
import { createTree, type Directory, type Tree } from '../../src/tree/index.js';

/**
 * Intents (docs/spec/events.md, Intents): written before the slot update,
 * turned into the event after it, and resolved at start by looking the
 * entry up when a crash came in between.
 */

let dir: string;
let tree: Tree;
let root: Directory;
let outbox: Outbox;
let resolver: CommitResolver;
const log = silentLogger();
const meta = { size: 0, mtimeMs: 1, ctimeMs: 1 };
const change = (p: string): ChangeInput => ({ user: 'alice', operation: 'mkdir', base: 'root', path: p });

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'capstan-intents-'));
  tree = createTree({ chunks: new MemoryChunkStore(), slots: new MemorySlotStore() });
  root = tree.directory(await tree.createDirectory());
  outbox = await Outbox.open(dir, { maxEvents: 100, sinks: ['s'] });
  resolver = (check) => isCommitted(tree, check);
});
afterEach(async () => {
  await outbox.close();
  await tree.close();
  await rm(dir, { recursive: true, force: true });
});

async function reopen(): Promise<void> {
  await outbox.close();
  outbox = await Outbox.open(dir, { maxEvents: 100, sinks: ['s'] });
}

describe('intents', () => {
  it('a committed change: the intent becomes the event, nothing is left to resolve', async () => {
    const recorder = new OutboxRecorder(outbox, 'gw', log, resolver);
    await recordAround(recorder, change('a'), (begin) => root.mkdir('a', {}, { beforeLink: (child) => begin([holds(root, 'a', child)]) }));
    const events = await outbox.read(0n, 10);
    expect(events.map((e) => [e.seq, e.event.operation, e.event.path])).toEqual([[1n, 'mkdir', 'a']]);
    expect(await outbox.intents()).toEqual([]);
  });

  it('a crash after the update: the restart publishes the event with the intent’s id and bytes', async () => {
    const recorder = new OutboxRecorder(outbox, 'gw', log, resolver);
    const child = await tree.createDirectory();
    const pending = await recorder.begin(change('b'), [holds(root, 'b', child)]);
    await root.link('b', child, meta); // the slot update; then the process "dies": neither committed() nor failed()
    void pending;
    const [intent] = await outbox.intents();
    await reopen();
    expect(await outbox.read(0n, 10)).toEqual([]);
    expect(await resolveIntents(outbox, resolver, log)).toBe(0);
    const [event] = await outbox.read(0n, 10);
    expect(event!.event.id).toBe(intent!.event.id);
    expect(event!.body).toBe(JSON.stringify(intent!.event));
    expect(await outbox.intents()).toEqual([]);
  });

  it('a crash before the update: the restart drops the intent', async () => {
    const recorder = new OutboxRecorder(outbox, 'gw', log, resolver);
    await recorder.begin(change('c'), [holds(root, 'c', await tree.createDirectory())]);
    await reopen();
    expect(await resolveIntents(outbox, resolver, log)).toBe(0);
    expect(await outbox.read(0n, 10)).toEqual([]);
    expect(await outbox.intents()).toEqual([]);
  });

  it('an entry is recognised through the parent’s read cap, a replaced one is not', async () => {
    const child = await root.mkdir('d');
    // The condition is built through the write view (child write cap), checked through the read cap.
    expect(await isCommitted(tree, [holds(root, 'd', child)])).toBe(true);
    expect(await isCommitted(tree, [lacks(root, 'd', child)])).toBe(false);
    const file = await tree.createFileWriter(new Uint8Array(32)).finish();
    await root.link('f', file.cap, meta);
    expect(await isCommitted(tree, [holds(root, 'f', file.cap, 1)])).toBe(true);
    // The same bytes linked again by another upload (another ctime) is not this upload's entry.
    expect(await isCommitted(tree, [holds(root, 'f', file.cap, 2)])).toBe(false);
    await root.unlink('f');
    expect(await isCommitted(tree, [lacks(root, 'f', file.cap)])).toBe(true);
    // A rename is committed only when both names agree.
    await root.link('g', file.cap, meta);
    expect(await isCommitted(tree, [holds(root, 'h', file.cap), lacks(root, 'g', file.cap)])).toBe(false);
    await root.rename('g', 'h');
    expect(await isCommitted(tree, [holds(root, 'h', file.cap), lacks(root, 'g', file.cap)])).toBe(true);
  });

  it('a failed change: a refusal drops the intent, an unknown outcome is looked up, an unreachable store keeps it', async () => {
    let unresolved = 0;
    let storeDown = false;
    const flaky: CommitResolver = async (check) => {
      if (storeDown) throw new TransientError('slot store down');
      return isCommitted(tree, check);
    };
    const recorder = new OutboxRecorder(outbox, 'gw', log, flaky, () => unresolved++);
    await root.mkdir('taken');
    await expect(
      recordAround(recorder, change('taken'), (begin) =>
        root.mkdir('taken', {}, { beforeLink: (child) => begin([holds(root, 'taken', child)]) }),
      ),
    ).rejects.toBeInstanceOf(AlreadyExistsError);
    expect(await outbox.intents()).toEqual([]);

    // The update landed, then the store failed (a reply lost): the lookup finds it, the event is queued.
    await expect(
      recordAround(recorder, change('lost-reply'), async (begin) => {
        const child = await tree.createDirectory();
        await begin([holds(root, 'lost-reply', child)]);
        await root.link('lost-reply', child, meta);
        throw new TransientError('connection reset');
      }),
    ).rejects.toBeInstanceOf(TransientError);
    expect((await outbox.read(0n, 10)).map((e) => e.event.path)).toEqual(['lost-reply']);

    // Failed, and the store cannot be asked: the intent stays for later.
    storeDown = true;
    await expect(
      recordAround(recorder, change('unknown'), async (begin) => {
        await begin([holds(root, 'unknown', await tree.createDirectory())]);
        throw new TransientError('connection reset');
      }),
    ).rejects.toBeInstanceOf(TransientError);
    expect(unresolved).toBe(1);
    expect(await resolveIntents(outbox, flaky, log)).toBe(1);
    storeDown = false;
    expect(await resolveIntents(outbox, flaky, log)).toBe(0);
    expect(await outbox.intents()).toEqual([]);
    expect((await outbox.read(0n, 10)).map((e) => e.event.path)).toEqual(['lost-reply']);
  });

  it('intents do not count as pending events and do not wake sinks', async () => {
    const recorder = new OutboxRecorder(outbox, 'gw', log, resolver);
    await recorder.begin(change('x'), []);
    expect(outbox.pending).toBe(0);
    expect(await outbox.read(0n, 10)).toEqual([]);
  });
});
