/**
 * How a reader walks a command through the code (issue 23's measure of back and forth):
 * `npm run walk` compiles src/ again with a call added at the start of every function body
 * that names its source file (a TypeScript transformer; arrow functions with an expression for
 * a body, and constructors, are left as they are), runs `gantry build --push` of a small FROM
 * scratch image to a docker-registry on a loopback port from that copy, and reads the files
 * entered, in order. It prints how many source files the command enters, and how many times it
 * enters a file it had left before: each is a jump a reader makes back to a file already read;
 * and the same by directory (src/'s top-level directories).
 *
 *   npm run walk -- [--runs N]
 *
 * Traced, not sampled; the order of work running concurrently (uploads) can move a few
 * entries between runs, so it prints each run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { startRegistry } from '../test/helpers/registry.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const runs = Number(arg('runs', '3'));

/** src/ compiled into `outDir` with `globalThis.__walk?.("<file>")` first in every function body. */
function compileTraced(outDir: string): void {
  const srcRoot = path.join(projectRoot, 'src');
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(projectRoot, 'tsconfig.build.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (!parsed) throw new Error('cannot read tsconfig.build.json');
  const program = ts.createProgram(parsed.fileNames, { ...parsed.options, outDir, declaration: false, sourceMap: false, noEmit: false });
  const f = ts.factory;
  const traced: ts.TransformerFactory<ts.SourceFile> = (ctx) => (sf) => {
    const file = path.relative(srcRoot, sf.fileName);
    const mark = (body: ts.Block): ts.Block =>
      f.updateBlock(body, [
        f.createExpressionStatement(f.createCallChain(f.createPropertyAccessExpression(f.createIdentifier('globalThis'), '__walk'), f.createToken(ts.SyntaxKind.QuestionDotToken), undefined, [f.createStringLiteral(file)])),
        ...body.statements,
      ]);
    const visit = (node: ts.Node): ts.Node => {
      const n = ts.visitEachChild(node, visit, ctx);
      if (ts.isFunctionDeclaration(n) && n.body) return f.updateFunctionDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters, n.type, mark(n.body));
      if (ts.isFunctionExpression(n)) return f.updateFunctionExpression(n, n.modifiers, n.asteriskToken, n.name, n.typeParameters, n.parameters, n.type, mark(n.body));
      if (ts.isArrowFunction(n) && ts.isBlock(n.body)) return f.updateArrowFunction(n, n.modifiers, n.typeParameters, n.parameters, n.type, n.equalsGreaterThanToken, mark(n.body));
      if (ts.isMethodDeclaration(n) && n.body) return f.updateMethodDeclaration(n, n.modifiers, n.asteriskToken, n.name, n.questionToken, n.typeParameters, n.parameters, n.type, mark(n.body));
      if (ts.isGetAccessorDeclaration(n) && n.body) return f.updateGetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, n.type, mark(n.body));
      if (ts.isSetAccessorDeclaration(n) && n.body) return f.updateSetAccessorDeclaration(n, n.modifiers, n.name, n.parameters, mark(n.body));
      return n;
    };
    return ts.visitNode(sf, visit) as ts.SourceFile;
  };
  const result = program.emit(undefined, undefined, undefined, false, { before: [traced] });
  if (result.emitSkipped) throw new Error('the traced compile emitted nothing');
}

/**
 * The files entered in order (consecutive entries into one file folded): files entered, entries
 * into a file left before, and those entries by file.
 */
function measure(walk: readonly string[]): { files: number; returns: number; byFile: Map<string, number> } {
  const seen = new Set<string>();
  const byFile = new Map<string, number>();
  let returns = 0;
  for (const file of walk) {
    if (seen.has(file)) {
      returns++;
      byFile.set(file, (byFile.get(file) ?? 0) + 1);
    }
    seen.add(file);
  }
  return { files: seen.size, returns, byFile };
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  if (!registry) throw new Error('docker-registry is missing: apt-get install docker-registry');
  // Inside the project, so that the compiled modules find node_modules.
  const out = mkdtempSync(path.join(projectRoot, '.walk-'));
  const work = mkdtempSync(path.join(tmpdir(), 'gantry-walk-'));
  try {
    compileTraced(out);
    writeFileSync(path.join(out, 'package.json'), '{"type":"module"}\n');
    const context = path.join(work, 'ctx');
    mkdirSync(context);
    writeFileSync(path.join(context, 'hello.txt'), 'hello\n');
    writeFileSync(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\nENV A=1\nCMD ["/hello"]\n');
    const results: { files: number; returns: number; dirs: number; dirReturns: number }[] = [];
    for (let i = 0; i < runs; i++) {
      const walkFile = path.join(work, `walk-${i}.json`);
      const entry = [
        'import { writeFileSync } from "node:fs";',
        'const walk = [];',
        'globalThis.__walk = (f) => { if (walk[walk.length - 1] !== f) walk.push(f); };',
        `process.on("exit", () => writeFileSync(${JSON.stringify(walkFile)}, JSON.stringify(walk)));`,
        `const m = await import(${JSON.stringify(path.join(out, 'cli', 'main.js'))});`,
        'await m.main(process.argv.slice(1));',
      ].join('\n');
      execFileSync(
        process.execPath,
        ['--input-type=module', '-e', entry, 'build', '--root', path.join(work, `store-${i}`), '--insecure-registry', registry.host, '-t', `${registry.host}/walk/app:${i}`, '--push', '--progress', 'plain', context],
        { stdio: ['ignore', 'ignore', 'inherit'] },
      );
      const walk = JSON.parse(readFileSync(walkFile, 'utf8')) as string[];
      const r = measure(walk);
      // The same walk by top-level directory of src/ (index.ts and its neighbours are '.').
      const byDir = measure(walk.map((f) => (f.includes('/') ? (f.split('/')[0] as string) : '.')).filter((d, j, all) => j === 0 || all[j - 1] !== d));
      results.push({ ...r, dirs: byDir.files, dirReturns: byDir.returns });
      if (process.env.WALK_SEQUENCE) writeFileSync(process.env.WALK_SEQUENCE, walk.join('\n') + '\n');
      if (process.env.WALK_DETAIL) console.log([...r.byFile].sort((a, b) => b[1] - a[1]).slice(0, 20).map(([f, n]) => `${n} ${f}`).join('\n'));
    }
    const each = (key: keyof (typeof results)[number]): string => results.map((r) => r[key]).join(', ');
    console.log(
      `gantry build --push, traced (${runs} runs): files entered ${each('files')}; entries into a file left before ${each('returns')}; ` +
        `directories entered ${each('dirs')}; entries into a directory left before ${each('dirReturns')}`,
    );
  } finally {
    await registry.stop();
    rmSync(out, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
