import { describe, expect, it } from 'vitest';
import { parseChecksumCommand, splitCommand } from '../../src/sftp/checksum-exec.js';

describe('checksum command parsing (no shell)', () => {
  it('accepts plain words, simple quotes, concatenations and --', () => {
    expect(parseChecksumCommand('sha256sum a.txt  dir/b.bin')).toEqual({ name: 'sha256sum', paths: ['a.txt', 'dir/b.bin'] });
    expect(parseChecksumCommand(`md5sum "with space" 'single $x' "a"'b'c`)).toEqual({
      name: 'md5sum',
      paths: ['with space', 'single $x', 'abc'],
    });
    expect(parseChecksumCommand('sha1sum -- -dash.txt')).toEqual({ name: 'sha1sum', paths: ['-dash.txt'] });
    expect(parseChecksumCommand('sha256sum\t/uri/x')).toEqual({ name: 'sha256sum', paths: ['/uri/x'] });
  });

  it('takes a backslash outside quotes as making the next character plain, as rclone escapes paths', () => {
    expect(parseChecksumCommand('md5sum /rc/a/ü\\ name.txt')).toEqual({ name: 'md5sum', paths: ['/rc/a/ü name.txt'] });
    expect(parseChecksumCommand("md5sum a\\'b\\(c\\)\\&\\$HOME\\\\\\*")).toEqual({ name: 'md5sum', paths: ["a'b(c)&$HOME\\*"] });
    // A newline in a name arrives as '<LF>', and only that way.
    expect(parseChecksumCommand("md5sum two\\ '\n'lines")).toEqual({ name: 'md5sum', paths: ['two \nlines'] });
    for (const cmd of ['md5sum a\nb', 'md5sum "a\nb"', 'md5sum a\\\nb'])
      expect(parseChecksumCommand(cmd), JSON.stringify(cmd)).toBeUndefined();
  });

  it('takes no path, `-` or `--` alone as standard input (rclone detects md5sum by running it bare)', () => {
    for (const cmd of ['md5sum', 'md5sum -', 'md5sum --', 'md5sum -- -', ' md5sum ']) {
      expect(parseChecksumCommand(cmd), JSON.stringify(cmd)).toEqual({ name: 'md5sum', paths: ['-'] });
    }
    for (const cmd of ['md5sum - a', 'md5sum a -', 'md5sum -- a -', 'md5sum - -'])
      expect(parseChecksumCommand(cmd), JSON.stringify(cmd)).toBeUndefined();
  });

  it('refuses metacharacters, unbalanced quotes, expansions in double quotes, control characters, options and other commands', () => {
    for (const cmd of [
      'sha256sum a && ls',
      'sha256sum a > b',
      'sha256sum *',
      'sha256sum ~/x',
      'sha256sum "a',
      "sha256sum 'a",
      'sha256sum "$HOME"',
      'sha256sum "a\\b"',
      'sha256sum a\nls',
      'sha256sum -b a',
      'sha256sum --tag a',
      'sha256sum ""',
      'cat a',
      'SHA256SUM a',
      '/usr/bin/sha256sum a',
      'sha256sum a\\',
      'sha256sum {a,b}',
      'sha256sum a#b',
    ]) {
      expect(parseChecksumCommand(cmd), JSON.stringify(cmd)).toBeUndefined();
    }
    expect(splitCommand('x'.repeat(70_000))).toBeUndefined();
  });
});
