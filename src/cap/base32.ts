import { base32 } from 'multiformats/bases/base32';
import { encodeBase32 } from '../util/base32.js';

/** RFC 4648 base32, lowercase, no padding: safe in paths and URLs, case-insensitive on input. */
export { encodeBase32 };

/** Returns undefined for anything that is not canonical lowercase-or-uppercase base32. */
export function decodeBase32(text: string): Uint8Array | undefined {
  if (!/^[a-zA-Z2-7]*$/.test(text)) return undefined;
  try {
    const bytes = base32.baseDecode(text.toLowerCase());
    // Reject non-canonical encodings (trailing bits set), so one cap has one spelling.
    return encodeBase32(bytes) === text.toLowerCase() ? bytes : undefined;
  } catch {
    return undefined;
  }
}
