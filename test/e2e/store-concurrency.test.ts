import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { writeFileSync, mkdirSync } from 'node:fs';

// Several gantry processes importing, tagging and pruning one store at once must leave it
// consistent: every blob hashes to its name and every reference resolves.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-concurrency-'));
const root = path.join(work, 'store');
const run = (args: string[]) => execa(bin, ['--root', root, ...args], { reject: false });
const tarballs: string[] = [];

beforeAll(() => {
  const base = makeBusyboxRootfs(path.join(work, 'rootfs'));
  for (let i = 0; i < 6; i++) {
    // Six different layers: the same busybox plus a file that differs.
    mkdirSync(path.join(base, 'srv'), { recursive: true });
    writeFileSync(path.join(base, 'srv', 'id'), `image ${i}\n`);
    tarballs.push(tarDir(base, path.join(work, `r${i}.tar.gz`), 'z'));
  }
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

function assertConsistent(): { names: string[] } {
  const blobs = path.join(root, 'blobs', 'sha256');
  for (const hex of readdirSync(blobs)) {
    expect(createHash('sha256').update(readFileSync(path.join(blobs, hex))).digest('hex'), `blob ${hex}`).toBe(hex);
  }
  const index = JSON.parse(readFileSync(path.join(root, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  for (const m of index.manifests) {
    expect(existsSync(path.join(blobs, m.digest.slice(7))), `manifest ${m.digest}`).toBe(true);
    const manifest = JSON.parse(readFileSync(path.join(blobs, m.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [manifest.config, ...manifest.layers]) expect(existsSync(path.join(blobs, d.digest.slice(7))), `${m.digest} → ${d.digest}`).toBe(true);
  }
  expect(readdirSync(path.join(root, 'tmp')), 'temp area after all processes ended').toEqual([]);
  return { names: index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']).filter((n): n is string => !!n) };
}

describe('concurrent use of one store', () => {
  test('imports, tags and prunes at once, three rounds', async () => {
    const expected = new Set<string>();
    for (let round = 0; round < 3; round++) {
      const jobs: Promise<{ exitCode?: number; stderr: string; command: string }>[] = [];
      tarballs.forEach((t, i) => {
        const name = `app${i}:r${round}`;
        expected.add(`docker.io/library/${name}`);
        jobs.push(run(['import', t, name]));
      });
      if (round > 0) {
        for (let i = 0; i < 3; i++) {
          const name = `alias${i}:r${round}`;
          expected.add(`docker.io/library/${name}`);
          jobs.push(run(['tag', `app${i}:r${round - 1}`, name]));
          jobs.push(run(['import', tarballs[i] as string])); // untagged: prune --all may take it
        }
      }
      jobs.push(run(['prune']), run(['prune', '--all']));
      const results = await Promise.all(jobs);
      for (const r of results) expect(r.exitCode, `${r.command}: ${r.stderr}`).toBe(0);
      const { names } = assertConsistent();
      for (const n of expected) expect(names).toContain(n);
    }
  }, 120_000);
});
