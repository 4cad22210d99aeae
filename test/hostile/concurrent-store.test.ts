import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { makeFatRootfs } from '../helpers/faults.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent, makeVictim } from '../helpers/hostile.js';
import { tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// Two builds and prune on one store at the same time (issue 6, point 17). The builds share
// a base and a first step, and one has a stage whose layer no image keeps; `prune --all` runs back to back for as long as they do, clearing
// the build cache and every blob nothing names. Both builds must succeed every round, with
// the same images as when built alone (so no blob they used was collected or mixed up), and
// the store must be consistent, with fsck finding nothing, after each round.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-concurrent-'));
const store = path.join(work, 'store');
const gantry = (root: string, args: string[]) => execa(bin, ['--root', root, ...args], { reject: false, timeout: 180_000 });
const EPOCH = '1700000000';
const ROUNDS = 4;
const contexts: Record<'a' | 'b', string> = { a: '', b: '' };
const expected: Record<string, string> = {};

const shared = 'RUN echo shared > /shared && cat /data/r1* > /s';
beforeAll(async () => {
  haveTool('runc');
  const fat = makeFatRootfs(path.join(work, 'fat'), { random: 300, small: 800, seed: 'concurrent' });
  const fatTar = tarDir(fat, path.join(work, 'fat.tar'), '');
  contexts.a = writeTree(path.join(work, 'a'), {
    // The gen stage's result is in no image (kept only as a step snapshot, its layers never
    // leave the build): prune --all removes it, unless a build is using it right then.
    Dockerfile: ['FROM fat:1 AS gen', 'RUN cat /data/r2* > /gen && echo only-here > /gen-only', 'FROM fat:1', shared, 'COPY --from=gen /gen /gen', 'COPY files /files', 'RUN echo a > /a && rm -rf /data/text'].join('\n'),
    ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`files/a${i}`, `a ${i}\n`])),
  });
  contexts.b = writeTree(path.join(work, 'b'), {
    Dockerfile: ['FROM fat:1', shared, 'RUN cat /data/r2* > /b', 'COPY files /files'].join('\n'),
    ...Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`files/b${i}`, `b ${i}\n`])),
  });
  // What each build gives alone, in a store of its own.
  const alone = path.join(work, 'alone');
  expect((await gantry(alone, ['import', fatTar, 'fat:1'])).exitCode).toBe(0);
  execFileSync('cp', ['-a', alone, store]); // the same fat:1, before anything was built
  for (const k of ['a', 'b'] as const) {
    const r = await gantry(alone, ['build', '--source-date-epoch', EPOCH, '-t', `${k}:alone`, contexts[k]]);
    expect(r.exitCode, r.stderr).toBe(0);
    expected[k] = JSON.parse((await gantry(alone, ['inspect', `${k}:alone`])).stdout)[0].Id;
  }
}, 180_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('two builds and prune on one store at once', () => {
  test(`${ROUNDS} rounds: both builds succeed with the images they make alone; nothing they use is collected`, async () => {
    const victim = makeVictim(path.join(work, 'victim'));
    let prunes = 0;
    let collected = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      let building = true;
      const builds = Promise.all(
        (['a', 'b'] as const).map((k) =>
          gantry(store, ['build', '--progress', 'plain', '--source-date-epoch', EPOCH, '-t', `${k}:r${round}`, ...(round === ROUNDS ? ['--no-cache'] : []), contexts[k]]),
        ),
      ).finally(() => (building = false));
      const pruning = (async () => {
        while (building) {
          const r = await gantry(store, ['prune', '--all']);
          expect(r.exitCode, r.stderr).toBe(0);
          prunes++;
          collected += Number(/Deleted (\d+) blob/.exec(r.stdout)?.[1] ?? 0) + Number(/Deleted (\d+) step snapshot/.exec(r.stdout)?.[1] ?? 0);
        }
      })();
      const [results] = await Promise.all([builds, pruning]);
      for (const r of results) expect(r.exitCode, `round ${round}: ${r.stderr}`).toBe(0);
      for (const k of ['a', 'b'] as const) {
        const info = JSON.parse((await gantry(store, ['inspect', `${k}:r${round}`])).stdout)[0];
        expect(info.Id, `round ${round}: ${k}`).toBe(expected[k]);
      }
      expectStoreConsistent(store);
      const check = await gantry(store, ['fsck']);
      expect(check.exitCode, check.stdout).toBe(0);
      expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    }
    // The prunes ran while the builds did, and had work: the cache, its snapshots and the untagged leftovers.
    expect(prunes).toBeGreaterThanOrEqual(ROUNDS * 2);
    expect(collected).toBeGreaterThan(0);
    console.log(`concurrent-store: ${ROUNDS} rounds, ${prunes} prunes during the builds, ${collected} blobs and snapshots collected`);
    // Afterwards, every named image is whole and can be exported.
    for (let round = 1; round <= ROUNDS; round++) {
      const out = path.join(work, `a${round}.tar`);
      const r = await gantry(store, ['save', '-o', out, `a:r${round}`]);
      expect(r.exitCode, r.stderr).toBe(0);
      execFileSync('tar', ['-tf', out], { stdio: 'ignore' });
    }
    victim.unchanged();
  }, 600_000);
});
