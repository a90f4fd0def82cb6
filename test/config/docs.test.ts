import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfigText, renderConfigTable, TABLE_BEGIN, TABLE_END } from '../../src/config/index.js';
import { REPO } from '../helpers/cli.js';

/**
 * docs/configuration.md holds the table generated from src/config/schema.ts.
 * To refresh it after changing the schema, replace the lines between the
 * markers with the output of:
 *   node --input-type=module -e "import('./dist/config/index.js').then((m) => process.stdout.write(m.renderConfigTable()))"
 */
describe('docs/configuration.md', () => {
  it('holds exactly the table generated from the schema', async () => {
    const doc = await readFile(path.join(REPO, 'docs/configuration.md'), 'utf8');
    const begin = doc.indexOf(TABLE_BEGIN);
    const end = doc.indexOf(TABLE_END);
    expect(begin, 'begin marker').toBeGreaterThanOrEqual(0);
    expect(end, 'end marker').toBeGreaterThan(begin);
    const table = doc.slice(begin + TABLE_BEGIN.length, end).trim() + '\n';
    expect(table).toBe(renderConfigTable());
  });

  it('private.example/capstan.cfg is valid, has every key, and names the example accounts file', async () => {
    const text = await readFile(path.join(REPO, 'private.example/capstan.cfg'), 'utf8');
    const config = parseConfigText('/node', text);
    expect(config).toEqual(parseConfigText('/node', ''));
    expect(config.sftpd.accountsFile).toBe('/node/private/accounts');
    for (const line of renderConfigTable().split('\n').slice(2, -1)) {
      const key = line.split('`')[3]!;
      expect(text, key).toMatch(new RegExp(`^${key.replace(/\./g, '\\.')} =`, 'm'));
    }
    await readFile(path.join(REPO, 'private.example/accounts'), 'utf8');
  });
});
