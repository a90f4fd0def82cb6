/**
 * One bound on the memory a gateway's sessions hold, whatever their number
 * ([limits] memory_budget; docs/operations.md, Memory).
 *
 * What draws from it:
 * - queued WRITE bytes: a request's data from the moment the session
 *   decoded it until the request finished (charge/release). They are
 *   already in memory, so they cannot be refused: instead, once more than
 *   half the budget is held every session stops reading its SSH channel
 *   (pressure), and they all resume once a quarter is held (watch);
 * - the optional depth of the pipelines: a second, third… chunk a file
 *   writer seals and stores while its first is in flight, and the chunks a
 *   reader fetches ahead of the one asked for (tryAcquire, up to the limit
 *   less the headroom, pressure or not: sealing and storing is what drains
 *   the queued bytes). A refusal costs speed, never correctness: the writer
 *   waits for its own put in flight, the reader fetches on demand;
 * - replies waiting for their clients beyond a small floor per session
 *   (tryAcquireReplies, src/sftp/reply-room.ts), up to half the limit less
 *   the headroom. They are counted apart from the rest and never start
 *   pressure: a reply is given back only when its client reads it, and a
 *   client may read only once it is read again (OpenSSH's sftp blocks on a
 *   full pipe before it reads). A refusal holds back only that session's
 *   next request, until its own client has read its replies down to the
 *   floor.
 *
 * Why it cannot deadlock: nothing ever waits for the budget. The only thing
 * held back is reading new requests, and what the budget holds is released
 * by work that needs nothing from it: a queued WRITE runs and is copied into
 * its file writer, which always has its guaranteed minimum (one chunk being
 * filled, one being sealed and stored, whose put finishes on its own); an
 * optional chunk is given back when its put settles; a chunk read ahead,
 * the one holding that would wait for a client (its next READ), is never
 * taken past the pressure mark and is dropped when pressure starts. So
 * every session keeps making progress while the budget is used up, and the
 * budget drains.
 *
 * What it does not hold, each with its own fixed bound per session: that
 * guaranteed minimum (three chunk-sized buffers per upload being streamed,
 * src/tree/file/writer.ts), the SSH channel window ssh2 keeps (2 MiB), one
 * packet being received (256 KiB), the floor of replies waiting for the
 * client (two READ replies, about 510 KiB) and a reader's cache of
 * decrypted chunks;
 * and, for the whole gateway, the free buffers large packets are built in
 * (src/sftp/protocol/packet-buffers.ts, at most 8 MiB).
 *
 * Exactness: requests are charged only while the budget is below pressure
 * (sessions are paused synchronously when it starts), so at most the rest
 * of one SSH packet being cut into requests (one SFTP packet, 256 KiB, and
 * the SSH packet's own bytes) lands after it; optional acquisitions stop
 * `headroom` below the limit, and replies the headroom below half of it.
 * So the budget never holds more than its limit;
 * highWater records the most it ever held, for /metrics and tests. Memory:
 * a few numbers and one entry per watching session.
 */
export class MemoryBudget {
  readonly limit: number;
  /** Pressure (no session reads) starts when more than this is held: half the limit. */
  readonly pressureAt: number;
  /** Pressure ends once at most this is held: a quarter. */
  readonly relievedAt: number;
  /** tryAcquire keeps the budget at or below this. */
  readonly optionalUpTo: number;
  #used = 0;
  /** Held for replies waiting for their clients (tryAcquireReplies): outside `used`, so never pressure. */
  #replies = 0;
  #highWater = 0;
  #pressured = false;
  /** Times pressure started, for /metrics. */
  #pressureEpisodes = 0;
  /** Optional acquisitions refused, for /metrics. */
  #refused = 0;
  readonly #watchers = new Set<(pressured: boolean) => void>();

  /** `headroom`: bytes optional acquisitions leave free below `limit` (default 512 KiB, at most a quarter of it). */
  constructor(limit: number, options: { headroom?: number } = {}) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError('memory budget must be a positive integer');
    this.limit = limit;
    const headroom = Math.min(options.headroom ?? DEFAULT_HEADROOM, Math.floor(limit / 4));
    this.pressureAt = Math.floor(limit / 2);
    this.relievedAt = Math.floor(limit / 4);
    this.optionalUpTo = limit - headroom;
  }

  /** Held for queued WRITE data and chunks: what pressure looks at. */
  get used(): number {
    return this.#used;
  }
  /** Held for replies waiting for their clients. */
  get replies(): number {
    return this.#replies;
  }
  /** The most tryAcquireReplies lets replies hold: half the limit less the headroom. */
  get repliesUpTo(): number {
    return this.pressureAt - (this.limit - this.optionalUpTo);
  }
  /** The most held at once since start. */
  get highWater(): number {
    return this.#highWater;
  }
  get pressured(): boolean {
    return this.#pressured;
  }
  get pressureEpisodes(): number {
    return this.#pressureEpisodes;
  }
  get refused(): number {
    return this.#refused;
  }

  /** Counts bytes already in memory (a queued request's data): never refused, may start pressure. */
  charge(bytes: number): void {
    if (bytes <= 0) return;
    this.#used += bytes;
    this.#noteHighWater();
    this.#update();
  }

  #noteHighWater(): void {
    const held = this.#used + this.#replies;
    if (held > this.#highWater) this.#highWater = held;
  }

  /**
   * Takes `bytes` for something optional if the budget then holds at most
   * optionalUpTo; false (nothing taken) otherwise. Never waits.
   * `belowPressure`: only if the budget then holds at most pressureAt, for
   * what is given back only when a client acts (a chunk read ahead waits
   * for the next READ): taking it must never start the pressure that stops
   * that client, and its holder drops it when pressure starts (watch).
   */
  tryAcquire(bytes: number, options: { belowPressure?: boolean } = {}): boolean {
    const belowPressure = options.belowPressure === true;
    const overall = this.#used + this.#replies + bytes > this.optionalUpTo;
    if (overall || (belowPressure && (this.#used + bytes > this.pressureAt || this.#pressured))) {
      this.#refused++;
      return false;
    }
    this.charge(bytes);
    return true;
  }

  /**
   * Takes `bytes` for replies that wait for their clients if replies then
   * hold at most repliesUpTo, and everything at most optionalUpTo; false
   * (nothing taken) otherwise. Never waits, and never counts towards
   * pressure: a reply is given back only when its client reads it, which a
   * client held back by pressure may not do until it is read again.
   */
  tryAcquireReplies(bytes: number): boolean {
    if (this.#replies + bytes > this.repliesUpTo || this.#used + this.#replies + bytes > this.optionalUpTo) {
      this.#refused++;
      return false;
    }
    this.#replies += bytes;
    this.#noteHighWater();
    return true;
  }

  /** Gives back what tryAcquireReplies took. */
  releaseReplies(bytes: number): void {
    if (bytes <= 0) return;
    this.#replies -= bytes;
    if (this.#replies < 0) throw new Error('MemoryBudget: more replies released than taken');
  }

  /** Gives back what charge or tryAcquire took. */
  release(bytes: number): void {
    if (bytes <= 0) return;
    this.#used -= bytes;
    if (this.#used < 0) throw new Error('MemoryBudget: more released than taken');
    this.#update();
  }

  /**
   * Calls `listener(true)` when pressure starts and `listener(false)` when
   * it ends, in the order the listeners came (every one of them each time:
   * no session is left paused). Returns the unsubscribe function.
   */
  watch(listener: (pressured: boolean) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  #update(): void {
    if (!this.#pressured && this.#used > this.pressureAt) {
      this.#pressured = true;
      this.#pressureEpisodes++;
      for (const w of [...this.#watchers]) w(true);
    } else if (this.#pressured && this.#used <= this.relievedAt) {
      this.#pressured = false;
      for (const w of [...this.#watchers]) w(false);
    }
  }
}

/** Room kept for the requests that arrive once optional acquisitions have filled the budget: one SFTP packet, twice. */
export const DEFAULT_HEADROOM = 512 * 1024;
