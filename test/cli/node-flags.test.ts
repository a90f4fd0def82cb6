import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('the node flags capstan runs with', () => {
  it('are what the CLI shebang passes, in the source, in dist and in npm start', () => {
    const shebang = `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`;
    expect(readFileSync(path.join(repo, 'src/cli/main.ts'), 'utf8').split('\n')[0]).toBe(shebang);
    expect(readFileSync(path.join(repo, 'dist/cli/main.js'), 'utf8').split('\n')[0]).toBe(shebang);
    const start = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')).scripts.start as string;
    expect(start).toBe(`node ${NODE_FLAGS.join(' ')} dist/cli/main.js demo`);
  });

  it('run when dist/cli/main.js is executed directly, as `capstan` is', () => {
    const run = spawnSync(path.join(repo, 'dist/cli/main.js'), ['--version'], {
      encoding: 'utf8',
      // The shebang finds node on PATH; make it this node.
      env: { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? ''}` },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('are accepted by this node, through env -S as the shebang runs them', () => {
    const run = spawnSync(
      '/usr/bin/env',
      ['-S', `${process.execPath} ${NODE_FLAGS.join(' ')}`, path.join(repo, 'dist/cli/main.js'), '--version'],
      {
        encoding: 'utf8',
      },
    );
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});
