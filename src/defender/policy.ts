/**
 * The defender's rules as pure functions over one client's record: no clock,
 * no storage, no logging. The Defender reads a record from its store, asks
 * these what the record becomes, and writes it back with a compare-and-swap,
 * so every store (memory, node directory, PostgreSQL) gives the same answers
 * and the rules are tested without any of them.
 *
 * - Each failure adds its points; points older than the observation window no
 *   longer count (a score of 0 adds no event: it cannot ban).
 * - Reaching the threshold bans the client for banMs × growth^(earlier bans),
 *   at most maxBanMs, and clears the score.
 * - The count of earlier bans is forgotten once the client has been quiet
 *   (not banned) for longer than maxBanMs since its last ban ended.
 * - A banned client is not scored further.
 * - A record carries nothing once its score has aged out, it is not banned,
 *   and its earlier bans are forgotten: `forgetAt` says when.
 */

export interface BanPolicy {
  threshold: number;
  observationMs: number;
  banMs: number;
  maxBanMs: number;
  /** Factor applied to the ban time per earlier ban. */
  banGrowth: number;
}

/** One failure's points at a time (milliseconds since the epoch). */
export interface ScoreEvent {
  at: number;
  points: number;
}

/**
 * What the defender remembers of one client (an IPv4 address or an IPv6
 * network). Times are milliseconds since the epoch, on the clock of the
 * gateway that wrote the record.
 */
export interface ClientRecord {
  /** Score events inside the observation window, oldest first; at most `threshold` of them (each has at least 1 point). */
  events: ScoreEvent[];
  /** End of the current or last ban; 0: never banned (or forgotten). Banned while it is in the future. */
  bannedUntil: number;
  /** Bans so far (drives the ban growth); reset after a quiet maxBanMs. */
  offences: number;
  /** The last failure recorded. */
  lastSeen: number;
  /** After this the record carries nothing and may be deleted (derived by the rules, stored so stores can expire records). */
  forgetAt: number;
}

export interface FailureOutcome {
  record: ClientRecord;
  /** The failure started a ban (of `banMs`). */
  banned: boolean;
  banMs: number;
  /** The client was already banned: nothing changed (the record is the one given). */
  alreadyBanned: boolean;
}

export function isBanned(record: ClientRecord | undefined, now: number): boolean {
  return record !== undefined && record.bannedUntil > now;
}

/** When `record` stops carrying anything: its score aged out, no ban, earlier bans forgotten. */
export function forgetAt(record: Omit<ClientRecord, 'forgetAt'>, policy: BanPolicy): number {
  const lastEvent = record.events.at(-1)?.at ?? 0;
  const scoreGone = record.events.length === 0 ? 0 : lastEvent + policy.observationMs;
  const bansGone = record.bannedUntil === 0 ? 0 : record.bannedUntil + (record.offences > 0 ? policy.maxBanMs : 0);
  return Math.max(scoreGone, bansGone, record.lastSeen);
}

/** Whether `record` may be deleted at `now` without changing any later answer. */
export function isForgettable(record: ClientRecord, now: number): boolean {
  return record.forgetAt < now;
}

/** The record after one failure worth `points` at `now`. `previous` is the stored record, or undefined for a new client. */
export function scoreFailure(previous: ClientRecord | undefined, points: number, now: number, policy: BanPolicy): FailureOutcome {
  if (previous !== undefined && isBanned(previous, now)) return { record: previous, banned: false, banMs: 0, alreadyBanned: true };
  const from = now - policy.observationMs;
  const events = (previous?.events ?? []).filter((e) => e.at > from);
  if (points > 0) events.push({ at: now, points });
  let { bannedUntil, offences } = previous ?? { bannedUntil: 0, offences: 0 };
  // Quiet for longer than the longest ban since the last one ended: start again from banMs.
  if (bannedUntil !== 0 && now - bannedUntil > policy.maxBanMs) offences = 0;
  const score = events.reduce((sum, e) => sum + e.points, 0);
  let banMs = 0;
  if (score >= policy.threshold) {
    banMs = Math.min(policy.maxBanMs, policy.banMs * policy.banGrowth ** offences);
    offences++;
    bannedUntil = now + banMs;
    events.length = 0;
  }
  const partial = { events, bannedUntil, offences, lastSeen: now };
  return { record: { ...partial, forgetAt: forgetAt(partial, policy) }, banned: banMs > 0, banMs, alreadyBanned: false };
}

/**
 * Several failures of one client applied in order, as if one after another
 * (a gateway scores the failures that arrived while it was writing the
 * previous ones in one write). Once one of them bans, the rest are not
 * scored. `alreadyBanned`: the client was banned before the first.
 */
export function scoreFailures(previous: ClientRecord | undefined, failures: readonly ScoreEvent[], policy: BanPolicy): FailureOutcome {
  let outcome: FailureOutcome | undefined;
  for (const failure of failures) {
    const next = scoreFailure(outcome?.record ?? previous, failure.points, failure.at, policy);
    if (next.alreadyBanned) return outcome ?? next;
    outcome = next;
  }
  if (outcome === undefined) throw new RangeError('scoreFailures needs at least one failure');
  return outcome;
}
