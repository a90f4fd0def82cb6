import { InvalidInputError } from '../errors.js';
import { decodeBase32 } from './base32.js';
import {
  CAP_PREFIX,
  LITERAL_MAX_BYTES,
  MAX_EPOCH,
  DirectoryReadCap,
  DirectoryVerifyCap,
  DirectoryWriteCap,
  FileReadCap,
  FileVerifyCap,
  LiteralCap,
  UnknownCap,
  type Cap,
  type DirectoryCap,
  isDirectoryCap,
} from './caps.js';

/** Longest cap string accepted at all; bounds work done on hostile input. */
export const MAX_CAP_LENGTH = 512;

/** A malformed capstan cap. The message names the kind and the fault, never the cap itself. */
export class CapParseError extends InvalidInputError {}

function field32(kind: string, text: string | undefined, what: string): Uint8Array {
  const bytes = text === undefined ? undefined : decodeBase32(text);
  if (bytes?.length !== 32) throw new CapParseError(`malformed ${kind} cap: bad ${what}`);
  return bytes;
}

function size(kind: string, text: string | undefined): number {
  if (text === undefined || !/^(0|[1-9][0-9]{0,15})$/.test(text)) throw new CapParseError(`malformed ${kind} cap: bad size`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new CapParseError(`malformed ${kind} cap: bad size`);
  return n;
}

function arity(kind: string, parts: string[], n: number): void {
  if (parts.length !== n) throw new CapParseError(`malformed ${kind} cap: expected ${n} fields`);
}

/**
 * Parses any cap string. Strings that are not capstan v1 caps, or are v1 caps
 * of a kind this version does not know, come back as UnknownCap (kept, passed
 * through); a known kind that is malformed throws CapParseError.
 */
export function parseCap(text: string): Cap {
  if (typeof text !== 'string' || text.length === 0) throw new CapParseError('empty cap');
  if (text.length > MAX_CAP_LENGTH) throw new CapParseError('cap too long');
  if (/[\s/\0]/.test(text)) throw new CapParseError('cap contains whitespace, "/" or NUL');
  const [prefix, kind, ...fields] = text.split(':');
  if (prefix !== CAP_PREFIX || kind === undefined) return new UnknownCap(text);
  switch (kind) {
    case 'DIR':
      arity('DIR', fields, 1);
      return new DirectoryWriteCap(field32('DIR', fields[0], 'write secret'));
    case 'DIR-RO':
      arity('DIR-RO', fields, 2);
      return new DirectoryReadCap(field32('DIR-RO', fields[0], 'read key'), field32('DIR-RO', fields[1], 'public key'));
    case 'DIR-SNAP': {
      arity('DIR-SNAP', fields, 3);
      const epochText = fields[2]!;
      if (!/^[1-9][0-9]{0,19}$/.test(epochText) || BigInt(epochText) > MAX_EPOCH)
        throw new CapParseError('malformed DIR-SNAP cap: bad epoch');
      return new DirectoryReadCap(
        field32('DIR-SNAP', fields[0], 'read key'),
        field32('DIR-SNAP', fields[1], 'public key'),
        BigInt(epochText),
      );
    }
    case 'DIR-V':
      arity('DIR-V', fields, 1);
      return new DirectoryVerifyCap(field32('DIR-V', fields[0], 'public key'));
    case 'CHK':
      arity('CHK', fields, 3);
      return new FileReadCap(field32('CHK', fields[0], 'key'), field32('CHK', fields[1], 'manifest hash'), size('CHK', fields[2]));
    case 'CHK-V':
      arity('CHK-V', fields, 3);
      return new FileVerifyCap(
        field32('CHK-V', fields[0], 'verify key'),
        field32('CHK-V', fields[1], 'manifest hash'),
        size('CHK-V', fields[2]),
      );
    case 'LIT': {
      arity('LIT', fields, 1);
      const data = decodeBase32(fields[0]!);
      if (!data || data.length > LITERAL_MAX_BYTES) throw new CapParseError('malformed LIT cap: bad data');
      return new LiteralCap(data);
    }
    default:
      return new UnknownCap(text);
  }
}

/** Parses a cap that must name a readable directory (write or read cap). */
export function parseDirectoryCap(text: string): DirectoryCap {
  const cap = parseCap(text);
  if (isDirectoryCap(cap)) return cap;
  throw new CapParseError('not a directory cap');
}
