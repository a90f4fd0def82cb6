import { SCHEMA, schemaEntries, type SectionName } from './schema.js';

/** Generated from the schema: `capstan init`'s capstan.cfg, and the table in docs/configuration.md. */

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * A complete capstan.cfg: every key with its description as a comment and
 * its default (or the value in `values`, keyed "section.key") set.
 */
export function renderConfigFile(values: Record<string, string> = {}): string {
  const out = [
    '# capstan node configuration. Every key is listed with its default;',
    '# docs/configuration.md explains them. Relative paths are relative to',
    '# this directory. Restart `capstan run` after editing (the accounts file',
    '# is the exception: it is reloaded when it changes).',
  ];
  for (const section of Object.keys(SCHEMA) as SectionName[]) {
    out.push('', `[${section}]`);
    for (const [name, spec] of Object.entries(SCHEMA[section])) {
      for (const line of wrap(spec.description.replace(/`/g, ''), 74)) out.push(`# ${line}`);
      const value = values[`${section}.${name}`] ?? spec.default;
      out.push(value === '' ? `${name} =` : `${name} = ${value}`, '');
    }
    out.pop();
  }
  return out.join('\n') + '\n';
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The markdown table of every key; docs/configuration.md holds exactly this between its markers. */
export function renderConfigTable(): string {
  const rows = [
    '| section | key | default | type | meaning |',
    '|---|---|---|---|---|',
    ...schemaEntries().map(
      ({ section, key, spec }) =>
        `| \`[${section}]\` | \`${key}\` | ${spec.default === '' ? '(empty)' : `\`${spec.default}\``} | ${spec.type.doc} | ${cell(spec.description)} |`,
    ),
  ];
  return rows.join('\n') + '\n';
}

export const TABLE_BEGIN = '<!-- config-table:begin (generated from src/config/schema.ts; test/config/docs.test.ts checks it) -->';
export const TABLE_END = '<!-- config-table:end -->';
