import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';

// The module arrows of docs/architecture.md, enforced: a module imports only what its
// row allows, the CLI goes through the public API, and the front end stays pure.

const src = path.join(projectRoot, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const re = /^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  const out: string[] = [];
  for (let m = re.exec(text); m; m = re.exec(text)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/** The top-level module a file belongs to: `dockerfile`, `plan`, `cli`, or `index` for src/index.ts. */
function moduleOf(file: string): string {
  const rel = path.relative(src, file);
  return rel.includes(path.sep) ? (rel.split(path.sep)[0] as string) : rel.replace(/\.ts$/, '');
}

// `support` is the runtime plumbing every module below the front end may use: the settings read
// from the environment, crash points, the trace, built-in modules loaded on first use.
const ALLOWED: Record<string, string[]> = {
  errors: [],
  support: ['errors'],
  tar: ['support', 'errors'],
  oci: ['errors'],
  dockerfile: ['errors'],
  plan: ['dockerfile', 'oci', 'errors'],
  image: ['oci', 'errors'],
  // The trees the builder makes are released through store/trash.ts: the store imports no rootfs/.
  store: ['image', 'oci', 'snapshot', 'tar', 'support', 'errors'],
  archive: ['image', 'store', 'oci', 'tar', 'support', 'errors'],
  registry: ['image', 'oci', 'support', 'errors'],
  rootfs: ['oci', 'tar', 'support', 'errors'],
  snapshot: ['rootfs', 'image', 'tar', 'support', 'errors'],
  sandbox: ['rootfs', 'support', 'errors'],
  // The worker of build() for a non-root caller: an entry point, like the CLI.
  'rootless-worker': ['index', 'rootless-protocol', 'errors'],
  'rootless-protocol': ['index', 'builder', 'registry', 'errors'],
  builder: ['errors', 'support', 'oci', 'dockerfile', 'plan', 'image', 'store', 'archive', 'registry', 'rootfs', 'snapshot', 'sandbox', 'tar'],
};

const IMPURE = /^(node:)?(fs|fs\/promises|child_process|net|http|https|http2|dgram|dns|tls|worker_threads)$|^(undici|execa|tar-stream)$/;

const all = files(src);

describe('architecture', () => {
  test('the source tree is where the test looks', () => {
    expect(all.length).toBeGreaterThan(10);
  });

  test.each(all.map((f) => [path.relative(projectRoot, f), f]))('%s imports only what its module may', (_rel, file) => {
    const mod = moduleOf(file);
    for (const spec of imports(file)) {
      if (!spec.startsWith('.')) continue;
      const target = moduleOf(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
      if (target === mod) continue;
      if (mod === 'cli') {
        expect(target, `${file} imports ${spec}: the CLI may use src/index.ts only`).toBe('index');
      } else if (mod !== 'index') {
        expect(ALLOWED[mod] ?? [], `${file} imports ${spec} (module ${target})`).toContain(target);
      }
    }
  });

  test.each(all.filter((f) => ['dockerfile', 'plan'].includes(moduleOf(f))).map((f) => [path.relative(projectRoot, f), f]))(
    '%s touches no file system, process or network',
    (_rel, file) => {
      for (const spec of imports(file)) expect(spec).not.toMatch(IMPURE);
    },
  );
});

describe('the fast tests', () => {
  const tests = path.join(projectRoot, 'test');
  const fast = ['unit', 'conformance'].flatMap((d) => files(path.join(tests, d)));
  // `npm run test:fast` runs these alone, in seconds: they start no process and need no tool
  // (a test that does belongs in test/integration).
  test.each(fast.map((f) => [path.relative(projectRoot, f), f]))('%s starts no process', (_rel, file) => {
    for (const spec of imports(file)) {
      expect(spec).not.toMatch(/^(node:)?child_process$|^execa$|helpers\/(gantry|tools|registry|oracle|debian|faults|rootfs)\.js$/);
    }
  });
});
