import type { ClientRecord } from './policy.js';
import type { VersionedRecord } from './store.js';

/**
 * The JSON form of a client record in the node directory's defender
 * database (docs/spec/defender.md, format 1):
 *
 *     {"version":3,"events":[[1700000000000,1],[1700000001000,2]],
 *      "bannedUntil":0,"offences":0,"lastSeen":1700000001000,"forgetAt":1700001801000}
 *
 * Times are milliseconds since the epoch; events are [at, points] pairs,
 * oldest first. decodeRecord refuses anything else (a record it cannot read
 * is dropped, which at worst forgives one client: failing open).
 */

/** Events a record may carry: the threshold's upper bound in capstan.cfg. */
export const MAX_EVENTS = 100_000;

export function encodeRecord(value: VersionedRecord): string {
  const { version, record } = value;
  return JSON.stringify({
    version,
    events: record.events.map((e) => [e.at, e.points]),
    bannedUntil: record.bannedUntil,
    offences: record.offences,
    lastSeen: record.lastSeen,
    forgetAt: record.forgetAt,
  });
}

const isTime = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The record in `text`, or undefined if it is not a valid format-1 record. */
export function decodeRecord(text: string): VersionedRecord | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof raw !== 'object' || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const events = decodeEvents(r.events);
  if (events === undefined) return undefined;
  if (!isTime(r.version) || r.version < 1) return undefined;
  if (!isTime(r.bannedUntil) || !isTime(r.offences) || !isTime(r.lastSeen) || !isTime(r.forgetAt)) return undefined;
  const record: ClientRecord = { events, bannedUntil: r.bannedUntil, offences: r.offences, lastSeen: r.lastSeen, forgetAt: r.forgetAt };
  return { version: r.version, record };
}

/** Score events from [[at, points], …]; also the form PostgreSQL keeps them in. */
export function decodeEvents(raw: unknown): ClientRecord['events'] | undefined {
  if (!Array.isArray(raw) || raw.length > MAX_EVENTS) return undefined;
  const events: ClientRecord['events'] = [];
  for (const pair of raw) {
    if (!Array.isArray(pair) || pair.length !== 2 || !isTime(pair[0]) || !isTime(pair[1])) return undefined;
    events.push({ at: pair[0], points: pair[1] });
  }
  return events;
}
