import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent, makeVictim } from '../helpers/hostile.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// `gantry fsck` on a damaged store (issue 6, point 17): a corrupted, truncated or missing
// blob, an index.json that is garbage or gone, files in blobs/ that are not blobs (a symlink
// to a victim among them), broken build-cache entries, a dead process's temp files, a
// missing oci-layout, a descriptor whose size lies. Each time fsck reports the damage (exit 1)
// and changes nothing; `fsck --repair` mends it (exit 0), a second fsck finds nothing, the
// store invariant holds, the victim is untouched, and what was lost can be made again.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-fsck-'));
const pristine = path.join(work, 'pristine');
const gantry = (store: string, args: string[]) => execa(bin, ['--root', store, ...args], { reject: false });
let tarA: string;
let ctx: string;

interface Problem {
  kind: string;
  subject: string;
  detail: string;
  repaired?: string;
}

async function fsck(store: string, repair = false): Promise<{ exitCode: number; problems: Problem[]; out: string }> {
  const r = await gantry(store, ['fsck', '--json', ...(repair ? ['--repair'] : [])]);
  expect(r.stderr).toBe('');
  return { exitCode: r.exitCode ?? -1, problems: (JSON.parse(r.stdout) as { problems: Problem[] }).problems, out: r.stdout };
}

/** Every file under `dir` with its content hash (links as their target): what "nothing changed" compares. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else out.push(`${r} ${st.isSymbolicLink() ? 'link' : createHash('sha256').update(readFileSync(path.join(dir, r))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

const index = (store: string) => JSON.parse(readFileSync(path.join(store, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number; annotations?: Record<string, string> }[] };
const blob = (store: string, digest: string) => path.join(store, 'blobs', 'sha256', digest.slice(7));
const manifestOf = (store: string, name: string) => {
  const d = index(store).manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === `docker.io/library/${name}`);
  if (!d) throw new Error(`no ${name}`);
  return { descriptor: d, manifest: JSON.parse(readFileSync(blob(store, d.digest), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] } };
};

let n = 0;
/** A copy of the pristine store (a:1, b:1 imported, app:1 built from a:1), with a victim beside it. */
function damaged(): { store: string; victim: ReturnType<typeof makeVictim> } {
  const dir = path.join(work, `case${++n}`);
  mkdirSync(dir);
  const store = path.join(dir, 'store');
  execFileSync('cp', ['-a', pristine, store]);
  return { store, victim: makeVictim(path.join(dir, 'victim')) };
}

/** Report, change nothing; repair; find nothing; hold the invariant. Returns the two reports. */
async function checkAndRepair(store: string, expected: { kind: string; subject?: RegExp }[]) {
  const before = listing(store);
  const report = await fsck(store);
  expect(report.exitCode, report.out).toBe(1);
  for (const e of expected) expect(report.problems.some((p) => p.kind === e.kind && (!e.subject || e.subject.test(p.subject))), `${e.kind} ${e.subject ?? ''} in ${report.out}`).toBe(true);
  expect(listing(store), 'fsck without --repair changed the store').toEqual(before);
  const repaired = await fsck(store, true);
  expect(repaired.exitCode, repaired.out).toBe(0);
  expect(repaired.problems.every((p) => p.repaired !== undefined), repaired.out).toBe(true);
  const again = await fsck(store);
  expect(again.exitCode, again.out).toBe(0);
  expect(again.problems).toEqual([]);
  expectStoreConsistent(store);
  return { report, repaired };
}

beforeAll(async () => {
  const a = makeBusyboxRootfs(path.join(work, 'a'));
  writeFileSync(path.join(a, 'etc', 'which'), 'a\n');
  tarA = tarDir(a, path.join(work, 'a.tar'));
  const b = makeBusyboxRootfs(path.join(work, 'b'));
  writeFileSync(path.join(b, 'etc', 'which'), 'b\n');
  const tarB = tarDir(b, path.join(work, 'b.tar'));
  ctx = writeTree(path.join(work, 'ctx'), { Dockerfile: 'FROM a:1\nRUN echo built > /built\n' });
  for (const args of [['import', tarA, 'a:1'], ['import', tarB, 'b:1'], ['build', '-t', 'app:1', ctx]]) {
    const r = await gantry(pristine, args);
    expect(r.exitCode, r.stderr).toBe(0);
  }
  const clean = await fsck(pristine);
  expect(clean.exitCode, clean.out).toBe(0);
  expect(clean.problems).toEqual([]);
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('gantry fsck on a damaged store', () => {
  test('a flipped byte in a layer: the blob goes, the images that need it leave the index, the others stay; import brings it back', async () => {
    const { store, victim } = damaged();
    const { manifest } = manifestOf(store, 'a:1');
    const layer = blob(store, (manifest.layers[0] as { digest: string }).digest);
    const bytes = readFileSync(layer);
    bytes[100] = (bytes[100] as number) ^ 0xff;
    writeFileSync(layer, bytes);
    const { repaired } = await checkAndRepair(store, [{ kind: 'blob-corrupt' }, { kind: 'image-incomplete', subject: /a:1$/ }, { kind: 'image-incomplete', subject: /app:1$/ }]);
    expect(repaired.problems.find((p) => p.kind === 'image-incomplete')?.repaired).toMatch(/pull or build .* again/);
    const names = index(store).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']);
    expect(names).toEqual(['docker.io/library/b:1']);
    victim.unchanged();
    expect((await gantry(store, ['import', tarA, 'a:1'])).exitCode).toBe(0);
    const rebuilt = await gantry(store, ['build', '-t', 'app:1', ctx]);
    expect(rebuilt.exitCode, rebuilt.stderr).toBe(0);
    expectStoreConsistent(store);
  });

  test('a truncated manifest and a deleted config are both found', async () => {
    const { store } = damaged();
    const a = manifestOf(store, 'a:1');
    truncateSync(blob(store, a.descriptor.digest), 10);
    rmSync(blob(store, manifestOf(store, 'b:1').manifest.config.digest));
    await checkAndRepair(store, [{ kind: 'blob-corrupt', subject: new RegExp(a.descriptor.digest) }, { kind: 'image-incomplete', subject: /a:1$/ }, { kind: 'image-incomplete', subject: /b:1$/ }]);
    expect(index(store).manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual(['docker.io/library/app:1']);
  });

  test('a descriptor whose size lies is an incomplete image', async () => {
    const { store } = damaged();
    const ix = index(store);
    (ix.manifests[0] as { size: number }).size += 1;
    writeFileSync(path.join(store, 'index.json'), JSON.stringify(ix));
    await checkAndRepair(store, [{ kind: 'image-incomplete', subject: /a:1$/ }]);
  });

  test('an index.json that is garbage: rebuilt from the manifests among the blobs, the broken file kept; the images can be named again', async () => {
    const { store } = damaged();
    const id = manifestOf(store, 'b:1').manifest.config.digest;
    writeFileSync(path.join(store, 'index.json'), '{"schemaVersion": 2, "manif');
    const { repaired } = await checkAndRepair(store, [{ kind: 'index' }]);
    expect(repaired.problems[0]?.repaired).toMatch(/rebuilt with 3 untagged image\(s\)/);
    expect(readdirSync(store).some((f) => f.startsWith('index.json.broken-'))).toBe(true);
    expect(index(store).manifests).toHaveLength(3);
    const tag = await gantry(store, ['tag', id.slice(7, 19), 'b:again']);
    expect(tag.exitCode, tag.stderr).toBe(0);
    expect((await gantry(store, ['inspect', 'b:again'])).exitCode).toBe(0);
  });

  test('a missing index.json is rebuilt even by a plain fsck (opening the store would leave an empty one)', async () => {
    const { store } = damaged();
    rmSync(path.join(store, 'index.json'));
    const r = await fsck(store);
    expect(r.problems).toEqual([expect.objectContaining({ kind: 'index', detail: 'missing' })]);
    expect(r.exitCode).toBe(0);
    expect(index(store).manifests).toHaveLength(3);
    expectStoreConsistent(store);
  });

  test('files in blobs/ that are not blobs, a symlink to a victim among them: removed, the victim untouched', async () => {
    const { store, victim } = damaged();
    const dir = path.join(store, 'blobs', 'sha256');
    writeFileSync(path.join(dir, 'not-a-digest'), 'x');
    symlinkSync(path.join(victim.dir, 'secret'), path.join(dir, 'a'.repeat(64)));
    mkdirSync(path.join(dir, 'b'.repeat(64)));
    mkdirSync(path.join(store, 'blobs', 'md5'));
    await checkAndRepair(store, [
      { kind: 'blob-stray', subject: /not-a-digest$/ },
      { kind: 'blob-stray', subject: /a{64}$/ },
      { kind: 'blob-stray', subject: /b{64}$/ },
      { kind: 'blob-stray', subject: /md5$/ },
    ]);
    victim.unchanged();
    expect(index(store).manifests).toHaveLength(3);
  });

  test('broken build-cache entries go, and the build runs its step again', async () => {
    const { store } = damaged();
    const cache = path.join(store, 'cache');
    const [entry] = readdirSync(cache);
    const e = JSON.parse(readFileSync(path.join(cache, entry as string), 'utf8')) as { layer: { digest: string } };
    writeFileSync(path.join(cache, entry as string), JSON.stringify({ ...e, layer: { ...e.layer, digest: `sha256:${'c'.repeat(64)}` } }));
    writeFileSync(path.join(cache, `${'d'.repeat(64)}.json`), '{not json');
    await checkAndRepair(store, [{ kind: 'cache-entry', subject: new RegExp(entry as string) }, { kind: 'cache-entry', subject: /d{64}\.json$/ }]);
    const r = await gantry(store, ['build', '--progress', 'plain', '-t', 'app:2', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/CACHED/);
  });

  test("a dead process's temp files and a missing oci-layout are reported and mended", async () => {
    const { store } = damaged();
    const dead = execFileSync('sh', ['-c', 'echo $$']).toString().trim(); // a pid that has ended
    mkdirSync(path.join(store, 'tmp', `rootfs-${dead}-0123456789abcdef`, 'etc'), { recursive: true });
    rmSync(path.join(store, 'oci-layout'));
    const r = await fsck(store);
    expect(r.problems.map((p) => p.kind).sort()).toEqual(['layout', 'temp']);
    expect(r.problems.every((p) => p.repaired !== undefined)).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    expect(existsSync(path.join(store, 'oci-layout'))).toBe(true);
    expectStoreConsistent(store);
  });

  test('the human output names each problem and what to run', async () => {
    const { store } = damaged();
    rmSync(blob(store, manifestOf(store, 'b:1').manifest.config.digest));
    const r = await gantry(store, ['fsck']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/image-incomplete docker\.io\/library\/b:1: missing sha256:[0-9a-f]{64}/);
    expect(r.stdout).toMatch(/run gantry fsck --repair/);
  });
});
