import { describe, expect, it } from 'vitest';
import { REPLY_FLOOR, ReplyRoom } from '../../src/sftp/reply-room.js';
import { MemoryBudget } from '../../src/util/memory-budget.js';

/**
 * ReplyRoom on its own: a session's backlog as a number the test moves
 * (the client taking replies), the gateway's budget real.
 */
const READ = 256 * 1024 - 1024 + 13;
const MiB = 1024 * 1024;

class Backlog {
  backlog = 0;
}

/** A session's room in a gateway whose budget has no room left for replies: another session's hold all they may. */
function roomWithBudgetFull(): { out: Backlog; room: ReplyRoom } {
  const memory = new MemoryBudget(4 * MiB);
  expect(memory.tryAcquireReplies(memory.repliesUpTo)).toBe(true);
  const out = new Backlog();
  return { out, room: new ReplyRoom(out, { max: 8 * MiB, memory }) };
}

/** Whether `p` settled within a few turns of the event loop. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  return done;
}

describe('ReplyRoom', () => {
  it('admits replies up to the floor without the budget, then only with it, and gives it back as the client reads', () => {
    const memory = new MemoryBudget(16 * MiB);
    const out = new Backlog();
    const room = new ReplyRoom(out, { max: 8 * MiB, memory });
    expect(REPLY_FLOOR).toBe(2 * READ);
    expect(room.admitNow(READ)).toBe(true);
    room.reserve(READ);
    expect(room.admitNow(READ)).toBe(true);
    room.reserve(READ);
    expect(memory.replies).toBe(0);
    expect(room.admitNow(READ)).toBe(true);
    room.reserve(READ);
    expect(memory.replies).toBe(READ);
    expect(room.charged).toBe(READ);
    // The three replies go to the transport: still held, still charged.
    out.backlog = 3 * READ;
    for (let i = 0; i < 3; i++) room.unreserve(READ);
    expect(memory.replies).toBe(READ);
    // The client takes one: down to the floor, nothing of the budget held.
    out.backlog = 2 * READ;
    room.settle();
    expect(memory.replies).toBe(0);
    expect(room.charged).toBe(0);
  });

  it('with the budget full, a request waits for its own client only, down to where its reply fits in the floor', async () => {
    const { out, room } = roomWithBudgetFull();
    out.backlog = 2 * READ;
    expect(room.admitNow(READ)).toBe(false);
    const admitted = room.admit(READ);
    expect(await settled(admitted)).toBe(false);
    // Budget freed elsewhere is not what it waits for; its own client reading is.
    out.backlog = READ;
    room.settle();
    expect(await admitted).toBe(true);
    expect(room.charged).toBe(0);
  });

  it('admits in order: a request behind a waiting one waits too, even if its reply would fit', async () => {
    const { out, room } = roomWithBudgetFull();
    out.backlog = 2 * READ;
    const first = room.admit(READ);
    expect(room.admitNow(0)).toBe(false);
    const second = room.admit(0);
    expect(await settled(second)).toBe(false);
    out.backlog = 0;
    room.settle();
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    expect(room.admitNow(0)).toBe(true);
  });

  it('waits for its own requests running to send their replies, without spinning, when the client has nothing left to take', async () => {
    const { out, room } = roomWithBudgetFull();
    room.reserve(READ);
    room.reserve(READ);
    const third = room.admit(READ);
    // Nothing to take: only the running requests can make room, and the event loop must stay free for them.
    expect(await settled(third)).toBe(false);
    out.backlog = 2 * READ;
    room.unreserve(READ);
    room.unreserve(READ);
    expect(await settled(third)).toBe(false);
    out.backlog = 0;
    room.settle();
    expect(await third).toBe(true);
  });

  it('never lets one session hold more than max_output_backlog, budget or not', async () => {
    const out = new Backlog();
    const room = new ReplyRoom(out, { max: 600 * 1024 });
    out.backlog = 400 * 1024;
    expect(room.admitNow(READ)).toBe(false);
    const admitted = room.admit(READ);
    expect(await settled(admitted)).toBe(false);
    out.backlog = 300 * 1024;
    room.settle();
    expect(await admitted).toBe(true);
  });

  it('gives everything back at close, lets its waiters go, and takes nothing after', async () => {
    const memory = new MemoryBudget(16 * MiB);
    const out = new Backlog();
    const room = new ReplyRoom(out, { max: 64 * MiB, memory });
    out.backlog = 4 * MiB;
    expect(room.admitNow(READ)).toBe(true);
    room.reserve(READ);
    expect(memory.replies).toBeGreaterThan(0);
    memory.tryAcquireReplies(memory.repliesUpTo - memory.replies);
    const waiting = room.admit(READ);
    const behind = room.admit(0);
    const before = memory.replies;
    room.close();
    expect(memory.replies).toBeLessThan(before);
    expect(await waiting).toBe(false);
    expect(await behind).toBe(false);
    expect(room.charged).toBe(0);
  });

  it('keeps the replies of many sessions within the budget, plus a floor each', () => {
    const memory = new MemoryBudget(16 * MiB);
    let held = 0;
    for (let s = 0; s < 40; s++) {
      const out = new Backlog();
      const room = new ReplyRoom(out, { max: 8 * MiB, memory });
      // Each session admits what it can without waiting: its client reads nothing.
      while (room.admitNow(READ)) room.reserve(READ);
      held += room.held;
    }
    expect(memory.replies).toBeLessThanOrEqual(memory.repliesUpTo);
    expect(held).toBeLessThanOrEqual(memory.repliesUpTo + 40 * REPLY_FLOOR);
    expect(memory.used + memory.replies).toBeLessThanOrEqual(memory.limit);
  });
});
