import { InvalidInputError } from '../errors.js';

/**
 * The INI dialect of capstan.cfg, modelled on tahoe.cfg:
 *
 *     # a comment            ; also a comment (whole lines only)
 *     [section]
 *     key = value            keys may contain dots: accounts.url.timeout = 10
 *
 * - Blank lines and lines whose first non-blank character is `#` or `;` are
 *   ignored. A `#` later in a line is part of the value (paths and URLs may
 *   hold one), so there are no trailing comments.
 * - Values are trimmed; an empty value is allowed (`accounts.url =`) and
 *   means whatever the schema says empty means (usually "off").
 * - A key before any section header, a repeated section, or a repeated key
 *   within a section is an error: silently keeping one of two values is how a
 *   typo goes unnoticed.
 *
 * Every error names the file and the 1-based line, and never echoes a whole
 * line (an operator might have pasted a secret into the wrong file).
 */

/** Bound on what is parsed at all: a real capstan.cfg is well under 4 KiB. */
export const MAX_CONFIG_BYTES = 256 * 1024;

export interface IniValue {
  value: string;
  line: number;
}

export interface IniSection {
  name: string;
  line: number;
  values: Map<string, IniValue>;
}

export interface IniDocument {
  sections: Map<string, IniSection>;
}

/** A malformed or invalid configuration file; the message is one line, ready to print. */
export class ConfigError extends InvalidInputError {}

const SECTION_RE = /^\[([A-Za-z0-9_.-]+)\]$/;
const KEY_RE = /^[A-Za-z0-9_.-]+$/;

export function parseIni(text: string, fileName = 'capstan.cfg'): IniDocument {
  if (Buffer.byteLength(text) > MAX_CONFIG_BYTES) {
    throw new ConfigError(`${fileName}: larger than ${MAX_CONFIG_BYTES} bytes`);
  }
  const sections = new Map<string, IniSection>();
  let current: IniSection | undefined;
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const lineNo = i + 1;
    const where = `${fileName} line ${lineNo}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;

    if (line.startsWith('[')) {
      const match = SECTION_RE.exec(line);
      if (!match) throw new ConfigError(`${where}: malformed section header (expected [name])`);
      const name = match[1]!;
      if (sections.has(name)) {
        throw new ConfigError(`${where}: section [${name}] repeated (first on line ${sections.get(name)!.line})`);
      }
      current = { name, line: lineNo, values: new Map() };
      sections.set(name, current);
      continue;
    }

    const eq = line.indexOf('=');
    if (eq < 0) throw new ConfigError(`${where}: expected "key = value"`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    if (!KEY_RE.test(key)) throw new ConfigError(`${where}: malformed key (allowed: letters, digits, "_", ".", "-")`);
    if (current === undefined) throw new ConfigError(`${where}: key "${key}" appears before any [section]`);
    const earlier = current.values.get(key);
    if (earlier !== undefined) {
      throw new ConfigError(`${where}: [${current.name}] ${key} repeated (first on line ${earlier.line})`);
    }
    current.values.set(key, { value, line: lineNo });
  }
  return { sections };
}
