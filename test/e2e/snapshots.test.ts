import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { makeFatRootfs, mountsUnder } from '../helpers/faults.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent } from '../helpers/hostile.js';
import { haveTool } from '../helpers/tools.js';
import { tarDir } from '../helpers/rootfs.js';

// Step snapshots (src/workspace/snapshots.ts, issue 22): each filesystem step's result is kept
// as a directory later steps and later builds mount as an overlay lower directory. What is
// checked: a cache hit unpacks nothing (counted by the build itself, GANTRY_STATS_OUT); a
// stage FROM an earlier one and COPY --from mount that one's snapshot; the image is the same,
// byte for byte, as the one built by unpacking into plain directories (GANTRY_OVERLAY=0); a
// snapshot made by another run of a step is never used for layers it does not hold; the
// store's budget collects snapshots, never one a build is using.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-snapshots-'));
const root = process.getuid?.() === 0;
let fatTar: string;

interface Stats {
  layersApplied: number;
  chainsExtracted: number;
  snapshotsMounted: number;
  snapshotsCommitted: number;
  walks: number;
  kernelCalls: number;
  layersWritten: number;
  keptOnly: number;
  snapshotsLookedUp: number;
}

async function build(store: string, args: string[], env: Record<string, string> = {}): Promise<{ stats: Stats; stderr: string }> {
  const statsFile = path.join(work, `stats-${Date.now()}-${Math.random()}.json`);
  const r = await execa(bin, ['--root', store, 'build', '--progress', 'plain', '--source-date-epoch', '1700000000', ...args], {
    reject: false,
    env: { GANTRY_STATS_OUT: statsFile, ...env },
  });
  expect(r.exitCode, r.stderr).toBe(0);
  const stats = JSON.parse(readFileSync(statsFile, 'utf8')) as Stats;
  rmSync(statsFile);
  return { stats, stderr: r.stderr };
}

const imageId = async (store: string, name: string): Promise<string> => {
  const r = await execa(bin, ['--root', store, 'inspect', name], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
  return (JSON.parse(r.stdout)[0] as { Id: string }).Id;
};

const importFat = async (store: string): Promise<void> => {
  const r = await execa(bin, ['--root', store, 'import', fatTar, 'fat:1'], { reject: false });
  expect(r.exitCode, r.stderr).toBe(0);
};

// Three stages of a real project's shape: a "toolchain" stage that changes the base, a build
// stage FROM it that copies the sources, and a final stage that copies the result.
const multistage = [
  'FROM fat:1 AS toolchain',
  'RUN mkdir -p /opt/tool && cp -a /data /opt/tool/data && rm -rf /data/text && echo tool > /opt/tool/v',
  'RUN chmod 700 /opt/tool/data && echo second > /opt/tool/second',
  'FROM toolchain AS build',
  'WORKDIR /code',
  'COPY src/ /code/',
  'RUN cat /code/* > /code/all && ls /opt/tool/data | wc -l > /code/count',
  'FROM fat:1',
  'COPY --from=build /code/all /code/count /out/',
  'RUN cat /out/all > /final',
].join('\n');

beforeAll(() => {
  if (!root) {
    if (process.env.CI === 'true') throw new Error('the snapshot tests mount overlayfs and need root');
    return;
  }
  fatTar = tarDir(makeFatRootfs(path.join(work, 'fat'), { random: 20, small: 200, seed: 'snapshots' }), path.join(work, 'fat.tar'), '');
});
afterAll(() => (process.env.GANTRY_KEEP_TEST ? console.log(`kept ${work}`) : rmSync(work, { recursive: true, force: true })));

describe.skipIf(!root && process.env.CI !== 'true')('step snapshots', () => {
  test('a one-file edit of a three-stage build unpacks no layer; the images equal those built on plain directories', async () => {
    const store = path.join(work, 'edit');
    const plain = path.join(work, 'edit-plain');
    await importFat(store);
    await execa('cp', ['-a', store, plain]); // the same fat:1 (an import dates its history)
    const ctx = writeTree(path.join(work, 'ctx-edit'), { Dockerfile: multistage, 'src/a.txt': 'a\n', 'src/b.txt': 'b1\n' });

    const cold = await build(store, ['-t', 'app:1', ctx]);
    // Every filesystem step of the three stages kept its result.
    expect(cold.stats.snapshotsCommitted).toBe(7);
    // Only the final stage's two steps made a layer: the toolchain and build stages' five steps
    // are only read by COPY --from, their changes kept only as snapshots.
    expect(cold.stats).toMatchObject({ layersWritten: 2, keptOnly: 5 });
    // One chain (fat:1) extracted; only the base's layer unpacked, nothing else.
    expect(cold.stats).toMatchObject({ chainsExtracted: 1, layersApplied: 1 });
    await build(plain, ['-t', 'app:1', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'app:1')).toBe(await imageId(plain, 'app:1'));

    writeFileSync(path.join(ctx, 'src', 'b.txt'), 'b2\n');
    const edit = await build(store, ['-t', 'app:2', ctx]);
    // The toolchain stage's steps are hits: the build stage mounts their snapshots, unpacks nothing.
    expect(edit.stats).toMatchObject({ layersApplied: 0, chainsExtracted: 0 });
    expect(edit.stats.snapshotsMounted).toBeGreaterThan(0);
    expect(edit.stats.walks).toBe(0); // each "before" came from a kept index, not a walk
    await build(plain, ['-t', 'app:2', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'app:2')).toBe(await imageId(plain, 'app:2'));

    // Nothing changed: every step a hit, nothing mounted, no snapshot even looked up (only the
    // final stage's steps made layers: the other stages' hits need their snapshots).
    const warmStart = Date.now() - 1000; // the file system's times may be coarser than Date.now
    const warm = await build(store, ['-t', 'app:3', ctx]);
    expect(warm.stats).toMatchObject({ layersApplied: 0, chainsExtracted: 0, snapshotsMounted: 0, snapshotsCommitted: 0, snapshotsLookedUp: 5 });
    // Every snapshot the build stands on is marked used, parents too (collection takes a
    // snapshot along with a parent that aged out): the final stage's two, never looked up, as well.
    const used = readdirSync(path.join(store, 'snapshots')).filter((id) => statSync(path.join(store, 'snapshots', id, 'meta.json')).mtimeMs >= warmStart);
    expect(used.length).toBeGreaterThanOrEqual(7);
    expect(await imageId(store, 'app:3')).toBe(await imageId(store, 'app:2'));
    expect(mountsUnder(work)).toEqual([]);
    expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    expectStoreConsistent(store);
    expectStoreConsistent(plain);
  }, 180_000);

  test('a stage only read by COPY --from makes no layer; asked for as the target, or with its snapshots collected, its steps run again', async () => {
    const store = path.join(work, 'kept');
    const plain = path.join(work, 'kept-plain');
    await importFat(store);
    await execa('cp', ['-a', store, plain]);
    const ctx = writeTree(path.join(work, 'ctx-kept'), { Dockerfile: multistage, 'src/a.txt': 'a\n', 'src/b.txt': 'b\n' });
    const blobs = () => readdirSync(path.join(store, 'blobs', 'sha256')).length;

    const before = blobs();
    const cold = await build(store, ['-t', 'app:1', ctx]);
    expect(cold.stats).toMatchObject({ layersWritten: 2, keptOnly: 5 });
    // Two layers, the config and the manifest: nothing for the stages that stay in the build.
    expect(blobs() - before).toBe(4);

    // The build stage as the target: its layers leave, so its steps (kept only as snapshots)
    // run again and make them; the image equals the one built on plain directories.
    const target = await build(store, ['--target', 'build', '-t', 'build:1', ctx]);
    expect(target.stats).toMatchObject({ layersWritten: 5, keptOnly: 0 });
    await build(plain, ['--target', 'build', '-t', 'build:1', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'build:1')).toBe(await imageId(plain, 'build:1'));
    const again = await build(store, ['--target', 'build', '-t', 'build:2', ctx]);
    expect(again.stats).toMatchObject({ layersWritten: 0, keptOnly: 0, snapshotsCommitted: 0 });

    // A rebuild of the whole finds the layers those steps made: their stages are hits, and the
    // final stage's COPY --from, whose first key names the layers it reads, is a hit by the
    // content it copies (the same files), and so the RUN after it: nothing runs.
    const whole = await build(store, ['-t', 'app:2', ctx]);
    expect(whole.stats).toMatchObject({ layersWritten: 0, keptOnly: 0, layersApplied: 0 });
    expect(await imageId(store, 'app:2')).toBe(await imageId(store, 'app:1'));

    // With every snapshot collected (a budget of one byte, by a build that runs a step), a step
    // kept only as a snapshot is a miss: it runs again. The image is the same.
    writeFileSync(path.join(ctx, 'src', 'b.txt'), 'b2\n');
    await build(store, ['-t', 'app:3', ctx]);
    const other = writeTree(path.join(work, 'ctx-kept-other'), { Dockerfile: 'FROM fat:1\nRUN echo other > /other\n' });
    await build(store, ['-t', 'other:1', other], { GANTRY_STORE_BUDGET: '1' });
    expect(readdirSync(path.join(store, 'snapshots'))).toHaveLength(1); // that build's own RUN, leased while it ran
    const rerun = await build(store, ['-t', 'app:4', ctx]);
    // The build stage's COPY and RUN (run again after the edit, kept only as snapshots); its WORKDIR
    // and the toolchain's steps have the layers --target made, unpacked now; the final stage's
    // steps are hits by the content its COPY --from reads, the same files.
    expect(rerun.stats).toMatchObject({ keptOnly: 2, layersWritten: 0 });
    expect(rerun.stats.layersApplied).toBeGreaterThan(0);
    expect(await imageId(store, 'app:4')).toBe(await imageId(store, 'app:3'));
    await build(plain, ['-t', 'app:4', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'app:4')).toBe(await imageId(plain, 'app:4'));
    expect(mountsUnder(work)).toEqual([]);
    expectStoreConsistent(store);
  }, 240_000);

  test('mount, umount and getfattr made by the kernel helper or started as tools give the same image; a capability moved by a RUN is kept', async () => {
    haveTool('setcap');
    haveTool('getcap');
    const helper = path.join(work, 'kernel');
    const tools = path.join(work, 'kernel-tools');
    await importFat(helper);
    await execa('cp', ['-a', helper, tools]);
    const ctx = writeTree(path.join(work, 'ctx-kernel'), {
      Dockerfile: ['FROM fat:1', 'COPY tool /tool', 'RUN mv /tool /tool2 && echo x > /x', 'RUN rm /x && echo y > /y'].join('\n'),
    });
    writeFileSync(path.join(ctx, 'tool'), readFileSync('/bin/true'), { mode: 0o755 });
    await execa('setcap', ['cap_net_raw+ep', path.join(ctx, 'tool')]);
    const withHelper = await build(helper, ['-t', 'caps:1', ctx]);
    expect(withHelper.stats.kernelCalls).toBeGreaterThan(0);
    const withTools = await build(tools, ['-t', 'caps:1', ctx], { GANTRY_KERNEL_HELPER: '0' });
    expect(withTools.stats.kernelCalls).toBe(0);
    expect(await imageId(helper, 'caps:1')).toBe(await imageId(tools, 'caps:1'));
    // The RUN's layer has the renamed file with its capability (read from the overlay).
    const out = path.join(work, 'kernel-out');
    const r = await execa(bin, ['--root', helper, 'build', '-o', `type=local,dest=${out}`, ctx], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await execa('getcap', [path.join(out, 'tool2')])).stdout).toMatch(/cap_net_raw=ep$/);
    expect(mountsUnder(work)).toEqual([]);
    expectStoreConsistent(helper);
    expectStoreConsistent(tools);
  }, 180_000);

  test('30 RUNs stack 30 snapshots; an edit at the 25th mounts the 24 below it', async () => {
    const store = path.join(work, 'deep');
    await importFat(store);
    const plain = path.join(work, 'deep-plain');
    await execa('cp', ['-a', store, plain]);
    const runs = (n: number, edit: string) =>
      ['FROM fat:1', ...Array.from({ length: 30 }, (_, i) => (i === 24 ? `RUN echo ${edit} > /f${i}` : `RUN echo ${i} > /f${i} && rm -f /data/r${i % 20}`))].join('\n');
    const ctx = writeTree(path.join(work, 'ctx-deep'), { Dockerfile: runs(30, 'one') });
    const cold = await build(store, ['-t', 'deep:1', ctx]);
    expect(cold.stats.snapshotsCommitted).toBe(30);
    writeFileSync(path.join(ctx, 'Dockerfile'), runs(30, 'two'));
    const edit = await build(store, ['-t', 'deep:2', ctx]);
    // The 24 hits are looked up once, newest first, when the 25th step needs its rootfs: one lookup.
    expect(edit.stats).toMatchObject({ layersApplied: 0, chainsExtracted: 0, walks: 0, snapshotsCommitted: 6, snapshotsLookedUp: 1 });
    await build(plain, ['-t', 'deep:2', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'deep:2')).toBe(await imageId(plain, 'deep:2'));
    expectStoreConsistent(store);
  }, 240_000);

  test("a snapshot's index is kept as its change to the view below; one that is lost is walked once and kept whole again", async () => {
    const store = path.join(work, 'index');
    await importFat(store);
    const lines = (edit: string) => ['FROM fat:1', 'RUN mkdir -p /a/b && echo 1 > /a/b/one && rm -rf /data/text', 'RUN rm -rf /a/b && echo 2 > /a/two', `RUN echo ${edit} > /e`].join('\n');
    const ctx = writeTree(path.join(work, 'ctx-index'), { Dockerfile: lines('one') });
    await build(store, ['-t', 'ix:1', ctx]);
    const ids = readdirSync(path.join(store, 'snapshots'));
    expect(ids).toHaveLength(3);
    // Each index file is what its step changed, not the whole view: under half the base's own index.
    const baseIndex = readdirSync(path.join(store, 'cache')).filter((f) => /^snapshot-.*\.bin$/.test(f));
    expect(baseIndex).toHaveLength(1);
    const whole = statSync(path.join(store, 'cache', baseIndex[0] as string)).size;
    for (const id of ids) expect(statSync(path.join(store, 'snapshots', id, 'index.bin')).size).toBeLessThan(whole / 2);
    const plain = path.join(work, 'index-plain');
    await execa('cp', ['-a', store, plain]);
    writeFileSync(path.join(ctx, 'Dockerfile'), lines('two'));
    const edit = await build(store, ['-t', 'ix:2', ctx]);
    expect(edit.stats).toMatchObject({ walks: 0, layersApplied: 0 }); // the view's index composed from the changes
    // The same edit where the index under it is lost: walked once, and kept whole for the next build.
    const second = ids.find((id) => (JSON.parse(readFileSync(path.join(plain, 'snapshots', id, 'meta.json'), 'utf8')) as { layers: number }).layers === 3) as string;
    expect(second).toBeDefined();
    rmSync(path.join(plain, 'snapshots', second, 'index.bin'));
    const walked = await build(plain, ['-t', 'ix:2', ctx]);
    expect(walked.stats.walks).toBe(1);
    expect(await imageId(plain, 'ix:2')).toBe(await imageId(store, 'ix:2'));
    writeFileSync(path.join(ctx, 'Dockerfile'), lines('three'));
    const again = await build(plain, ['-t', 'ix:3', ctx]);
    expect(again.stats.walks).toBe(0);
    expectStoreConsistent(plain);
  }, 120_000);

  test('the index composed from the snapshots\' changes equals a walk of their stack mounted again: renames, hard links to lower files, opaque and replaced directories', async () => {
    const store = path.join(work, 'composed');
    await importFat(store);
    const plain = path.join(work, 'composed-plain');
    await execa('cp', ['-a', store, plain]);
    const steps = [
      // a lower file renamed and one hard-linked (both copy-ups: the merged view shows the origin's inode)
      'mv /data/r1 /data/r1-moved && ln /data/r2 /data/r2-link && mkdir -p /n/a/b && echo 1 > /n/a/b/f',
      // a lower directory emptied and made again (opaque), a directory of the step before replaced by a file
      'rm -rf /data/text && mkdir /data/text && echo t > /data/text/only && rm -rf /n/a && echo file > /n/a',
      // what the steps before made: renamed, linked, removed; a file becomes a directory. (Not
      // a link of a lower step removed: its other name's link count drops in a plain tree but
      // not in the lower directory an overlay shows, as with BuildKit's snapshots.)
      'mv /data/r1-moved /data/r1-again && ln /data/r1-again /r1-link2 && rm /data/r3 && rm /n/a && mkdir -p /n/a/c && echo c > /n/a/c/g',
      'chmod 700 /data && chown 7:7 /n && echo e > /e',
    ];
    const ctx = writeTree(path.join(work, 'ctx-composed'), { Dockerfile: ['FROM fat:1', ...steps.map((c) => `RUN ${c}`)].join('\n') });
    await build(store, ['-t', 'co:1', ctx]);
    await build(plain, ['-t', 'co:1', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'co:1')).toBe(await imageId(plain, 'co:1'));
    const { Store } = await import('../../src/store/store.js');
    const { Snapshots } = await import('../../src/store/snapshots.js');
    const { mountOverlay, unmount } = await import('../../src/rootfs/overlay.js');
    const { snapshot } = await import('../../src/snapshot/diff.js');
    const st = await Store.open(store);
    const snaps = new Snapshots(st);
    const metas = snaps.list().filter((x) => x.meta);
    expect(metas).toHaveLength(steps.length);
    for (const { id, meta } of metas) {
      const composed = await snaps.index(id);
      expect(composed, id).toBeDefined();
      const dir = mkdtempSync(path.join(work, 'remount-'));
      const merged = await mountOverlay(snaps.lowers({ snapshots: [id, ...meta!.parents], covered: meta!.layers }, meta!.base), dir, store);
      // A merged directory's link count is 1 (overlayfs does not count a merged directory's
      // subdirectories); the index keeps the real one, which nothing compares.
      const dirLinks = (m: Map<string, { type: string; nlink: number }>) => new Map([...m].map(([p, e]) => [p, e.type === 'directory' ? { ...e, nlink: 0 } : e]));
      try {
        expect(dirLinks(composed!), `snapshot of ${meta!.layers} layers`).toEqual(dirLinks(await snapshot(merged as string)));
      } finally {
        await unmount(merged as string);
      }
    }
    // And an edit on top of them, from the composed index, gives the plain build's image.
    writeFileSync(path.join(ctx, 'Dockerfile'), ['FROM fat:1', ...steps.map((c) => `RUN ${c}`), 'RUN echo edit > /edit && rm /data/r4 && mv /data/r5 /r5-moved'].join('\n'));
    const edit = await build(store, ['-t', 'co:2', ctx]);
    expect(edit.stats.walks).toBe(0);
    await build(plain, ['-t', 'co:2', ctx], { GANTRY_OVERLAY: '0' });
    expect(await imageId(store, 'co:2')).toBe(await imageId(plain, 'co:2'));
  }, 180_000);

  test('a step run again with --no-cache makes other content: its old snapshot is not used for the new layer', async () => {
    const store = path.join(work, 'stale');
    await importFat(store);
    const ctx = writeTree(path.join(work, 'ctx-stale'), {
      Dockerfile: ['FROM fat:1', 'RUN head -c 32 /dev/urandom | od -x > /r', 'ARG V', 'RUN cp /r /copy-$V'].join('\n'),
    });
    await build(store, ['--build-arg', 'V=1', '-t', 's:1', ctx]);
    await build(store, ['--no-cache', '--build-arg', 'V=1', '-t', 's:2', ctx]);
    // The cache now names the second run's layer for the first RUN: the snapshot mounted is the
    // second run's (each run's is its own), never the first's.
    expect(readdirSync(path.join(store, 'snapshots'))).toHaveLength(4);
    const out = path.join(work, 'stale-out');
    const third = await build(store, ['--build-arg', 'V=2', '-o', `type=local,dest=${out}`, ctx]);
    expect(third.stats).toMatchObject({ layersApplied: 0, snapshotsMounted: 1 });
    expect(readFileSync(path.join(out, 'copy-2'), 'utf8')).toBe(readFileSync(path.join(out, 'r'), 'utf8'));
    // Without the second run's snapshot the cached layer is unpacked: the first run's is still not used.
    const second = readdirSync(path.join(store, 'snapshots')).filter((id) => {
      const m = JSON.parse(readFileSync(path.join(store, 'snapshots', id, 'meta.json'), 'utf8')) as { layers: number; bytes: number };
      return m.layers === 2;
    });
    expect(second).toHaveLength(2);
    const newest = second.sort((a, b) => statSync(path.join(store, 'snapshots', b, 'meta.json')).mtimeMs - statSync(path.join(store, 'snapshots', a, 'meta.json')).mtimeMs)[0] as string;
    rmSync(path.join(store, 'snapshots', newest), { recursive: true });
    const out4 = path.join(work, 'stale-out4');
    const fourth = await build(store, ['--build-arg', 'V=3', '-o', `type=local,dest=${out4}`, ctx]);
    expect(fourth.stats.layersApplied).toBe(1);
    expect(readFileSync(path.join(out4, 'copy-3'), 'utf8')).toBe(readFileSync(path.join(out, 'r'), 'utf8'));
    expectStoreConsistent(store);
  }, 120_000);

  test('the budget collects the least recently used snapshots, never those a build is using; prune --all removes the rest', async () => {
    const store = path.join(work, 'budget');
    await importFat(store);
    const a = writeTree(path.join(work, 'ctx-a'), { Dockerfile: 'FROM fat:1\nRUN echo a > /a\nRUN echo a2 > /a2\n' });
    const b = writeTree(path.join(work, 'ctx-b'), { Dockerfile: 'FROM fat:1\nRUN echo b > /b\n' });
    await build(store, ['-t', 'a:1', a]);
    expect(readdirSync(path.join(store, 'snapshots'))).toHaveLength(2);
    // A budget of one byte: what b's build uses stays, a's go.
    await build(store, ['-t', 'b:1', b], { GANTRY_STORE_BUDGET: '1' });
    const left = readdirSync(path.join(store, 'snapshots'));
    expect(left).toHaveLength(1);
    expect(JSON.parse(readFileSync(path.join(store, 'snapshots', left[0] as string, 'meta.json'), 'utf8')).layers).toBe(2);
    expectStoreConsistent(store);
    // a's build runs again from its cache: its layers are unpacked (its snapshots are gone), and kept again.
    const again = await build(store, ['-t', 'a:2', a]);
    expect(again.stats.layersApplied).toBe(0); // all hits, nothing needed a rootfs
    expect(await imageId(store, 'a:2')).toBe(await imageId(store, 'a:1'));
    // A bad budget is refused before the build starts, naming the variable.
    const bad = await execa(bin, ['--root', store, 'build', a], { reject: false, env: { GANTRY_STORE_BUDGET: 'lots' } });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toContain('GANTRY_STORE_BUDGET');
    expect((await execa(bin, ['--root', store, 'prune', '--all'], { reject: false })).exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'snapshots'))).toEqual([]);
    expectStoreConsistent(store);
  }, 120_000);

  test('fsck finds a damaged snapshot (its parent gone) and --repair removes it with its children; the build unpacks instead', async () => {
    const store = path.join(work, 'fsck');
    await importFat(store);
    const ctx = writeTree(path.join(work, 'ctx-fsck'), { Dockerfile: 'FROM fat:1\nRUN echo 1 > /one\nRUN echo 2 > /two\nARG V\nRUN echo $V > /v\n' });
    await build(store, ['--build-arg', 'V=1', '-t', 'f:1', ctx]);
    const ids = readdirSync(path.join(store, 'snapshots'));
    const meta = (id: string) => JSON.parse(readFileSync(path.join(store, 'snapshots', id, 'meta.json'), 'utf8')) as { parents: string[]; layers: number };
    const bottom = ids.find((id) => meta(id).parents.length === 0) as string;
    rmSync(path.join(store, 'snapshots', bottom), { recursive: true });
    const check = await execa(bin, ['--root', store, 'fsck'], { reject: false });
    expect(check.exitCode).not.toBe(0);
    expect(check.stdout + check.stderr).toMatch(/snapshots\/[0-9a-f]{24}.*parent/);
    const repair = await execa(bin, ['--root', store, 'fsck', '--repair'], { reject: false });
    expect(repair.exitCode, repair.stdout + repair.stderr).toBe(0);
    expect(readdirSync(path.join(store, 'snapshots'))).toEqual([]);
    expectStoreConsistent(store);
    const again = await build(store, ['--build-arg', 'V=2', '-t', 'f:2', ctx]);
    expect(again.stats.layersApplied).toBe(2); // both cached RUN layers unpacked: their snapshots are gone
    expect((await execa(bin, ['--root', store, 'fsck'], { reject: false })).exitCode).toBe(0);
    // What was unpacked became the snapshot of the step that made it: the next build mounts it.
    const third = await build(store, ['--build-arg', 'V=3', '-t', 'f:3', ctx]);
    expect(third.stats).toMatchObject({ layersApplied: 0, walks: 0, snapshotsMounted: 1 });
  }, 120_000);
  test('one budget for the build cache: the least recently used snapshots and cache entries go, with the layers only they keep; what images and running builds use stays', async () => {
    const store = path.join(work, 'cachebudget');
    await importFat(store);
    const a = writeTree(path.join(work, 'ctx-ca'), { Dockerfile: 'FROM fat:1\nRUN head -c 200000 /dev/urandom > /a\n' });
    const b = writeTree(path.join(work, 'ctx-cb'), { Dockerfile: 'FROM fat:1\nRUN head -c 200000 /dev/urandom > /b\n' });
    await build(store, ['-t', 'a:1', a]);
    const layerOf = async (name: string) => {
      const i = JSON.parse((await execa(bin, ['--root', store, 'inspect', name])).stdout) as { RootFS: { Layers: string[] } }[];
      return i[0]!.RootFS.Layers.at(-1) as string;
    };
    const aLayer = await layerOf('a:1');
    expect((await execa(bin, ['--root', store, 'rmi', 'a:1'], { reject: false })).exitCode).toBe(0);
    // Only the build cache keeps a's layer now.
    expect(readdirSync(path.join(store, 'blobs', 'sha256'))).toContain(aLayer.slice(7));
    const generous = await build(store, ['-t', 'b:1', b]);
    expect(generous.stats.snapshotsCommitted).toBe(1);
    expect(readdirSync(path.join(store, 'snapshots'))).toHaveLength(2);
    // A no-op rebuild added nothing: it collects nothing, whatever the budget.
    const noop = await build(store, ['-t', 'b:1', b], { GANTRY_STORE_BUDGET: '1' });
    expect(noop.stats.snapshotsMounted + noop.stats.layersApplied).toBe(0); // all cached
    expect(readdirSync(path.join(store, 'snapshots'))).toHaveLength(2);
    // b and one step more under a budget of one byte: b's entry and snapshot are this build's
    // (leased), so is the new step's; a's go.
    writeFileSync(path.join(b, 'Dockerfile'), 'FROM fat:1\nRUN head -c 200000 /dev/urandom > /b\nRUN echo c > /c\n');
    const tight = await build(store, ['-t', 'b:2', b], { GANTRY_STORE_BUDGET: '1' });
    expect(tight.stats).toMatchObject({ layersApplied: 0, snapshotsMounted: 1, snapshotsCommitted: 1 }); // b's step a hit, mounted
    expect(readdirSync(path.join(store, 'blobs', 'sha256'))).not.toContain(aLayer.slice(7));
    expect(readdirSync(path.join(store, 'snapshots'))).toHaveLength(2);
    expect(readdirSync(path.join(store, 'blobs', 'sha256'))).toContain((await layerOf('b:1')).slice(7)); // an image's layer stays
    expectStoreConsistent(store);
    // a's step runs again: its cache entry went with its layer.
    const again = await execa(bin, ['--root', store, 'build', '--progress', 'plain', '-t', 'a:2', a], { reject: false });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).not.toMatch(/CACHED/);
    expect(await layerOf('a:2')).not.toBe(aLayer);
  }, 120_000);
});
