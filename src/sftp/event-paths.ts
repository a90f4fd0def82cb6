import type { ChangeInput, EventRecorder } from '../events/api.js';
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

/** Refuses the change up front when the outbox is full (no-op with events off). */
export function admitChange(ctx: EventContext): void {
  ctx.events?.admit();
}

/** Records a committed change; call only after its slot update succeeded. */
export async function recordChange(
  ctx: EventContext,
  operation: ChangeInput['operation'],
  path: ParsedPath,
  extra: { from?: ParsedPath } = {},
): Promise<void> {
  if (ctx.events === undefined) return;
  const where = eventPathOf(path);
  const change: ChangeInput = { user: ctx.user, operation, base: where.base, path: where.path };
  if (extra.from !== undefined) change.fromPath = eventPathOf(extra.from).path;
  await ctx.events.record(change);
}
