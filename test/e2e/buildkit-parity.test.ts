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
import { diffTrees, readTree } from '../helpers/tree.js';

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
  rmSync(work, { recursive: true, force: true });
});

/** The fixture copied out, with its archive-src/ packed into the archives its Dockerfile ADDs. */
async function prepareContext(name: string): Promise<string> {
  const ctx = path.join(work, 'ctx', name);
  cpSync(path.join(fixtures, name), ctx, { recursive: true, verbatimSymlinks: true });
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

/** The diff ID of an empty tar: BuildKit's layer for a step that changed nothing. */
const EMPTY_TAR = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/**
 * History as `docker history` shows it: the command, whether it made a layer, the comment.
 * A step that changed nothing makes an empty layer in BuildKit and none in gantry (a
 * deliberate difference, docs/differences.md): both read "no change" here.
 */
async function history(ref: string): Promise<string[]> {
  const r = await g(['inspect', ref]);
  expect(r.exitCode, r.stderr).toBe(0);
  const info = (JSON.parse(r.stdout) as { History: { created_by?: string; empty_layer?: boolean; comment?: string }[]; RootFS: { Layers: string[] } }[])[0]!;
  const layers = [...info.RootFS.Layers];
  return info.History.map((h) => {
    const change = h.empty_layer ? 'no change' : layers.shift() === EMPTY_TAR ? 'no change' : 'layer';
    return `${change} ${h.comment ?? ''} | ${h.created_by ?? ''}`;
  });
}

const names = existsSync(fixtures) ? readdirSync(fixtures).sort() : [];

describe('the same Dockerfile, gantry and BuildKit: the same tree and config', () => {
  test.each(names)('%s', async (name) => {
    if (!reg || !oracle) return;
    const ctx = await prepareContext(name);
    // A fixture's build-args file: KEY=VALUE lines given to both builds (the proxy family, say).
    const extraArgs = existsSync(path.join(ctx, 'build-args'))
      ? Object.fromEntries(readFileSync(path.join(ctx, 'build-args'), 'utf8').split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
      : {};
    const buildArgs: Record<string, string> = { REGISTRY: reg.host, ...extraArgs };
    // A cache mount of an earlier run of this suite would still hold what that run appended
    // (debian-mounts' cache-seen); gantry's store is new each run.
    await oracle.pruneBuildCache();
    await oracle.build(ctx, { tag: `parity/${name}:oracle`, buildArgs });
    const saved = path.join(work, `${name}-oracle.tar`);
    await oracle.save(`parity/${name}:oracle`, saved);
    const loaded = await g(['load', '-i', saved]);
    expect(loaded.exitCode, loaded.stderr).toBe(0);
    const built = await g(['build', '--progress', 'plain', ...Object.entries(buildArgs).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), '-t', `parity/${name}:gantry`, ctx]);
    expect(built.exitCode, built.stderr).toBe(0);

    const trees = [];
    for (const who of ['oracle', 'gantry']) {
      const out = path.join(work, `${name}-${who}-rootfs.tar`);
      const r = await g(['export', `parity/${name}:${who}`, '-o', out]);
      expect(r.exitCode, r.stderr).toBe(0);
      trees.push(await readTree(out));
    }
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
