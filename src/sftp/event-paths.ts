import { recordAround, type BeginChange, type ChangeInput, type EventRecorder } from '../events/api.js';
import type { ParsedPath } from './paths.js';

/**
 * How events name a path: relative to the user's root, or (base 'uri')
 * relative to a /uri/CAP the client gave, without the cap, which is a
 * secret and never leaves the gateway in an event.
 */
export interface EventPath {
  base: 'root' | 'uri';
  path: string;
}

export function eventPathOf(path: ParsedPath): EventPath {
  return { base: path.uriCap !== undefined ? 'uri' : 'root', path: path.components.join('/') };
}

/** What tree-ops needs from a session to report its changes. */
export interface EventContext {
  user: string;
  events?: EventRecorder;
}

/**
 * Makes a change through `change` (which calls `begin` right before its slot
 * update, see recordAround) and reports it: admitted first (a full outbox
 * refuses it before anything is written), its intent on disk before the
 * update, its event on disk before this resolves (docs/spec/events.md).
 * With events off it only runs `change`.
 */
export async function recordChange<T>(
  ctx: EventContext,
  operation: ChangeInput['operation'],
  path: ParsedPath,
  change: (begin: BeginChange) => Promise<T>,
  extra: { from?: ParsedPath } = {},
): Promise<T> {
  if (ctx.events === undefined) return change(async () => {});
  ctx.events.admit();
  const where = eventPathOf(path);
  const input: ChangeInput = { user: ctx.user, operation, base: where.base, path: where.path };
  if (extra.from !== undefined) input.fromPath = eventPathOf(extra.from).path;
  return recordAround(ctx.events, input, change);
}
