import { NotFoundError } from '../errors.js';
import { CAP_PREFIX, parseCap, UnknownCap, type Cap } from '../cap/index.js';
import { checkName } from '../tree/index.js';

/**
 * SFTP paths as a session sees them.
 *
 * - The session has no working directory other than `/`: relative paths are
 *   taken from `/`, and realpath of `.` is `/`.
 * - `.`, empty components (`//`) and `..` are resolved textually, before any
 *   lookup; `..` at `/` stays at `/` (there is nothing above a root cap).
 * - Every component is one name, kept byte for byte (checkName: no
 *   normalization, at most 255 UTF-8 bytes); a bad name throws
 *   InvalidInputError.
 * - A path whose bytes are not valid UTF-8 never gets here: the packet
 *   layer decodes paths strictly and such a path names nothing (see
 *   dispatch.ts pathOf), as no capstan name can hold those bytes.
 * - `/uri/CAP/rest` starts from CAP instead of the root when CAP parses as a
 *   capstan cap of a known kind (a cap is a bearer token: holding its text is
 *   holding it). A read cap gives a read-only subtree. Only a second
 *   component starting `CS1:` is taken as a cap (a malformed or unknown one
 *   names nothing), so an entry called `uri` in the root stays reachable
 *   except for names inside it that start with `CS1:`.
 */
export interface ParsedPath {
  /** Set for `/uri/CAP/...` paths. */
  readonly uriCap?: Cap | undefined;
  /** Names below the base (the root, or uriCap). */
  readonly components: readonly string[];
  /** The absolute path with `.`, `..` and `//` resolved, for realpath and for prefix checks. */
  readonly canonical: string;
  /** How the base is shown in paths when it is not `/uri/CAP` (a snapshot: `.snapshots/NAME`). */
  readonly shownBase?: readonly string[] | undefined;
}

export const URI_PREFIX = 'uri';

export function parsePath(raw: string): ParsedPath {
  const parts: string[] = [];
  for (const part of raw.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  let uri: { cap: Cap; text: string } | undefined;
  let names = parts;
  const [first, capText, ...rest] = parts;
  if (first === URI_PREFIX && capText?.startsWith(CAP_PREFIX + ':')) {
    let cap: Cap;
    try {
      cap = parseCap(capText);
    } catch {
      cap = new UnknownCap('');
    }
    // A malformed cap, or one of a kind this version cannot open, names nothing.
    if (cap instanceof UnknownCap) throw new NotFoundError('no such file');
    uri = { cap, text: capText };
    names = rest;
  }
  const components = names.map((name) => checkName(name));
  const shown = uri !== undefined ? [URI_PREFIX, uri.text, ...components] : components;
  return { uriCap: uri?.cap, components, canonical: '/' + shown.join('/') };
}

/** True if `inner` is `outer` or below it (same base), for refusing a move into itself. */
export function isWithin(inner: ParsedPath, outer: ParsedPath): boolean {
  return inner.canonical === outer.canonical || inner.canonical.startsWith(outer.canonical === '/' ? '/' : outer.canonical + '/');
}
