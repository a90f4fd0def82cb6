/** Bounds what one exec command line may be. */
export const MAX_COMMAND_BYTES = 64 * 1024;

/** One word of a command line, with its quotes and escapes removed. */
export interface ShellWord {
  readonly text: string;
  /** For each UTF-16 unit of `text`: true if it stood outside quotes, unescaped (where sh would expand a glob or `~`). */
  readonly bare: readonly boolean[];
}

/**
 * Splits an exec command line into words the way sh quotes them, with no
 * shell behind it: words are separated by spaces or tabs; a word is plain
 * characters, '…' (anything but '), "…" (anything but ", $, `, \ and a
 * newline), \X (X itself: rclone escapes every character outside
 * [A-Za-z0-9_.,:/@-] and non-ASCII that way, and writes a newline in a name
 * as '<LF>'), or a concatenation of those. Undefined for a line longer than
 * MAX_COMMAND_BYTES, with a control character, or with a newline outside
 * '…' (there it would end a command). Which bare characters a command
 * accepts is its caller's rule.
 */
export function shellWords(command: string): ShellWord[] | undefined {
  if (Buffer.byteLength(command) > MAX_COMMAND_BYTES) return undefined;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what this refuses
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(command)) return undefined;
  const words: ShellWord[] = [];
  let i = 0;
  while (i < command.length) {
    while (command[i] === ' ' || command[i] === '\t') i++;
    if (i >= command.length) break;
    let text = '';
    const bare: boolean[] = [];
    const add = (part: string, isBare: boolean): void => {
      text += part;
      for (let k = 0; k < part.length; k++) bare.push(isBare);
    };
    while (i < command.length && command[i] !== ' ' && command[i] !== '\t') {
      const c = command[i];
      if (c === "'") {
        const end = command.indexOf("'", i + 1);
        if (end < 0) return undefined;
        add(command.slice(i + 1, end), false);
        i = end + 1;
      } else if (c === '"') {
        const end = command.indexOf('"', i + 1);
        if (end < 0) return undefined;
        const inner = command.slice(i + 1, end);
        if (/[$`\\\n]/.test(inner)) return undefined;
        add(inner, false);
        i = end + 1;
      } else if (c === '\\') {
        // A backslash outside quotes makes the next character plain, as in sh; one at the end escapes nothing.
        const next = command[i + 1];
        if (next === undefined || next === '\n') return undefined;
        add(next, false);
        i += 2;
      } else if (c === '\n') {
        return undefined;
      } else {
        add(command.slice(i, i + 1), true);
        i++;
      }
    }
    words.push({ text, bare });
  }
  return words;
}

/** True if any bare character of `word` is in `chars`. */
export function hasBare(word: ShellWord, chars: RegExp): boolean {
  for (let k = 0; k < word.text.length; k++) if (word.bare[k] === true && chars.test(word.text.charAt(k))) return true;
  return false;
}
