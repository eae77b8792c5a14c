/**
 * The dependency rule of src/: every import points down the layer order below, and no product
 * module imports test code (test/) or the lab (lab/). The lab is loaded on demand only, by
 * `import()` (vpnlb lab). Unit tests (`*.test.ts`) sit beside the code and may import anything
 * (test/support helpers, the lab's process helpers), so they are not checked.
 *
 * Adding a folder under src/ means adding it to LAYERS (the test fails until then).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import ts from 'typescript';

/**
 * From the bottom up. A module may import its own folder and any folder of a lower layer; two
 * folders of one layer may not import each other, except in the base layer (shared helpers).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'util', 'log', 'platform'],
  ['protocol'],
  ['balancer'],
  ['config'],
  ['observability'],
  ['control'],
  ['dataplane', 'health', 'sim'],
  ['admin', 'ha', 'bgp', 'export', 'rras'],
  ['runtime'],
  ['demo'],
  ['cli'],
];

export interface ImportSite {
  readonly specifier: string;
  /** `import()` (loaded on demand) rather than a static import or export. */
  readonly dynamic: boolean;
  readonly line: number;
}

/** Every module specifier of a TypeScript source: imports, re-exports, `import()` and `import('x').T`. */
export function importsOf(fileName: string, text: string): ImportSite[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const out: ImportSite[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, dynamic: boolean) => {
    if (spec && ts.isStringLiteralLike(spec))
      out.push({
        specifier: spec.text,
        dynamic,
        line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1,
      });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node))
      add(node, node.moduleSpecifier, false);
    else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference)
    )
      add(node, node.moduleReference.expression, false);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword)
      add(node, node.arguments[0], true);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument))
      add(node, node.argument.literal, false);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** The layer folder of a repository-relative path under src/ (`src/dataplane/kernel/x.ts` → `dataplane`). */
function folderOf(path: string): string | undefined {
  const parts = path.split('/');
  if (parts[0] !== 'src' || parts.length < 2) return undefined;
  // A module at the top of src/ (errors.ts) is a layer member by its own name.
  return parts.length === 2 ? parts[1]!.replace(/\.js$/, '.ts') : parts[1];
}

function layerOf(folder: string): number {
  return LAYERS.findIndex((l) => l.includes(folder));
}

/**
 * The violations of one product file (repository-relative, `/`-separated), each a sentence
 * naming the file, the line and the import.
 */
export function checkFile(path: string, imports: readonly ImportSite[]): string[] {
  const problems: string[] = [];
  const from = folderOf(path);
  if (from === undefined) return problems;
  const fromLayer = layerOf(from);
  if (fromLayer < 0)
    return [`${path}: src/${from} is in no layer (add it to LAYERS in src/architecture.test.ts)`];
  for (const imp of imports) {
    if (!imp.specifier.startsWith('.')) continue;
    const target = normalize(join(dirname(path), imp.specifier))
      .split(sep)
      .join('/');
    const where = `${path}:${imp.line} imports '${imp.specifier}'`;
    if (target.startsWith('test/') || target.startsWith('bench/')) {
      problems.push(`${where}: product code must not import test or bench code (${target})`);
      continue;
    }
    if (target.startsWith('lab/')) {
      if (!imp.dynamic)
        problems.push(
          `${where}: product code must not import the lab statically (${target}); load it on demand with import()`,
        );
      continue;
    }
    const to = folderOf(target);
    if (to === undefined) {
      problems.push(`${where}: points outside src/ (${target})`);
      continue;
    }
    if (to === from) continue;
    const toLayer = layerOf(to);
    if (toLayer < 0) {
      problems.push(
        `${where}: src/${to} is in no layer (add it to LAYERS in src/architecture.test.ts)`,
      );
    } else if (toLayer > fromLayer) {
      problems.push(
        `${where}: points up, from ${from} (layer ${fromLayer}) to ${to} (layer ${toLayer})`,
      );
    } else if (toLayer === fromLayer && fromLayer !== 0) {
      problems.push(
        `${where}: ${from} and ${to} share layer ${fromLayer} and must not import each other`,
      );
    }
  }
  return problems;
}

function repoRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'src'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

function productFiles(root: string, dir = join(root, 'src')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = join(dir, e.name);
    if (e.isDirectory()) return productFiles(root, full);
    if (!e.name.endsWith('.ts') || e.name.endsWith('.d.ts') || e.name.endsWith('.test.ts'))
      return [];
    return [relative(root, full).split(sep).join('/')];
  });
}

test('every import in src/ points down the layers and none into test/ or lab/', () => {
  const root = repoRoot();
  const files = productFiles(root);
  assert.ok(files.length > 100, `only ${files.length} product files found under ${root}/src`);
  const problems = files.flatMap((f) =>
    checkFile(f, importsOf(f, readFileSync(join(root, f), 'utf8'))),
  );
  assert.deepEqual(problems, [], `\n${problems.join('\n')}`);
});

test('no test helper sits in src/ (they belong in test/support/)', () => {
  const root = repoRoot();
  const helpers = productFiles(root).filter((f) =>
    /(^|\/)(test-|testing\/)|fixtures|harness|conformance/.test(f),
  );
  assert.deepEqual(helpers, []);
});

test('the checker finds each kind of violation', () => {
  const at = (specifier: string, dynamic = false): ImportSite[] => [
    { specifier, dynamic, line: 7 },
  ];
  assert.deepEqual(checkFile('src/config/x.ts', at('../control/controller.js')), [
    "src/config/x.ts:7 imports '../control/controller.js': points up, from config (layer 3) to control (layer 5)",
  ]);
  assert.match(
    checkFile('src/dataplane/relay/x.ts', at('../../health/health-checker.js'))[0] ?? '',
    /share layer 6/,
  );
  assert.match(
    checkFile('src/health/x.ts', at('../../test/support/loopback-targets.js'))[0] ?? '',
    /must not import test/,
  );
  assert.match(checkFile('src/cli/x.ts', at('../../lab/netns.js'))[0] ?? '', /lab statically/);
  assert.deepEqual(checkFile('src/cli/x.ts', at('../../lab/netns.js', true)), []);
  assert.deepEqual(checkFile('src/cli/x.ts', at('../runtime/runtime.js')), []);
  assert.match(checkFile('src/newthing/x.ts', [])[0] ?? '', /in no layer/);
  assert.deepEqual(checkFile('src/platform/x.ts', at('../log/logger.js')), []);
});

test('importsOf sees static, type-only, re-export and dynamic imports, not comments', () => {
  const sites = importsOf(
    'x.ts',
    [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "export { c } from './c.js';",
      "// import { d } from './d.js';",
      "const e = await import('./e.js');",
      "let f: import('./f.js').F;",
    ].join('\n'),
  );
  assert.deepEqual(
    sites.map((s) => [s.specifier, s.dynamic, s.line]),
    [
      ['./a.js', false, 1],
      ['./b.js', false, 2],
      ['./c.js', false, 3],
      ['./e.js', true, 5],
      ['./f.js', false, 6],
    ],
  );
});
