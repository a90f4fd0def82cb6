import { describe, expect, it } from 'vitest';
import { ConfigError, parseIni } from '../../src/config/index.js';

describe('parseIni', () => {
  it('reads sections, dotted keys, comments and empty values', () => {
    const doc = parseIni(
      [
        '# comment',
        '; also',
        '',
        '[node]',
        'nickname = my node # not a comment',
        '',
        '[sftpd]',
        '  accounts.url =',
        'accounts.url.timeout=5',
      ].join('\n'),
    );
    expect([...doc.sections.keys()]).toEqual(['node', 'sftpd']);
    expect(doc.sections.get('node')!.values.get('nickname')).toEqual({ value: 'my node # not a comment', line: 5 });
    expect(doc.sections.get('sftpd')!.values.get('accounts.url')).toEqual({ value: '', line: 8 });
    expect(doc.sections.get('sftpd')!.values.get('accounts.url.timeout')!.value).toBe('5');
  });

  it('accepts CRLF line endings and a BOM', () => {
    const doc = parseIni('\uFEFF[node]\r\nlog_level = debug\r\n');
    expect(doc.sections.get('node')!.values.get('log_level')).toEqual({ value: 'debug', line: 2 });
  });

  it.each([
    ['key = value', /line 1: key "key" appears before any \[section\]/],
    ['[node]\njust words', /line 2: expected "key = value"/],
    ['[node\n', /line 1: malformed section header/],
    ['[node]\nbad key = 1', /line 2: malformed key/],
    ['[node]\na = 1\na = 2', /line 3: \[node\] a repeated \(first on line 2\)/],
    ['[node]\n[http]\n[node]', /line 3: section \[node\] repeated \(first on line 1\)/],
  ])('refuses %j with a line number', (text, message) => {
    let err: unknown;
    try {
      parseIni(text);
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe('ConfigError');
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).toMatch(/^capstan\.cfg line \d+: /);
  });

  it('never echoes a whole faulty line', () => {
    expect(() => parseIni('[node]\nhunter2 secret words')).toThrow(/^capstan\.cfg line 2: expected "key = value"$/);
  });
});
