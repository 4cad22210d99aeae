import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { CrashPoint } from '../../src/support/process.js';
import { projectRoot } from '../helpers/conformance.js';
import { makeFatRootfs, mountsUnder, seededRandom, waitForNoProcesses } from '../helpers/faults.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent, makeVictim } from '../helpers/hostile.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// SIGKILL during import, pull, build (layer apply, RUN, snapshot, layer write, commit) and
// push (issue 6, point 16). Each kill is followed by the same checks: no process of the dead
// gantry is left running and no mount is left behind; the store invariant holds (no half
// blob is visible under its digest, every reference resolves); the victim is untouched. Then
// the same command runs again and succeeds with the same result, and the temp area is empty
// once it ends: what the dead process left there was cleaned up.
//
// Two kinds of kill: at named crash points (GANTRY_CRASH_AT, src/support/process.ts), which land
// exactly between two writes; and at random times across the command's run, from a seed
// printed on failure (GANTRY_FAULT_SEED repeats a run, GANTRY_FAULT_KILLS sets how many).

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-sigkill-'));
const SEED = Number(process.env.GANTRY_FAULT_SEED ?? Math.floor(Math.random() * 2 ** 31));
const KILLS = Number(process.env.GANTRY_FAULT_KILLS ?? 5);
const random = seededRandom(SEED);
const EPOCH = '1700000000';

let registry: TestRegistry;
let fatTar: string;
let baseStore: string; // fat:1 only
let refStore: string; // fat:1 and app:1, built and pushed once without faults
let context: string;
const ref: Record<string, { id: string; layers: string[] }> = {};
const durations: Record<string, number> = {};
const tally: string[] = [];

const gantry = (store: string, args: string[], env: Record<string, string> = {}) =>
  execa(bin, ['--root', store, ...args], { reject: false, env, timeout: 180_000 });

async function inspect(store: string, name: string): Promise<{ id: string; layers: string[] }> {
  const r = await gantry(store, ['inspect', name]);
  expect(r.exitCode, r.stderr).toBe(0);
  const info = JSON.parse(r.stdout)[0] as { Id: string; RootFS: { Layers: string[] } };
  return { id: info.Id, layers: info.RootFS.Layers };
}

interface Operation {
  /** A store for one trial (made under `dir`) and the command to run on it. */
  prepare(dir: string, n: number): { store: string; args: string[]; check: () => Promise<void> };
}

let trials = 0;
const operations: Record<'import' | 'build' | 'push' | 'pull', Operation> = {
  import: {
    prepare: (dir) => {
      const store = path.join(dir, 'store');
      return {
        store,
        args: ['import', fatTar, 'fat:1'],
        check: async () => expect((await inspect(store, 'fat:1')).layers).toEqual(ref.import?.layers),
      };
    },
  },
  build: {
    prepare: (dir) => {
      const store = path.join(dir, 'store');
      execFileSync('cp', ['-a', baseStore, store]);
      return {
        store,
        args: ['build', '--progress', 'json', '--source-date-epoch', EPOCH, '-t', 'app:1', context],
        check: async () => expect(await inspect(store, 'app:1')).toEqual(ref.build),
      };
    },
  },
  push: {
    prepare: (dir, n) => {
      const dest = `${registry.host}/trial${n}/app:1`;
      return {
        store: refStore,
        args: ['push', 'app:1', dest],
        check: async () => {
          const back = path.join(dir, 'pulled');
          const r = await gantry(back, ['pull', dest]);
          expect(r.exitCode, r.stderr).toBe(0);
          expect(await inspect(back, dest)).toEqual(ref.build);
        },
      };
    },
  },
  pull: {
    prepare: (dir) => {
      const store = path.join(dir, 'store');
      const name = `${registry.host}/ref/app:1`;
      return {
        store,
        args: ['pull', name],
        check: async () => expect(await inspect(store, name)).toEqual(ref.build),
      };
    },
  },
};

type How = { point: CrashPoint | `${CrashPoint}@${number}` } | { afterMs: number };

/** Kill one run of `op` as `how` says, check what is left, run it again, check the result. */
async function trial(opName: keyof typeof operations, how: How): Promise<void> {
  const n = ++trials;
  const dir = path.join(work, `t${n}`);
  mkdirSync(dir);
  const victim = makeVictim(path.join(dir, 'victim'));
  const { store, args, check } = operations[opName].prepare(dir, n);
  const mark = `gantry-fault-${randomBytes(6).toString('hex')}`;
  const env: Record<string, string> = { GANTRY_FAULT_MARK: mark, ...('point' in how ? { GANTRY_CRASH_AT: how.point } : {}) };
  const started = Date.now();
  const child = gantry(store, args, env);
  const timer = 'afterMs' in how ? setTimeout(() => child.kill('SIGKILL'), how.afterMs) : undefined;
  const r = await child;
  clearTimeout(timer);
  // A run that ended before its kill says how long the command takes here: later kills aim within it.
  if (r.exitCode === 0) durations[opName] = Math.min(durations[opName] as number, Date.now() - started);
  const what = `${opName} ${'point' in how ? `at ${how.point}` : `after ${how.afterMs} ms (seed ${SEED})`}`;
  if ('point' in how) expect(r.signal, `${what}: the crash point was not reached\n${r.stderr}`).toBe('SIGKILL');
  else expect(r.signal === 'SIGKILL' || r.exitCode === 0, `${what}: ${r.stderr}`).toBe(true);
  // Where a timed kill landed: the last step a build had started.
  const steps = r.stderr.split('\n').filter((l) => l.startsWith('{"type":"step"'));
  const last = steps.length > 0 ? (JSON.parse(steps[steps.length - 1] as string) as { name: string; status: string }) : undefined;
  tally.push(`${what}: ${r.signal === 'SIGKILL' ? 'killed' : 'finished first'}${last ? ` (last step: ${last.name.split(' ').slice(0, 3).join(' ')} ${last.status})` : ''}`);

  expect(await waitForNoProcesses(mark), `${what}: processes of the killed gantry`).toEqual([]);
  // A killed build may leave its rootfs overlay mounted in its temp entry (nowhere else): the
  // next command detaches it.
  const tmp = path.join(store, 'tmp');
  expect(mountsUnder(dir).filter((m) => !(m.startsWith(`${tmp}/rootfs-`) && m.endsWith('/merged'))), `${what}: mounts left`).toEqual([]);
  expectStoreConsistent(store);
  victim.unchanged();

  const again = await gantry(store, args);
  expect(again.exitCode, `${what}, then again: ${again.stderr}`).toBe(0);
  await check();
  expectStoreConsistent(store);
  expect(existsSync(path.join(store, 'tmp')) ? readdirSync(path.join(store, 'tmp')) : [], `${what}: temp area after the rerun`).toEqual([]);
  expect(mountsUnder(dir), `${what}: mounts after the rerun`).toEqual([]);
  victim.unchanged();
  if (store !== refStore) rmSync(dir, { recursive: true, force: true });
}

beforeAll(async () => {
  haveTool('docker-registry');
  haveTool('runc');
  registry = (await startRegistry()) as TestRegistry;
  const fat = makeFatRootfs(path.join(work, 'fat'), { random: 600, small: 1500, seed: 'sigkill' });
  fatTar = tarDir(fat, path.join(work, 'fat.tar'), '');
  context = writeTree(path.join(work, 'ctx'), {
    Dockerfile: [
      'FROM fat:1',
      // Many files and one big one, then a deletion: snapshot, layer write and whiteouts all take part.
      'RUN echo started; for i in $(seq 1 600); do echo $i > /data/gen$i; done; cat /data/r* > /big',
      'COPY files /files',
      'RUN rm -rf /data/text',
      'CMD ["/bin/sh"]',
    ].join('\n'),
    ...Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`files/f${i}`, `file ${i}\n`])),
  });
  baseStore = path.join(work, 'base-store');
  let t = Date.now();
  const imp = await gantry(baseStore, ['import', fatTar, 'fat:1']);
  expect(imp.exitCode, imp.stderr).toBe(0);
  durations.import = Date.now() - t;
  ref.import = await inspect(baseStore, 'fat:1');
  refStore = path.join(work, 'ref-store');
  execFileSync('cp', ['-a', baseStore, refStore]);
  t = Date.now();
  const b = await gantry(refStore, operations.build.prepare(work, 0).args.filter((a) => a !== 'json').map((a) => (a === '--progress' ? '--progress=plain' : a)));
  expect(b.exitCode, b.stderr).toBe(0);
  durations.build = Date.now() - t;
  rmSync(path.join(work, 'store'), { recursive: true, force: true }); // prepare's copy, unused
  ref.build = await inspect(refStore, 'app:1');
  t = Date.now();
  const p = await gantry(refStore, ['push', 'app:1', `${registry.host}/ref/app:1`]);
  expect(p.exitCode, p.stderr).toBe(0);
  durations.push = Date.now() - t;
  t = Date.now();
  const pl = await gantry(path.join(work, 'pull-store'), ['pull', `${registry.host}/ref/app:1`]);
  expect(pl.exitCode, pl.stderr).toBe(0);
  durations.pull = Date.now() - t;
}, 300_000);

afterAll(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
  // The figures for the closing note: what was tried and how each kill landed.
  console.log(`sigkill: seed ${SEED}, reference durations ${JSON.stringify(durations)}\n  ${tally.join('\n  ')}`);
});

const points: Record<keyof typeof operations, (CrashPoint | `${CrashPoint}@${number}`)[]> = {
  import: ['store-created', 'blob-chunk@3', 'blob-temp', 'blob-stored', 'index-locked', 'index-written'],
  build: ['apply-entry@1200', 'run-started', 'snapshot-dir@3', 'blob-chunk@4', 'blob-temp', 'blob-stored', 'cache-put', 'cache-put@2', 'snapshot-staged', 'snapshot-committed@2', 'commit', 'snapshot-committed@3', 'index-written'],
  push: ['push-chunk@3', 'push-blob', 'push-blob@2'],
  pull: ['pull-chunk@4', 'blob-temp', 'blob-stored@2', 'index-written'],
};

describe.each(Object.keys(operations) as (keyof typeof operations)[])('SIGKILL during %s', (op) => {
  test.each(points[op])('at the crash point %s: nothing half-made is visible and the command succeeds again', async (point) => {
    await trial(op, { point });
  }, 240_000);

  test(`at ${KILLS} random times: the same`, async () => {
    const span = durations[op] as number;
    for (let k = 0; k < KILLS; k++) await trial(op, { afterMs: Math.round(span * (0.02 + 0.96 * random())) });
  }, 600_000);
});

describe.each(['oci', 'chroot'])('SIGKILL during a RUN (%s isolation)', (isolation) => {
  test('the command dies with gantry and leaves no mount', async () => {
    const mark = `gantry-run-${randomBytes(6).toString('hex')}`;
    const dir = path.join(work, `run-${isolation}`);
    const ctx = writeTree(path.join(dir, 'ctx'), { Dockerfile: `FROM fat:1\nRUN echo started; while true; do sleep 1; done # ${mark}\n` });
    const store = path.join(dir, 'store');
    execFileSync('cp', ['-a', baseStore, store]);
    const r = await gantry(store, ['build', '--isolation', isolation, ctx], { GANTRY_CRASH_AT: 'run-started' });
    expect(r.signal, r.stderr).toBe('SIGKILL');
    expect(await waitForNoProcesses(mark), 'the RUN outlived gantry').toEqual([]);
    const tmp = path.join(store, 'tmp');
    expect(mountsUnder(dir).filter((m) => !(m.startsWith(`${tmp}/rootfs-`) && m.endsWith('/merged')))).toEqual([]);
    expectStoreConsistent(store);
    // The next command clears the dead build's rootfs out of the temp area.
    expect(readdirSync(path.join(store, 'tmp')).some((n) => n.startsWith('rootfs-'))).toBe(true);
    expect((await gantry(store, ['images'])).exitCode).toBe(0);
    expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    expect(mountsUnder(dir)).toEqual([]);
  }, 60_000);
});
