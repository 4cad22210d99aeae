#!/usr/bin/env node
// The command's start-up, made short: `npm run build` compiles src/ to dist/ with tsc, then this
// script bundles the CLI (dist/cli/main.js and everything it imports) into one file,
// dist/cli.cjs, and keeps V8's compiled code for it in dist/cli.cache. bin/gantry loads the two
// with node:vm, which saves Node from resolving and reading ~260 module files and V8 from
// compiling them on every command (docs/performance.md, "Start-up").
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'cli.cjs');
const cache = path.join(root, 'dist', 'cli.cache');

/**
 * yargs imports string-width at its top level, and string-width compiles Unicode-property
 * regular expressions and an Intl.Segmenter when it loads: 13 ms of every command's start-up,
 * for a function yargs only calls to lay out help. yargs gets a stand-in that loads it on first
 * use (esbuild keeps an ES module's body in a lazily run init function).
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, (args) =>
      args.importer.includes(`${path.sep}yargs${path.sep}`) && args.namespace === 'file' ? { path: 'string-width', namespace: 'lazy' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, () => ({
      contents: "let width; export default (text, options) => (width ??= require('string-width').default)(text, options);",
      resolveDir: path.join(root, 'node_modules', 'yargs'),
      loader: 'js',
    }));
  },
};

/**
 * tar-stream is bundled too (resolving it and its five dependencies through node_modules cost
 * 10 ms of every start-up). src/tar/tar.ts changes functions of tar-stream's headers module,
 * which dist/tar/tar-headers.js finds at run time beside tar-stream's main file; in the bundle
 * that would be node_modules' copy, not the bundled one. So the bundle gets a tar-headers
 * module that imports the bundled file itself (tar-stream's package exports do not name it,
 * hence the path).
 */
const require = createRequire(import.meta.url);
const tarHeaders = {
  name: 'tar-headers',
  setup(b) {
    b.onLoad({ filter: /[\\/]dist[\\/]tar[\\/]tar-headers\.js$/ }, () => ({
      contents: `export { default } from ${JSON.stringify(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js'))};`,
      loader: 'js',
    }));
  },
};

await build({
  plugins: [lazyStringWidth, tarHeaders],
  entryPoints: [path.join(root, 'dist', 'cli', 'main.js')],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // CommonJS has no import.meta: the bundle's own URL stands in for it.
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// Compile and run the bundle's top level (it defines the commands; nothing runs until main is
// called), then keep the code V8 made: the functions start-up needs are compiled by then.
rmSync(cache, { force: true });
const source = readFileSync(out, 'utf8');
// The CommonJS wrapper exactly as bin/gantry applies it: the cache is only used for the same text.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: out });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(out), mod, out, path.dirname(out));
if (typeof mod.exports.main !== 'function') throw new Error(`${out} does not export main`);
writeFileSync(cache, script.createCachedData());

