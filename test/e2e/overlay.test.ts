import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { makeFatRootfs, mountsUnder } from '../helpers/faults.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent } from '../helpers/hostile.js';
import { tarDir } from '../helpers/rootfs.js';
import { mountOverlay, unmount } from '../../src/rootfs/overlay.js';
import { diff, snapshot, snapshotUpper } from '../../src/snapshot/diff.js';

// Builds on an overlay (src/rootfs/overlay.ts): the base is extracted once into the store's
// rootfs/ and each build mounts its own upper directory on it. The image must be the same,
// byte for byte, as the one built by unpacking into a plain directory (GANTRY_OVERLAY=0),
// whatever the steps do to the base's files; the extracted base must never change; prune
// keeps it while an image starts from it.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-overlay-'));
const gantry = (store: string, args: string[], env: Record<string, string> = {}) => execa(bin, ['--root', store, ...args], { reject: false, env });
const root = process.getuid?.() === 0;
let fatTar: string;

/** Every entry under `dir` with type, mode, owner and content: what "unchanged" compares. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const n of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(dir, r);
      const st = lstatSync(p);
      const what = st.isSymbolicLink() ? readlinkSync(p) : st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
      out.push(`${r} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

// Everything a step can do to the base's files: delete (file, directory), replace a directory
// by a new one of the same name (opaque), change content, mode and owner, replace a file by a
// link and a link by a file, add hard links to a base file.
const dockerfile = [
  'FROM fat:1',
  'RUN rm /data/r1 && rm -rf /data/text/t1* && echo changed > /data/r2 && chmod 600 /data/r3 && chown 65534:65534 /data/r4',
  'RUN rm -rf /data/text && mkdir /data/text && echo new > /data/text/only',
  'RUN rm /data/r5 && ln -s r6 /data/r5 && rm /bin/cat && echo "#!/bin/sh" > /bin/cat && ln /data/r7 /data/r7-link',
  'COPY files /data/copied',
  'RUN rm -rf /data/copied/a && echo done > /done',
].join('\n');

beforeAll(() => {
  if (!root) {
    if (process.env.CI === 'true') throw new Error('the overlay tests mount overlayfs and need root');
    return;
  }
  fatTar = tarDir(makeFatRootfs(path.join(work, 'fat'), { random: 20, small: 40, seed: 'overlay' }), path.join(work, 'fat.tar'), '');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.skipIf(!root && process.env.CI !== 'true')('builds on an overlay', () => {
  test('the same image as unpacking into a plain directory; the extracted base never changes; no mount is left', async () => {
    const ctx = writeTree(path.join(work, 'ctx'), { Dockerfile: dockerfile, 'files/a': 'a\n', 'files/b': 'b\n' });
    const plain = path.join(work, 'plain');
    const over = path.join(work, 'over');
    expect((await gantry(plain, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
    await execa('cp', ['-a', plain, over]); // the same fat:1 in both
    const args = ['build', '--progress', 'plain', '--source-date-epoch', '1700000000', '-t', 'app:1', ctx];
    const a = await gantry(plain, args, { GANTRY_OVERLAY: '0' });
    expect(a.exitCode, a.stderr).toBe(0);
    expect(readdirSync(plain)).not.toContain('rootfs');
    const b = await gantry(over, args);
    expect(b.exitCode, b.stderr).toBe(0);
    const chains = readdirSync(path.join(over, 'rootfs'));
    expect(chains).toHaveLength(1);
    const inspect = async (s: string) => JSON.parse((await gantry(s, ['inspect', 'app:1'])).stdout)[0] as { Id: string; RootFS: { Layers: string[] } };
    expect((await inspect(over)).RootFS.Layers).toEqual((await inspect(plain)).RootFS.Layers);
    expect((await inspect(over)).Id).toBe((await inspect(plain)).Id);
    expect(mountsUnder(work)).toEqual([]);

    // The extracted base is the base, untouched by the steps that ran on it.
    const chain = path.join(over, 'rootfs', chains[0] as string);
    const fat = tree(path.join(work, 'fat'));
    expect(tree(chain).map((l) => l.split(' ').slice(0, 1).concat(l.split(' ').slice(3)).join(' '))).toEqual(fat.map((l) => l.split(' ').slice(0, 1).concat(l.split(' ').slice(3)).join(' ')));
    const before = tree(chain);
    // A second build from the same base starts from the same directory: nothing is extracted.
    const again = await gantry(over, [...args.slice(0, -3), '--no-cache', '-t', 'app:2', ctx]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(tree(chain)).toEqual(before);
    expect((await inspect(over)).Id).toBe((await inspect(plain)).Id);
    expectStoreConsistent(over);
    expect(readdirSync(path.join(over, 'tmp'))).toEqual([]);
  }, 120_000);

  test("a stage reading an earlier one gets its overlay mounted while that one runs; one mounted and then not needed is detached and removed", async () => {
    const store = path.join(work, 'ahead');
    const plain = path.join(work, 'ahead-plain');
    expect((await gantry(store, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
    const small = tarDir(makeFatRootfs(path.join(work, 'small'), { random: 2, small: 5, seed: 'small' }), path.join(work, 'small.tar'), '');
    expect((await gantry(store, ['import', small, 'small:1'])).exitCode).toBe(0);
    await execa('cp', ['-a', store, plain]);
    const ctx = writeTree(path.join(work, 'ctx-ahead'), {
      Dockerfile: ['FROM fat:1 AS build', 'ARG V', 'RUN echo built > /out', 'FROM small:1', 'COPY --from=build /out /out', 'RUN cat /out > /copied'].join('\n'),
    });
    const args = (v: string) => ['build', '--progress', 'plain', '--source-date-epoch', '1700000000', '--build-arg', `V=${v}`, '-t', 'app:1', ctx];
    const inspect = async (s: string) => (JSON.parse((await gantry(s, ['inspect', 'app:1'])).stdout)[0] as { Id: string }).Id;
    const first = await gantry(store, args('1'), { GANTRY_TRACE: '1' });
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.stderr).toContain('stage 1: overlay mounted ahead');
    expect((await gantry(plain, args('1'), { GANTRY_OVERLAY: '0' })).exitCode).toBe(0);
    expect(await inspect(store)).toBe(await inspect(plain));
    // V changes the RUN's key, not what it writes: the second stage is all cached, and the
    // overlay mounted for it is never used.
    const second = await gantry(store, args('2'), { GANTRY_TRACE: '1' });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.stderr).toContain('stage 1: overlay mounted ahead');
    expect(second.stderr.match(/^#\d+ CACHED$/gm)).toHaveLength(2);
    expect(await inspect(store)).toBe(await inspect(plain));
    expect(mountsUnder(work)).toEqual([]);
    expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    expectStoreConsistent(store);
  }, 120_000);

  test('two stages on one base not yet extracted (one of them mounted ahead) extract it once', async () => {
    const store = path.join(work, 'once');
    expect((await gantry(store, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
    const ctx = writeTree(path.join(work, 'ctx-once'), {
      Dockerfile: ['FROM fat:1 AS a', 'RUN echo a > /a', 'FROM fat:1', 'COPY --from=a /a /a'].join('\n'),
    });
    const r = await gantry(store, ['build', '--progress', 'plain', '-t', 'once:1', ctx], { GANTRY_TRACE: '1' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('stage 1: overlay mounted ahead');
    expect(r.stderr.match(/^trace .* chain [0-9a-f]{64}: extracted$/gm)).toHaveLength(1);
    expect(readdirSync(path.join(store, 'rootfs'))).toHaveLength(1);
    expect(mountsUnder(work)).toEqual([]);
    expectStoreConsistent(store);
  }, 120_000);

  test('prune keeps an extracted base while an image starts from it; --all and rmi let it go', async () => {
    const store = path.join(work, 'prune');
    expect((await gantry(store, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
    const ctx = writeTree(path.join(work, 'ctx2'), { Dockerfile: 'FROM fat:1\nRUN echo x > /x\n' });
    expect((await gantry(store, ['build', '-t', 'x:1', ctx])).exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'rootfs'))).toHaveLength(1);
    const chain = readdirSync(path.join(store, 'rootfs'))[0] as string;
    expect(readdirSync(path.join(store, 'cache'))).toContain(`snapshot-${chain}.bin`);
    expect((await gantry(store, ['prune'])).exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'rootfs'))).toHaveLength(1);
    expect((await gantry(store, ['fsck'])).exitCode).toBe(0);
    expect((await gantry(store, ['rmi', 'fat:1'])).exitCode).toBe(0);
    expect((await gantry(store, ['prune'])).exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'rootfs'))).toHaveLength(0);
    expect(readdirSync(path.join(store, 'cache'))).not.toContain(`snapshot-${chain}.bin`); // its snapshot went with it
    expect((await gantry(store, ['build', '-t', 'x:2', ctx])).exitCode).not.toBe(0); // fat:1 is gone
    expect((await gantry(store, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
    expect((await gantry(store, ['build', '-t', 'x:2', ctx])).exitCode).toBe(0);
    expect((await gantry(store, ['prune', '--all'])).exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'rootfs'))).toHaveLength(0);
    expectStoreConsistent(store);
  }, 120_000);

  /** A base for the step tests below: a fat rootfs with a deep tree, a subdirectory to replace and a symlink. */
  const stepsLower = async (name: string, seed: string): Promise<string> => {
    const lower = makeFatRootfs(path.join(work, name), { random: 8, small: 30, seed });
    await execa('sh', ['-c', `mkdir -p ${lower}/deep/a/b/c ${lower}/keep/sub && echo x > ${lower}/deep/a/b/c/f && echo k > ${lower}/keep/sub/k && ln -s ../keep ${lower}/deep/link`]);
    return lower;
  };
  /** Steps on that base, each run in the merged view. */
  const UPPER_STEPS = [
    // changes to the base: content, mode, owner, deletions of a file and of a tree, a hard link
    'rm data/r1 && echo changed > data/r2 && chmod 600 data/r3 && chown 65534:65534 data/r4 && rm -rf deep/a/b && ln data/r7 data/r7-link',
    // new trees, a directory of the base replaced (opaque), a lower directory's mode
    'mkdir -p new/x/y && echo 1 > new/x/y/one && echo 2 > new/two && rm -rf data/text && mkdir data/text && echo n > data/text/only && chmod 700 keep',
    // what an earlier step made, deleted (in one upper directory: simply gone; in a fresh one: a whiteout)
    'rm -rf new/x && rm new/two && mkdir new/x && echo again > new/x/again',
    // a file becomes a directory, a directory a file, a symlink a file
    'rm data/r5 && mkdir data/r5 && echo in > data/r5/in && rm -rf keep/sub && echo now-a-file > keep/sub && rm deep/link && echo f > deep/link',
    // a base directory renamed away and its name reused
    'mv deep deep-old && mkdir deep && echo fresh > deep/fresh && rm -rf deep-old/a',
  ];

  test('the snapshot read from the upper directory equals a walk of the whole merged view, step after step', async () => {
    const lower = await stepsLower('lower', 'upper');
    const dir = mkdtempSync(path.join(work, 'mnt-'));
    const merged = await mountOverlay(lower, dir);
    expect(merged, 'overlayfs could not be mounted').toBeDefined();
    const m = merged as string;
    try {
      // Mounted volatile: nothing syncs a build's upper directory (unmounting would sync the whole file system).
      const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === m);
      expect(line, 'the overlay is in the mount table').toBeDefined();
      expect(line).toMatch(/[ ,](fsync=)?volatile(,|$)/); // newer kernels show it as fsync=volatile
      // Before any step the merged view is the lower directory (what a build's first step starts from).
      let before = await snapshot(lower);
      expect(await snapshot(m)).toEqual(before);
      const steps = [...UPPER_STEPS, 'true'];
      for (const cmd of steps) {
        await execa('sh', ['-c', cmd], { cwd: m });
        const touched = new Set<string>();
        const after = snapshotUpper(m, path.join(dir, 'upper'), before, touched);
        expect(after, cmd).toEqual(await snapshot(m));
        // What it says it touched is all a diff needs to look at.
        expect(diff(before, after, { overlay: true, touched }), cmd).toEqual(diff(before, after, { overlay: true }));
        before = after;
      }
    } finally {
      await unmount(m);
    }
  }, 60_000);

  test('on a fresh upper directory per step (as step snapshots stack), the snapshot read from it equals a walk of the merged view', async () => {
    const lower = await stepsLower('lower-fresh', 'fresh');
    const steps = [
      ...UPPER_STEPS,
      // a directory replaced whose replacement the step before made
      'rm -rf data/text && mkdir data/text && echo m > data/text/other && rm -rf new',
      'true',
    ];
    const uppers: string[] = [];
    for (const cmd of steps) {
      const dir = mkdtempSync(path.join(work, 'fresh-'));
      const m = (await mountOverlay([...uppers].reverse().concat(lower), dir)) as string;
      expect(m, 'overlayfs could not be mounted').toBeDefined();
      try {
        const before = await snapshot(m);
        await execa('sh', ['-c', cmd], { cwd: m });
        const touched = new Set<string>();
        const after = snapshotUpper(m, path.join(dir, 'upper'), before, touched, { fresh: true });
        expect(after, cmd).toEqual(await snapshot(m));
        expect(diff(before, after, { overlay: true, touched }), cmd).toEqual(diff(before, after, { overlay: true }));
      } finally {
        await unmount(m);
      }
      uppers.push(path.join(dir, 'upper'));
    }
  }, 60_000);
});
