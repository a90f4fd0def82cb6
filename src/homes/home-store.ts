import { timingSafeEqual } from 'node:crypto';
import { TAG, taggedHash, taggedHmac } from '../crypto/index.js';
import { ConflictError, InvalidInputError, IntegrityError, type AbortOptions } from '../errors.js';
import type { HomeOpening } from '../auth/user-lookup.js';
import type { SlotStore } from '../store/slots/slot-store.js';
import {
  deriveHomeKeys,
  homeStorageIndex,
  isHomeStorageIndex,
  openHomeRecord,
  sealHomeRecord,
  type HomeKeys,
  type HomeRecordContent,
  type HomeState,
} from './home-record.js';

/**
 * Homes of central-directory users, in the slot store beside the directory
 * slots (layout in home-record.ts, docs/spec/homes.md). Only the SlotStore
 * interface is used, so LevelDB and PostgreSQL (and any later backend) keep
 * them unchanged, and several gateways sharing one store share the homes.
 *
 * Creation is "exactly once": every gateway that sees a first login creates
 * a fresh directory and offers it with compareAndSwap(SI, null, seq 1); the
 * store lets one win, and the losers read the winner's record and use its
 * root. A loser's directory stays behind, empty and unreachable (its node
 * chunk is collected by gc; the slot, like every directory slot, stays).
 *
 * Revoking writes a later version (seq + 1) whose state is `revoked`; it
 * forgets the root cap, so after it gc frees the home's files unless the cap
 * was exported and pinned first. A renewal writes a fresh root over a live or
 * revoked home.
 */

export type HomeLookup = { kind: 'absent' } | ({ seq: bigint } & HomeState);

export type { HomeOpening } from '../auth/user-lookup.js';

export interface ListedHome {
  name: string;
  state: HomeState;
}

/** How many lost compare-and-swaps a revoke or renewal rides out (each means another process changed the same home). */
const MAX_RETRIES = 16;
/** The version byte of the check record (a home record is 0x11, a directory's 0x01). */
const CHECK_RECORD_VERSION = 0x12;

export interface HomeStoreOptions {
  slots: SlotStore;
  /** private/homes.secret: 32 random bytes, the same on every gateway of one system. */
  secret: Uint8Array;
  /** Makes a fresh, empty root directory and answers its write cap. */
  createRoot(options?: AbortOptions): Promise<string>;
  /** The clock, for tests. */
  now?: () => Date;
}

export class HomeStore {
  readonly #slots: SlotStore;
  readonly #keys: HomeKeys;
  readonly #secret: Uint8Array;
  readonly #createRoot: (options?: AbortOptions) => Promise<string>;
  readonly #now: () => Date;

  constructor(options: HomeStoreOptions) {
    this.#slots = options.slots;
    this.#keys = deriveHomeKeys(options.secret);
    this.#secret = options.secret;
    this.#createRoot = options.createRoot;
    this.#now = options.now ?? (() => new Date());
  }

  async get(name: string, options: AbortOptions = {}): Promise<HomeLookup> {
    const si = homeStorageIndex(this.#keys, name);
    const entry = await this.#slots.get(si, options);
    if (entry === undefined) return { kind: 'absent' };
    const content = this.#open(si, entry.seq, entry.record, name);
    return { ...content.state, seq: entry.seq };
  }

  /** The home's root cap; on the first call for `name` anywhere, a fresh root. Throws IntegrityError for an unreadable record. */
  async openOrCreate(name: string, options: AbortOptions = {}): Promise<HomeOpening> {
    const found = await this.get(name, options);
    if (found.kind === 'live') return { kind: 'live', cap: found.cap, created: false };
    if (found.kind === 'revoked') return { kind: 'revoked', since: found.since };
    const cap = await this.#createRoot(options);
    const si = homeStorageIndex(this.#keys, name);
    const record = sealHomeRecord(this.#keys, si, 1n, { name, state: { kind: 'live', cap, since: this.#now() } });
    try {
      await this.#slots.compareAndSwap(si, null, { seq: 1n, record }, options);
      return { kind: 'live', cap, created: true };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
    // Another gateway (or command) created it between our get and our swap: theirs is the home.
    const winner = await this.get(name, options);
    if (winner.kind === 'live') return { kind: 'live', cap: winner.cap, created: false };
    if (winner.kind === 'revoked') return { kind: 'revoked', since: winner.since };
    throw new ConflictError('home slot changed under a create and then vanished');
  }

  /** Revokes a home: logins through the user directory are refused until it is renewed. False if there was none. */
  async revoke(name: string, options: AbortOptions = {}): Promise<boolean> {
    return this.#update(name, () => ({ kind: 'revoked', since: this.#now() }), options);
  }

  /** Gives the home a fresh, empty root (live or revoked before; created if absent). Answers the new root cap. */
  async renew(name: string, options: AbortOptions = {}): Promise<string> {
    const cap = await this.#createRoot(options);
    const si = homeStorageIndex(this.#keys, name);
    const state: HomeState = { kind: 'live', cap, since: this.#now() };
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const entry = await this.#slots.get(si, options);
      if (entry !== undefined) this.#open(si, entry.seq, entry.record, name);
      const seq = (entry?.seq ?? 0n) + 1n;
      try {
        await this.#slots.compareAndSwap(
          si,
          entry?.seq ?? null,
          { seq, record: sealHomeRecord(this.#keys, si, seq, { name, state }) },
          options,
        );
        return cap;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new ConflictError('the home kept changing; try again');
  }

  /**
   * Every home of this system (prefix match, then the record opened), in the
   * slot store's order. A slot with the prefix whose record does not open is
   * reported through `onUnreadable` (by storage index) and skipped.
   */
  async *list(options: AbortOptions & { onUnreadable?: (si: string) => void } = {}): AsyncIterable<ListedHome> {
    for await (const si of this.#slots.list(options)) {
      if (!isHomeStorageIndex(this.#keys, si)) continue;
      const entry = await this.#slots.get(si, options);
      if (entry === undefined) continue;
      try {
        const { name, state } = openHomeRecord(this.#keys, si, entry.seq, entry.record);
        yield { name, state };
      } catch (err) {
        if (!(err instanceof IntegrityError)) throw err;
        options.onUnreadable?.(Buffer.from(si).toString('hex'));
      }
    }
  }

  /** True iff `si` is a home slot of this system (by its prefix). */
  isHomeSlot(si: Uint8Array): boolean {
    return isHomeStorageIndex(this.#keys, si);
  }

  /**
   * Makes sure every process sharing this slot store uses the same homes
   * secret: the first to call writes a check record (an HMAC of a fixed tag
   * under the secret) at a fixed storage index; later callers compare. A
   * process with another secret would otherwise silently create second homes
   * for everyone. Throws InvalidInputError on a mismatch.
   */
  async checkSecret(options: AbortOptions = {}): Promise<void> {
    const si = HomeStore.checkStorageIndex();
    const mine = new Uint8Array(33);
    mine[0] = CHECK_RECORD_VERSION;
    mine.set(taggedHmac(this.#secret, TAG.homeCheck), 1);
    let entry = await this.#slots.get(si, options);
    if (entry === undefined) {
      try {
        await this.#slots.compareAndSwap(si, null, { seq: 1n, record: mine }, options);
        return;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
      entry = await this.#slots.get(si, options);
    }
    const theirs = entry?.record;
    if (theirs === undefined || theirs.length !== mine.length || !timingSafeEqual(theirs, mine)) {
      throw new InvalidInputError(
        'the homes secret differs from the one other gateways or commands of this slot store use: copy the same private/homes.secret to every node',
      );
    }
  }

  /** The fixed storage index of the check record (public: it holds only an HMAC). */
  static checkStorageIndex(): Uint8Array {
    return taggedHash(TAG.homeCheck);
  }

  #open(si: Uint8Array, seq: bigint, record: Uint8Array, name: string): HomeRecordContent {
    const content = openHomeRecord(this.#keys, si, seq, record);
    // Only a holder of K_seal could write another name into this slot; still, never hand one user another's root.
    if (content.name !== name) throw new IntegrityError(Buffer.from(si).toString('hex'), 'home record');
    return content;
  }

  async #update(name: string, next: () => HomeState, options: AbortOptions): Promise<boolean> {
    const si = homeStorageIndex(this.#keys, name);
    for (let attempt = 0; attempt < MAX_RETRIES; attempt++) {
      const entry = await this.#slots.get(si, options);
      if (entry === undefined) return false;
      this.#open(si, entry.seq, entry.record, name);
      const seq = entry.seq + 1n;
      try {
        await this.#slots.compareAndSwap(
          si,
          entry.seq,
          { seq, record: sealHomeRecord(this.#keys, si, seq, { name, state: next() }) },
          options,
        );
        return true;
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
      }
    }
    throw new ConflictError('the home kept changing; try again');
  }
}
