#!/usr/bin/env node
// The command's start-up, made short: `npm run build` compiles src/ to dist/ with tsc, then this
// script bundles the CLI (dist/cli/main.js and everything it imports) into one file,
// dist/cli.cjs, and keeps V8's compiled code for it in dist/cli.cache. bin/gantry loads the two
// with node:vm, which saves Node from resolving and reading ~260 module files and V8 from
// compiling them on every command (docs/performance.md, "Start-up").
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'cli.cjs');
const cache = path.join(root, 'dist', 'cli.cache');

/**
 * yargs, and cliui and wrap-ansi under it, import string-width at their top level (each its own
 * copy), and string-width makes an Intl.Segmenter and compiles Unicode-property regular
 * expressions when it loads: 15 ms of every command's start-up, for a function only called to
 * lay out help. Each importer gets a stand-in that loads its copy on first use (esbuild keeps
 * an ES module's body in a lazily run init function). ora's copy is left: ora itself is only
 * loaded for a terminal.
 */
const lazyStringWidth = {
  name: 'lazy-string-width',
  setup(b) {
    b.onResolve({ filter: /^string-width$/ }, (args) =>
      args.namespace === 'file' && /[\\/]node_modules[\\/](yargs|cliui|wrap-ansi)[\\/]/.test(args.importer)
        ? { path: args.importer, namespace: 'lazy', pluginData: { dir: args.resolveDir } }
        : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy' }, (args) => ({
      contents: "let width; export default (text, options) => (width ??= require('string-width').default)(text, options);",
      resolveDir: args.pluginData.dir,
      loader: 'js',
    }));
  },
};

const require = createRequire(import.meta.url);

/**
 * undici (1 MB of the 2.1 MB bundle) is only loaded when a command talks to a registry
 * (src/registry/client.ts imports it dynamically), so it is left out of the bundle and required
 * from node_modules then. Left in, every command read, scanned and deserialised it for nothing:
 * a no-op rebuild took 7 ms more. node:vm runs the bundle without a dynamic import() of its own,
 * so the import becomes a require of the installed package.
 */
const undiciAtRunTime = {
  name: 'undici-at-run-time',
  setup(b) {
    b.onResolve({ filter: /^undici$/ }, (args) =>
      args.kind === 'dynamic-import' ? { path: 'undici', namespace: 'run-time' } : { path: 'undici', external: true },
    );
    b.onLoad({ filter: /.*/, namespace: 'run-time' }, () => ({ contents: "module.exports = require('undici');", loader: 'js' }));
  },
};

/**
 * node:fs/promises (with the readline and watcher modules it loads) costs every command 1.4 to
 * 2 ms, and a build that changes nothing calls none of it: its reads are synchronous. The
 * bundle's modules get a stand-in with the same functions, each loading the real module on its
 * first call. Functions only: the bundle uses no other export of it (a missing one fails here).
 */
const lazyFsPromises = {
  name: 'lazy-fs-promises',
  setup(b) {
    b.onResolve({ filter: /^(node:)?fs\/promises$/ }, (args) =>
      args.namespace === 'lazy-fs-promises' ? { path: 'node:fs/promises', external: true } : { path: 'fs/promises', namespace: 'lazy-fs-promises' },
    );
    b.onLoad({ filter: /.*/, namespace: 'lazy-fs-promises' }, () => {
      const real = require('node:fs/promises');
      const names = Object.keys(real).filter((k) => typeof real[k] === 'function');
      return {
        contents: [
          'let real;',
          "const load = () => (real ??= require('node:fs/promises'));",
          ...names.map((n) => `export function ${n}(...args) { return load().${n}(...args); }`),
        ].join('\n'),
        loader: 'js',
      };
    });
  },
};

await build({
  plugins: [lazyStringWidth, undiciAtRunTime, lazyFsPromises],
  entryPoints: [path.join(root, 'dist', 'cli', 'main.js')],
  outfile: out,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // Less text to read and scan at every start (2.1 → 1.5 MB); names are kept, so stack traces
  // still name functions. Licence comments go to dist/cli.cjs.LEGAL.txt.
  minifyWhitespace: true,
  legalComments: 'external',
  // ASCII only, so bin/gantry can decode it as latin1 (checked below).
  charset: 'ascii',
  // CommonJS has no import.meta: the bundle's own URL stands in for it.
  define: { 'import.meta.url': '__bundleUrl' },
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  logLevel: 'warning',
});

// bin/gantry decodes the bundle as latin1, which is only right for ASCII. esbuild escapes what
// it can; a character it leaves (in a regular expression literal, say) stops the build here.
const source = readFileSync(out, 'latin1');
const wide = /[^\x00-\x7f]/.exec(source);
if (wide) throw new Error(`${out}: a character that is not ASCII at offset ${wide.index} (${JSON.stringify(source.slice(wide.index - 40, wide.index + 10))}); write it as an escape in the source`);

// Compile and run the bundle's top level (it defines the commands; nothing runs until main is
// called), then keep the code V8 made: the functions start-up needs are compiled by then.
rmSync(cache, { force: true });
// The CommonJS wrapper exactly as bin/gantry applies it: the cache is only used for the same text.
const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: out });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, createRequire(out), mod, out, path.dirname(out));
if (typeof mod.exports.main !== 'function') throw new Error(`${out} does not export main`);
writeFileSync(cache, script.createCachedData());

/**
 * Then a better cache: V8 compiles a function when it first runs, so the cache above lacks
 * everything a command does after start-up (yargs' parsing, reading the base image, planning,
 * the cache lookups: about 10 ms of a no-op rebuild). Small builds, in a store of their own,
 * are run with GANTRY_CODE_CACHE_OUT, each loading the cache the one before wrote, so the last
 * holds the code of all: a FROM scratch image, an image on it, and the same again with every
 * step cached (as in a rebuild that changed nothing). If that fails, the start-up cache stays.
 */
const train = mkdtempSync(path.join(tmpdir(), 'gantry-bundle-'));
try {
  const context = (name, dockerfile) => {
    const dir = path.join(train, name);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    writeFileSync(path.join(dir, 'app'), 'app\n');
    return dir;
  };
  const base = context('base', 'FROM scratch\nCOPY app /bin/app\nENV PATH=/bin\n');
  const app = context('app', 'FROM gantry-train/base\nARG MODE=production\nCOPY app /srv/app\nENV MODE=$MODE\nWORKDIR /srv\nCMD ["/bin/app"]\n');
  const env = { ...process.env, GANTRY_TRASH_BUDGET: '0' };
  delete env.SOURCE_DATE_EPOCH;
  const trained = path.join(train, 'cli.cache');
  const run = (tag, dir) => {
    const args = [path.join(root, 'bin', 'gantry'), '--root', path.join(train, 'store'), 'build', '--progress', 'plain', '-t', tag, dir];
    execFileSync(process.execPath, args, { env: { ...env, GANTRY_CODE_CACHE_OUT: trained }, stdio: 'pipe' });
    renameSync(trained, cache);
  };
  run('gantry-train/base', base);
  run('gantry-train/app', app);
  run('gantry-train/app', app);
} catch (err) {
  writeFileSync(cache, script.createCachedData());
  console.warn(`bundle: the start-up code cache is kept; the trained one failed: ${err instanceof Error ? err.message : String(err)}`);
} finally {
  rmSync(train, { recursive: true, force: true });
}
