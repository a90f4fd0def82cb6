/**
 * Just enough XML for S3's answers: ListObjectsV2 results and error bodies.
 * Not a general parser, on purpose: S3 answers are flat, and a regex over
 * element text cannot be made to expand entities, fetch DTDs or recurse, so a
 * hostile or broken endpoint can at worst make a listing fail. Bodies are
 * size-bounded by the caller before they get here.
 */

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the five predefined entities and numeric character references; anything else is left as written. */
export function decodeXmlText(text: string): string {
  return text.replace(/&(#x[0-9A-Fa-f]{1,6}|#[0-9]{1,7}|[a-z]{2,4});/g, (whole, ref: string) => {
    if (ref.startsWith('#x')) return safeCodePoint(parseInt(ref.slice(2), 16)) ?? whole;
    if (ref.startsWith('#')) return safeCodePoint(parseInt(ref.slice(1), 10)) ?? whole;
    return ENTITIES[ref] ?? whole;
  });
}

function safeCodePoint(n: number): string | undefined {
  return n <= 0x10ffff ? String.fromCodePoint(n) : undefined;
}

/** Text of every `<name>…</name>` element (no attributes expected), in document order. */
export function elementTexts(xml: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${name}>([^<]*)</${name}>`, 'g');
  for (const m of xml.matchAll(re)) out.push(decodeXmlText(m[1]!));
  return out;
}

/** Inner XML of every `<name>…</name>` block (for <Contents> of a listing). */
export function elementBlocks(xml: string, name: string): string[] {
  const out: string[] = [];
  const re = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`, 'g');
  for (const m of xml.matchAll(re)) out.push(m[1]!);
  return out;
}

/** One object of a listing; `modifiedMs`: its LastModified, when the listing gave a date that parses. */
export interface ListedObject {
  key: string;
  size: number;
  modifiedMs?: number;
}

export interface ListPage {
  objects: ListedObject[];
  /** More keys follow (list.ts says how a page without a token is followed). */
  truncated: boolean;
  /** The token to pass back as continuation-token, when the service gave one. */
  nextContinuationToken?: string;
}

/** Parses a ListObjectsV2 result. */
export function parseListObjectsV2(xml: string): ListPage {
  if (!/<ListBucketResult[\s>]/.test(xml)) throw new Error('not a ListBucketResult');
  const objects = elementBlocks(xml, 'Contents').map((block) => {
    const key = elementTexts(block, 'Key')[0];
    const size = Number(elementTexts(block, 'Size')[0]);
    if (key === undefined || !Number.isSafeInteger(size) || size < 0) throw new Error('malformed <Contents>');
    const modifiedMs = Date.parse(elementTexts(block, 'LastModified')[0] ?? '');
    return Number.isNaN(modifiedMs) ? { key, size } : { key, size, modifiedMs };
  });
  const truncated = elementTexts(xml, 'IsTruncated')[0] === 'true';
  if (!truncated) return { objects, truncated };
  const token = elementTexts(xml, 'NextContinuationToken')[0];
  return token === undefined || token === '' ? { objects, truncated } : { objects, truncated, nextContinuationToken: token };
}

/** The <Code> of an S3 error body, if there is one. */
export function errorCode(xml: string): string | undefined {
  const code = elementTexts(xml, 'Code')[0];
  return code !== undefined && /^[A-Za-z0-9.]{1,64}$/.test(code) ? code : undefined;
}
