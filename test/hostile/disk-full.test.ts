import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { makeFatRootfs, mountsUnder } from '../helpers/faults.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent, makeVictim } from '../helpers/hostile.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// ENOSPC (issue 6, point 16): the store lives on a small tmpfs that fills up while a blob is
// written (import, a pulled blob, a build's layer), while a base layer is extracted, and while
// index.json is replaced. Each time gantry stops with an error that says the disk is full and
// where it was writing (exit 1, not an internal error); nothing half-written is left in the
// store or its temp area; the victim beside the store is untouched. With room made, the same
// command succeeds.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-enospc-'));
const gantry = (store: string, args: string[]) => execa(bin, ['--root', store, ...args], { reject: false, timeout: 120_000 });
const mounted: string[] = [];

/** A fresh tmpfs of `size` at a new directory, with a victim beside it. */
function smallDisk(label: string, size: string) {
  const dir = path.join(work, label);
  const disk = path.join(dir, 'disk');
  mkdirSync(disk, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', disk]);
  mounted.push(disk);
  return { disk, store: path.join(disk, 'store'), victim: makeVictim(path.join(dir, 'victim')), grow: (to: string) => execFileSync('mount', ['-o', `remount,size=${to}`, disk]) };
}

/** What every full-disk failure must look like, and leave. */
function expectCleanFailure(r: { exitCode?: number; stderr: string }, store: string, where: RegExp): void {
  expect(r.exitCode, r.stderr).toBe(1);
  expect(r.stderr).toMatch(/no space left on device/i);
  expect(r.stderr).toMatch(where);
  expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  expectStoreConsistent(store);
  expect(readdirSync(path.join(store, 'tmp')), 'temp area after the failure').toEqual([]);
}

let fatTar: string; // 14 MiB that does not compress
let zerosTar: string; // 40 MiB of zeros: a tiny blob that expands
let savedTar: string; // fat:1 as a docker-archive
let registry: TestRegistry;

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('the full-disk tests mount a tmpfs and need root');
    return;
  }
  haveTool('docker-registry');
  fatTar = tarDir(makeFatRootfs(path.join(work, 'fat'), { random: 600, small: 10, seed: 'enospc' }), path.join(work, 'fat.tar'), '');
  const zeros = makeBusyboxRootfs(path.join(work, 'zeros'));
  writeFileSync(path.join(zeros, 'zeros'), Buffer.alloc(40 * 1024 * 1024));
  zerosTar = tarDir(zeros, path.join(work, 'zeros.tar'), '');
  registry = (await startRegistry()) as TestRegistry;
  const big = path.join(work, 'big-store');
  expect((await gantry(big, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
  savedTar = path.join(work, 'saved.tar');
  expect((await gantry(big, ['save', '-o', savedTar, 'fat:1'])).exitCode).toBe(0);
  const push = await gantry(big, ['push', 'fat:1', `${registry.host}/fat:1`]);
  expect(push.exitCode, push.stderr).toBe(0);
}, 300_000);

afterAll(async () => {
  for (const m of mounted.reverse()) execFileSync('umount', ['-l', m]);
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(process.getuid?.() !== 0 && process.env.CI !== 'true')('a full disk', () => {
  test('while an imported layer is written: a clear error, no half blob, and the import succeeds with room', async () => {
    const { store, victim, grow } = smallDisk('import', '8m');
    const r = await gantry(store, ['import', fatTar, 'fat:1']);
    expectCleanFailure(r, store, new RegExp(`writing a blob to the store ${store}`));
    expect(JSON.parse(readFileSync(path.join(store, 'index.json'), 'utf8')).manifests).toEqual([]);
    victim.unchanged();
    grow('64m');
    const again = await gantry(store, ['import', fatTar, 'fat:1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expectStoreConsistent(store);
    victim.unchanged();
  });

  test('while a loaded archive is written: a clear error, no half blob, and the load succeeds with room', async () => {
    const { store, victim, grow } = smallDisk('load', '8m');
    const r = await gantry(store, ['load', '-i', savedTar]);
    expectCleanFailure(r, store, new RegExp(`writing a blob to the store ${store}`));
    victim.unchanged();
    grow('64m');
    const again = await gantry(store, ['load', '-i', savedTar]);
    expect(again.exitCode, again.stderr).toBe(0);
    expectStoreConsistent(store);
  });

  test('while the second image of an archive is loaded: the multi-platform image loaded before it stays whole', async () => {
    // An archive of a two-platform image (FROM scratch: no RUN), then fat:1, which does not fit.
    const big = path.join(work, 'big-store');
    const ctx = path.join(work, 'multi-ctx');
    writeTree(ctx, { Dockerfile: 'FROM scratch\nARG TARGETARCH\nCOPY a /a-$TARGETARCH\n', a: 'a\n' });
    const built = await gantry(big, ['build', '--progress', 'quiet', '--platform', 'linux/amd64,linux/arm64', '-t', 'multi:1', ctx]);
    expect(built.exitCode, built.stderr).toBe(0);
    const both = path.join(work, 'multi-then-fat.tar');
    expect((await gantry(big, ['save', '-o', both, 'multi:1', 'fat:1'])).exitCode).toBe(0);
    const { store, victim } = smallDisk('load-multi', '8m');
    const r = await gantry(store, ['load', '-i', both]);
    expectCleanFailure(r, store, new RegExp(`writing a blob to the store ${store}`));
    // multi:1 was named before fat:1 failed: its platforms' images are kept with it.
    const listed = await gantry(store, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.Platforms}}']);
    expect(listed.stdout.trim()).toBe('multi:1 linux/amd64,linux/arm64');
    expect((await gantry(store, ['fsck'])).exitCode).toBe(0);
    victim.unchanged();
  });

  test('while a pulled blob is downloaded: the error names the blob and the URL; the pull succeeds with room', async () => {
    const { store, victim, grow } = smallDisk('pull', '8m');
    const r = await gantry(store, ['pull', `${registry.host}/fat:1`]);
    expectCleanFailure(r, store, new RegExp(`blob sha256:[0-9a-f]{64} from http://${registry.host}/v2/fat/blobs/`));
    victim.unchanged();
    grow('64m');
    const again = await gantry(store, ['pull', `${registry.host}/fat:1`]);
    expect(again.exitCode, again.stderr).toBe(0);
    expectStoreConsistent(store);
  });

  test('while a base layer is extracted for a build: the error names the layer; no rootfs is left; the build succeeds with room', async () => {
    const { store, victim, grow } = smallDisk('extract', '24m');
    expect((await gantry(store, ['import', zerosTar, 'zeros:1'])).exitCode).toBe(0);
    const ctx = writeTree(path.join(work, 'extract', 'ctx'), { Dockerfile: 'FROM zeros:1\nRUN echo built > /built\n' });
    const r = await gantry(store, ['build', '-t', 'app:1', ctx]);
    expectCleanFailure(r, store, /layer sha256:[0-9a-f]{64}/);
    victim.unchanged();
    grow('128m');
    const again = await gantry(store, ['build', '-t', 'app:1', ctx]);
    expect(again.exitCode, again.stderr).toBe(0);
    expectStoreConsistent(store);
    expect(mountsUnder(path.join(work, 'extract')).filter((m) => !m.endsWith('/disk'))).toEqual([]);
  });

  test("while a build's layer is written: the error names the step's store; the build succeeds with room", async () => {
    const { store, victim, grow } = smallDisk('layer', '48m');
    // 14 MiB of blob, 14 of base rootfs, 14 that the RUN writes: the RUN's layer (14 more) does not fit.
    expect((await gantry(store, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
    const ctx = writeTree(path.join(work, 'layer', 'ctx'), { Dockerfile: 'FROM fat:1\nRUN cat /data/r* > /copy\n' });
    const r = await gantry(store, ['build', '-t', 'app:1', ctx]);
    expectCleanFailure(r, store, new RegExp(`writing a blob to the store ${store}`));
    expect(r.stderr).toMatch(/Dockerfile:2/);
    victim.unchanged();
    grow('128m');
    const again = await gantry(store, ['build', '-t', 'app:1', ctx]);
    expect(again.exitCode, again.stderr).toBe(0);
    expectStoreConsistent(store);
  });

  test('while index.json is replaced: the old index stays whole, and tag succeeds with room', async () => {
    const { disk, store, victim } = smallDisk('index', '32m');
    expect((await gantry(store, ['import', zerosTar, 'zeros:1'])).exitCode).toBe(0);
    const before = readFileSync(path.join(store, 'index.json'), 'utf8');
    // Fill what is left of the disk.
    const filler = path.join(disk, 'filler');
    try {
      execFileSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k'], { stdio: 'ignore' });
    } catch {
      // dd stops at ENOSPC, as meant
    }
    const r = await gantry(store, ['tag', 'zeros:1', 'zeros:2']);
    expectCleanFailure(r, store, new RegExp(`writing ${store}/index.json|creating`));
    expect(readFileSync(path.join(store, 'index.json'), 'utf8')).toBe(before);
    victim.unchanged();
    rmSync(filler);
    const again = await gantry(store, ['tag', 'zeros:1', 'zeros:2']);
    expect(again.exitCode, again.stderr).toBe(0);
    expectStoreConsistent(store);
    expect(existsSync(path.join(store, 'index.json.lock'))).toBe(false);
  });
});
