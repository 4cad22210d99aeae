import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { startOracle, type Oracle } from '../helpers/oracle.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { diffTrees, readTree, type Tree } from '../helpers/tree.js';

// Side by side with current BuildKit: every Dockerfile under fixtures/parity is built by gantry
// and by Docker 28.5 (../shared/tools/buildkit-oracle.sh) FROM the same busybox and Debian bases served by a
// loopback registry. BuildKit's image comes back through `docker save` and `gantry load`; both
// are flattened with `gantry export` and compared path by path (type, mode, owner, content,
// link target, device numbers) and config field by config field.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-parity-'));
const root = path.join(work, 'store');
const g = (args: string[]) => execa(bin, ['--root', root, ...args], { reject: false });
const fixtures = path.join(projectRoot, 'fixtures', 'parity');

let reg: TestRegistry | undefined;
let oracle: Oracle | undefined;

beforeAll(async () => {
  const debian = debianBaseTarball();
  oracle = startOracle('current');
  reg = await startRegistry();
  if (!debian || !oracle || !reg) return;
  const seed = path.join(work, 'seed');
  const s = (args: string[]) => execa(bin, ['--root', seed, ...args]);
  await s(['import', debian, `${reg.host}/library/debian:bookworm`, '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
  await s(['push', `${reg.host}/library/debian:bookworm`]);
  const busybox = tarDir(makeBusyboxRootfs(path.join(work, 'busybox-rootfs')), path.join(work, 'busybox.tgz'));
  await s(['import', busybox, `${reg.host}/library/busybox:latest`, '-c', 'CMD ["sh"]']);
  await s(['push', `${reg.host}/library/busybox:latest`]);
}, 15 * 60_000);
afterAll(async () => {
  await reg?.stop();
  // The stores of every fixture, Debian's among them: rm, not Node's recursive removal (a third of the time).
  await execa('rm', ['-rf', '--one-file-system', work]);
}, 300_000);

/** The fixture copied out, with its archive-src/ packed into the archives its Dockerfile ADDs. */
async function prepareContext(dir: string, name: string): Promise<string> {
  const ctx = path.join(work, 'ctx', path.basename(dir), name);
  cpSync(path.join(dir, name), ctx, { recursive: true, verbatimSymlinks: true });
  // Host programs the Dockerfile copies in (the bases lack them; nothing binary is committed).
  if (existsSync(path.join(ctx, 'host-tools.txt'))) {
    for (const tool of readFileSync(path.join(ctx, 'host-tools.txt'), 'utf8').split('\n').filter(Boolean)) {
      copyFileSync(tool, path.join(ctx, path.basename(tool)));
    }
  }
  if (existsSync(path.join(ctx, 'archive-src'))) {
    const t = (args: string[]) => execa('tar', [...args, '--mtime=@1700000000', '-C', path.join(ctx, 'archive-src'), '.']);
    await t(['-czf', path.join(ctx, 'archive.tar.gz'), '--owner=0', '--group=0']);
    await t(['-cjf', path.join(ctx, 'archive.tar.bz2'), '--owner=5', '--group=6']);
    await t(['-cJf', path.join(ctx, 'archive.tar.xz'), '--owner=0', '--group=0', '--transform=s|^\\./pkg|./pkgxz|']);
  }
  return ctx;
}

const configFields = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'StopSignal', 'Healthcheck', 'Labels', 'OnBuild', 'Shell'] as const;

async function config(ref: string): Promise<Record<string, unknown>> {
  const i = await g(['inspect', ref]);
  expect(i.exitCode, i.stderr).toBe(0);
  const c = (JSON.parse(i.stdout) as { Config: Record<string, unknown> }[])[0]!.Config;
  // dockerd writes absent lists as null (Go's nil slices); both mean "not set".
  return Object.fromEntries(configFields.map((f) => [f, c[f] ?? undefined]));
}

/**
 * Whether each of an image's layers changes something, in order: a layer of directories that
 * earlier layers already have changes their times only. BuildKit stores such a layer for a RUN
 * that wrote nothing (its mount points were made and removed in /etc and in a target's parent,
 * so those directories' times moved); gantry stores no layer for times alone
 * (docs/differences.md). The tree comparison checks the directories themselves.
 */
async function layerChanges(ref: string): Promise<boolean[]> {
  const dir = mkdtempSync(path.join(work, 'saved-'));
  try {
    const saved = path.join(dir, 'image.tar');
    const r = await g(['save', ref, '-o', saved]);
    expect(r.exitCode, r.stderr).toBe(0);
    await execa('tar', ['-xf', saved, '-C', dir]);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
    const seen = new Set<string>();
    const out: boolean[] = [];
    for (const layer of manifest[0]!.Layers) {
      const entries = (await execa('tar', ['-tvf', path.join(dir, layer)])).stdout.split('\n').filter(Boolean)
        .map((l) => ({ dir: l.startsWith('d'), name: (/\d\d:\d\d (.*)$/.exec(l)?.[1] ?? l).replace(/^\.\//, '').replace(/\/$/, '') }));
      out.push(!entries.every((e) => e.dir && seen.has(e.name)));
      for (const e of entries) seen.add(e.name);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * History as `docker history` shows it: the command, whether it made a layer that changes
 * something (see layerChanges), the comment. A step that changed nothing makes an empty layer,
 * or one of directory times, in BuildKit and none in gantry: both read "no change" here.
 */
async function history(ref: string): Promise<string[]> {
  const r = await g(['inspect', ref]);
  expect(r.exitCode, r.stderr).toBe(0);
  const info = (JSON.parse(r.stdout) as { History: { created_by?: string; empty_layer?: boolean; comment?: string }[] }[])[0]!;
  const changes = await layerChanges(ref);
  return info.History.map((h) => {
    const change = h.empty_layer ? 'no change' : changes.shift() ? 'layer' : 'no change';
    return `${change} ${h.comment ?? ''} | ${h.created_by ?? ''}`;
  });
}

const names = existsSync(fixtures) ? readdirSync(fixtures).sort() : [];
const realFixtures = path.join(projectRoot, 'fixtures', 'real');
const realNames = existsSync(realFixtures) ? readdirSync(realFixtures).sort() : [];

/** A fixture's build-args file: KEY=VALUE lines given to both builds (the proxy family, say). */
function fixtureArgs(ctx: string): Record<string, string> {
  const file = path.join(ctx, 'build-args');
  if (!existsSync(file)) return {};
  return Object.fromEntries(readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** An image's flattened tree, read through `gantry export`. */
async function treeOf(ref: string, file: string): Promise<Tree> {
  const r = await g(['export', ref, '-o', file]);
  expect(r.exitCode, r.stderr).toBe(0);
  return readTree(file);
}

/** BuildKit's image of a context, loaded into gantry's store as `tag`. */
async function oracleImage(ctx: string, tag: string, buildArgs: Record<string, string>, noCache = false): Promise<void> {
  await oracle!.build(ctx, { tag, buildArgs, noCache });
  const saved = path.join(work, `${tag.replace(/[/:]/g, '-')}.tar`);
  await oracle!.save(tag, saved);
  const loaded = await g(['load', '-i', saved]);
  expect(loaded.exitCode, loaded.stderr).toBe(0);
}

async function gantryImage(ctx: string, tag: string, buildArgs: Record<string, string>): Promise<void> {
  const built = await g(['build', '--progress', 'plain', ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '-t', tag, ctx]);
  expect(built.exitCode, built.stderr).toBe(0);
}

describe('the same Dockerfile, gantry and BuildKit: the same tree and config', () => {
  test.each(names)('%s', async (name) => {
    if (!reg || !oracle) return;
    const ctx = await prepareContext(fixtures, name);
    const buildArgs: Record<string, string> = { REGISTRY: reg.host, ...fixtureArgs(ctx) };
    // A cache mount of an earlier run of this suite would still hold what that run appended
    // (debian-mounts' cache-seen); gantry's store is new each run.
    await oracle.pruneBuildCache();
    await oracleImage(ctx, `parity/${name}:oracle`, buildArgs);
    await gantryImage(ctx, `parity/${name}:gantry`, buildArgs);

    const trees = [];
    for (const who of ['oracle', 'gantry']) trees.push(await treeOf(`parity/${name}:${who}`, path.join(work, `${name}-${who}-rootfs.tar`)));
    expect(diffTrees(trees[0]!, trees[1]!)).toEqual([]);
    if (name === 'debian-caps') {
      // Its point: the capabilities are there in both, not merely absent from both.
      for (const f of ['usr/local/bin/capped', 'usr/local/bin/capped-copy', 'usr/local/bin/bind']) {
        expect(trees[1]!.get(f)).toMatch(/ security\.capability=01000002/);
      }
      expect(trees[1]!.get('usr/local/bin/bind-plain')).not.toMatch(/security\.capability/);
    }

    expect(await config(`parity/${name}:gantry`)).toEqual(await config(`parity/${name}:oracle`));
    expect(await history(`parity/${name}:gantry`)).toEqual(await history(`parity/${name}:oracle`));
  }, 10 * 60_000);
});

// Real projects' Dockerfiles (fixtures/real, each with a SOURCE file naming where it comes from
// and what was adapted to the offline bases). Their RUNs install packages, compile and write
// logs, so two BuildKit builds already differ in a few paths (apt's and dpkg's logs, caches,
// timestamps inside generated files): BuildKit builds twice, the second without its cache, and
// gantry's tree may differ from BuildKit's only where BuildKit's two trees differ from each
// other. Config and history must be the same.
describe.runIf(realNames.length > 0)('real projects\' Dockerfiles: gantry and BuildKit differ only where BuildKit differs from itself', () => {
  test.each(realNames)('%s', async (name) => {
    if (!reg || !oracle) return;
    const ctx = await prepareContext(realFixtures, name);
    const buildArgs: Record<string, string> = { REGISTRY: reg.host, ...fixtureArgs(ctx) };
    await oracle.pruneBuildCache();
    await oracleImage(ctx, `real/${name}:oracle`, buildArgs);
    await oracleImage(ctx, `real/${name}:oracle-again`, buildArgs, true);
    await gantryImage(ctx, `real/${name}:gantry`, buildArgs);
    const [a, b, ours] = [
      await treeOf(`real/${name}:oracle`, path.join(work, `real-${name}-oracle.tar`)),
      await treeOf(`real/${name}:oracle-again`, path.join(work, `real-${name}-oracle-again.tar`)),
      await treeOf(`real/${name}:gantry`, path.join(work, `real-${name}-gantry.tar`)),
    ];
    const noise = new Set(diffTrees(a, b).map((l) => l.slice(2, l.indexOf(': '))));
    // The noise is the RUNs' own (a guard against a fixture whose every file is noise).
    expect(noise.size, [...noise].join('\n')).toBeLessThan(Math.max(20, a.size / 20));
    expect(diffTrees(a, ours, (p) => noise.has(p))).toEqual([]);
    expect(await config(`real/${name}:gantry`)).toEqual(await config(`real/${name}:oracle`));
    expect(await history(`real/${name}:gantry`)).toEqual(await history(`real/${name}:oracle`));
  }, 20 * 60_000);
});

// Step snapshots (issue 22) must not change what a build makes: every parity fixture built on
// overlays with snapshots, then built again with every named stage's steps run anew
// (--no-cache-filter) on the snapshots the first build kept, mounted as lower directories,
// gives the same image, byte for byte (SOURCE_DATE_EPOCH fixes the dates; a fixture whose RUNs
// write what differs from run to run, a cache mount's content, is compared layer by layer by
// each entry's header instead). What the first build makes is BuildKit's (the tests above).
// Unpacking into plain directories (GANTRY_OVERLAY=0) is not the reference: an overlay breaks
// a hard link when it copies one name of it up, as BuildKit's overlay snapshotter does
// (debian-app's chmod of /usr/bin/perl through a new link leaves perl5.36.0 as it was).
describe.runIf(process.getuid?.() === 0 || process.env.CI === 'true')('snapshots: a rebuild on mounted snapshots gives the same image', () => {
  const built = async (store: string, ctx: string, tag: string, buildArgs: Record<string, string>, extra: string[]): Promise<string> => {
    const r = await execa(bin, ['--root', store, 'build', '--progress', 'plain', '--source-date-epoch', '1700000000', ...extra, ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '-t', tag, ctx], {
      reject: false,
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const i = await execa(bin, ['--root', store, 'inspect', tag]);
    return (JSON.parse(i.stdout) as { Id: string }[])[0]!.Id;
  };
  /** Each layer's entries: name, type, mode, owner, size, link target (what stays when a RUN's bytes vary). */
  const headers = async (store: string, tag: string): Promise<string[][]> => {
    const i = JSON.parse((await execa(bin, ['--root', store, 'inspect', tag])).stdout) as { RootFS: { Layers: string[] } }[];
    // The layers the build made (stored uncompressed: the diff ID is the blob); the base's are the same pulled blobs in both.
    const made = i[0]!.RootFS.Layers.map((d) => path.join(store, 'blobs', 'sha256', d.slice(7))).filter((f) => existsSync(f));
    return Promise.all(made.map(async (f) => (await execa('tar', ['-tvf', f])).stdout.split('\n').map((l) => l.replace(/ \d{4}-\d\d-\d\d \d\d:\d\d /, ' '))));
  };
  test.each(names)('%s', async (name) => {
    if (!reg) return;
    const ctx = await prepareContext(fixtures, name);
    const buildArgs: Record<string, string> = { REGISTRY: reg.host, ...fixtureArgs(ctx) };
    const snap = path.join(work, `snap-${name}`);
    const cold = await built(snap, ctx, `same/${name}:1`, buildArgs, []);
    expect(readdirSync(path.join(snap, 'snapshots')).length).toBeGreaterThan(0);
    const stages = [...readFileSync(path.join(ctx, 'Dockerfile'), 'utf8').matchAll(/^FROM\s.*\sAS\s+(\S+)/gim)].map((m) => m[1] as string);
    const again = await built(snap, ctx, `same/${name}:2`, buildArgs, stages.length > 0 ? ['--no-cache-filter', stages.join(',')] : ['--no-cache']);
    if (again !== cold) expect(await headers(snap, `same/${name}:2`)).toEqual(await headers(snap, `same/${name}:1`));
    // Said, so that a fixture that stops being deterministic shows.
    console.log(`${name}: rebuilt on snapshots ${again === cold ? '=' : '≠ (headers equal)'} first build`);
  }, 10 * 60_000);
});
