/**
 * The layer rule of README's "Architecture" section, checked by
 * dependency-cruiser in `npm test` (`npm run layers`): one folder per layer,
 * and each layer uses only those below it. No circular imports either.
 *
 * LAYERS lists the folders of src/ bottom to top, one row per height. A
 * module may import its own folder and any folder in a lower row; never a
 * higher row, and never another folder of its own row (folders that share a
 * row are independent services, e.g. quota and events). Type-only imports
 * count: a type from the wrong layer belongs in a lower one.
 *
 * Where README puts folders in one bullet, the order within it is the one the
 * code already follows and the README implies: crypto below cap (caps are
 * made of crypto's hashes and keys), and config below node below cli (the
 * configuration is read by the gateway, which the command line starts).
 * src/errors.ts and src/log.ts are the shared vocabulary (README: "every
 * layer throws these", "every layer takes a Logger"); src/types holds ambient
 * declarations of untyped dependencies; src/util is "usable by all".
 */

/** @type {readonly (readonly string[])[]} */
const LAYERS = [
  ['errors.ts', 'log.ts', 'types'],
  ['util'],
  ['crypto'],
  ['cap'],
  ['store'],
  ['tree'],
  ['auth'],
  ['users', 'homes'],
  ['defender', 'quota', 'gc', 'events'],
  ['sftp'],
  ['config'],
  ['node'],
  ['cli'],
];

/**
 * Known exceptions, each named, with the reason it is tolerated: none at
 * present. An entry `{ name, reason, from, to: [...] }` lets exactly those
 * files break the rule (a cycle entry `{ name, reason, modules: [...] }`,
 * exactly those modules); anything new still fails. Remove an entry as soon
 * as its cause is fixed.
 *
 * @type {readonly { name: string; reason: string; from: string; to: string[] }[]}
 */
const LAYER_EXCEPTIONS = [];

/** @type {readonly { name: string; reason: string; modules: string[] }[]} */
const CYCLE_EXCEPTIONS = [];

/** A path pattern for a folder (or a single file at the top of src/). */
const under = (name) => (name.endsWith('.ts') ? `^src/${name.replace('.', '\\.')}$` : `^src/${name}/`);

const layerRules = LAYERS.flatMap((row, height) =>
  row.flatMap((name) => {
    const forbidden = [...LAYERS.slice(height + 1).flat(), ...row.filter((other) => other !== name)].map(under);
    if (forbidden.length === 0) return [];
    const base = `layer-${name.replace('.ts', '')}`;
    const comment = `src/${name} uses only the layers below it (README "Architecture")`;
    const exceptions = LAYER_EXCEPTIONS.filter((e) => e.from.startsWith(under(name)));
    return [
      { name: base, comment, severity: 'error', from: { path: under(name), pathNot: exceptions.map((e) => e.from) }, to: { path: forbidden } },
      ...exceptions.map((e) => ({
        name: `${base} (except ${e.name})`,
        comment: `${comment}; tolerated: ${e.reason}`,
        severity: 'error',
        from: { path: e.from },
        to: { path: forbidden, pathNot: e.to },
      })),
    ];
  }),
);

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only imports included (README "Architecture": arrows point one way)',
      severity: 'error',
      from: {},
      // A cycle made only of modules named in CYCLE_EXCEPTIONS is tolerated; one that reaches any other module is not.
      to: { circular: true, via: { pathNot: CYCLE_EXCEPTIONS.flatMap((e) => e.modules).join('|') } },
    },
    {
      name: 'layer-unknown-folder',
      comment: 'Every folder of src/ has a place in LAYERS in .dependency-cruiser.cjs (and in README)',
      severity: 'error',
      from: { path: '^src/', pathNot: LAYERS.flat().map(under) },
      to: {},
    },
    {
      name: 'product-not-tools',
      comment: 'The product (src/) never imports the benchmarks, tests or scripts',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(bench|test|scripts)/' },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Count `import type` too: a type from a higher layer is still an arrow pointing up.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
