/**
 * How a reader would walk a command through the code: `npm run walk` runs
 * `gantry build --push` (a small FROM scratch build, pushed to a docker-registry on a loopback
 * port) from the compiled modules one by one (dist/, not the bundle), under V8's sampling
 * profiler at a 10 µs interval, and reads the samples in order: for each, the innermost frame
 * in gantry's own code names a source file (samples in a module's top-level code, its loading,
 * are left out). It prints how many files the command visits and
 * how many times it returns to a file it had left (issue 23's measure of back and forth).
 *
 * Sampled, not traced: a function that runs for less than the interval can be missed, so two
 * runs differ by a few; compare medians of several runs (`--runs N`, default 5).
 *
 *   npm run walk -- [--runs N] [--dist DIR]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry } from '../test/helpers/registry.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const runs = Number(arg('runs', '5'));
const dist = path.resolve(arg('dist', path.join(projectRoot, 'dist')));

interface ProfileNode {
  id: number;
  callFrame: { url: string; functionName: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
}

/** The source file of each sample's innermost frame in `dist`, consecutive repeats folded. */
function walkOf(profile: Profile): string[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const prefix = `file://${dist}/`;
  const fileOf = new Map<number, string | undefined>();
  const own = (id: number): string | undefined => {
    if (fileOf.has(id)) return fileOf.get(id);
    const frame = byId.get(id)?.callFrame;
    const url = frame?.url ?? '';
    const p = parent.get(id);
    // A module's top-level code (line 0, column 0) is its loading, not the command's path.
    const loading = frame?.lineNumber === 0 && frame.columnNumber === 0;
    const found = url.startsWith(prefix) ? (loading ? undefined : url.slice(prefix.length).replace(/\.js$/, '.ts')) : p !== undefined ? own(p) : undefined;
    fileOf.set(id, found);
    return found;
  };
  const out: string[] = [];
  for (const s of profile.samples) {
    const f = own(s);
    if (f && out[out.length - 1] !== f) out.push(f);
  }
  return out;
}

async function main(): Promise<void> {
  const registry = await startRegistry();
  if (!registry) throw new Error('docker-registry is missing: apt-get install docker-registry');
  const work = mkdtempSync(path.join(tmpdir(), 'gantry-walk-'));
  try {
    const context = path.join(work, 'ctx');
    mkdirSync(context);
    writeFileSync(path.join(context, 'hello.txt'), 'hello\n');
    writeFileSync(path.join(context, 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\nENV A=1\nCMD ["/hello"]\n');
    const results: { files: number; returns: number }[] = [];
    for (let i = 0; i < runs; i++) {
      const profiles = path.join(work, `prof-${i}`);
      const entry = `import(${JSON.stringify(path.join(dist, 'cli', 'main.js'))}).then((m) => m.main(process.argv.slice(1)))`;
      execFileSync(
        process.execPath,
        ['--cpu-prof', '--cpu-prof-interval', '10', '--cpu-prof-dir', profiles, '--input-type=module', '-e', entry, 'build', '--root', path.join(work, `store-${i}`), '--insecure-registry', registry.host, '-t', `${registry.host}/walk/app:${i}`, '--push', '--progress', 'plain', context],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      const file = readdirSync(profiles).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error('no profile was written');
      const walk = walkOf(JSON.parse(readFileSync(path.join(profiles, file), 'utf8')) as Profile);
      const seen = new Set<string>();
      let returns = 0;
      for (const f of walk) {
        if (seen.has(f)) returns++;
        seen.add(f);
      }
      results.push({ files: seen.size, returns });
      if (process.env.WALK_DETAIL) {
        const back = new Map<string, number>();
        const seen2 = new Set<string>();
        for (const f of walk) {
          if (seen2.has(f)) back.set(f, (back.get(f) ?? 0) + 1);
          seen2.add(f);
        }
        console.log([...back].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([f, n]) => `${n} ${f}`).join('\n'));
      }
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    console.log(`gantry build --push (${dist}), ${runs} runs: files visited ${median(results.map((r) => r.files))} (${results.map((r) => r.files).join(', ')}), returns to a file left ${median(results.map((r) => r.returns))} (${results.map((r) => r.returns).join(', ')})`);
  } finally {
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
