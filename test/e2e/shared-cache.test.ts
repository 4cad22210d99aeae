import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// A build's cache shared through a registry, a directory, or the image itself (issue 24): host A
// builds and exports its cache; host B, with a store of its own that starts empty, builds the
// same with --cache-from. RUN steps executed are counted from B's JSON progress.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-shared-cache-'));
let reg: TestRegistry;
let base: string;

const g = (root: string, args: string[], env: Record<string, string> = {}) =>
  execa(bin, ['--root', root, ...args], { reject: false, env: { GANTRY_LOOPBACK_ONLY: '1', ...env } });

/** A store of its own, empty: one host. */
const host = (name: string): string => path.join(mkdtempSync(path.join(work, `${name}-`)), 'store');

/**
 * A multi-stage build's context: a build stage that RUNs twice around a COPY (the same files each
 * time it runs), a final stage that copies its result and RUNs (a new file each time it runs: an
 * image made again without the cache would differ).
 */
function context(src = 'one\n'): string {
  const dir = mkdtempSync(path.join(work, 'ctx-'));
  writeFileSync(path.join(dir, 'src.txt'), src);
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    [
      `FROM ${base} AS build`,
      'RUN echo built > /built',
      'COPY src.txt /src.txt',
      'RUN cat /src.txt /built > /out',
      `FROM ${base}`,
      'COPY --from=build /out /out',
      'RUN cat /proc/sys/kernel/random/uuid > /final',
      'CMD ["cat", "/out"]',
      '',
    ].join('\n'),
  );
  return dir;
}

interface Built {
  id: string;
  /** The RUN steps that ran (not cached), by their text. */
  ran: string[];
  notices: string[];
}

async function build(root: string, ctx: string, args: string[]): Promise<Built> {
  const iid = path.join(work, `iid-${Math.random().toString(36).slice(2)}`);
  const r = await g(root, ['build', '--progress', 'json', '--iidfile', iid, '--insecure-registry', reg.host, ...args, ctx]);
  expect(r.exitCode, r.stderr).toBe(0);
  const events = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: string; name?: string; status?: string; text?: string });
  const ran = events.filter((e) => e.type === 'step' && e.status === 'done' && / RUN /.test(e.name ?? '')).map((e) => (e.name ?? '').replace(/^\[[^\]]*\] /, ''));
  return { id: readFileSync(iid, 'utf8').trim(), ran, notices: events.filter((e) => e.type === 'notice').map((e) => e.text ?? '') };
}

const RUNS = ['RUN echo built > /built', 'RUN cat /src.txt /built > /out', 'RUN cat /proc/sys/kernel/random/uuid > /final'];

beforeAll(async () => {
  const started = await startRegistry();
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  // The base is in the registry, as a fleet's is: every host pulls the same manifest.
  const seed = host('seed');
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  base = `${reg.host}/lib/busybox:1`;
  for (const args of [['import', tarDir(rootfs, path.join(work, 'base.tgz')), 'busybox:1'], ['push', '--insecure-registry', reg.host, 'busybox:1', base]]) {
    const r = await g(seed, args);
    expect(r.exitCode, r.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('--cache-to type=registry, --cache-from', () => {
  test('mode=max: host B runs nothing and makes the same image; after a one-file edit only the steps after it run', async () => {
    const ctx = context();
    const a = await build(host('a'), ctx, ['--cache-to', `type=registry,ref=${reg.host}/cache/app:max,mode=max`, '-t', `${reg.host}/app/max:1`, '--push']);
    expect(a.ran).toEqual(RUNS);
    const bRoot = host('b');
    const b = await build(bRoot, ctx, ['--cache-from', `type=registry,ref=${reg.host}/cache/app:max`]);
    expect(b.ran).toEqual([]);
    expect(b.id).toBe(a.id);
    // The image's files are whole on B (its layers were fetched when the image was written).
    const out = await g(bRoot, ['save', '-o', path.join(work, 'b.tar'), b.id]);
    expect(out.exitCode, out.stderr).toBe(0);
    const edited = context('two\n');
    const again = await build(bRoot, edited, ['--cache-from', `${reg.host}/cache/app:max`]);
    expect(again.ran).toEqual([RUNS[1], RUNS[2]]);
  });

  test('mode=min: the intermediate stage runs again; the final stage is taken from the cache', async () => {
    const ctx = context();
    const a = await build(host('a'), ctx, ['--cache-to', `type=registry,ref=${reg.host}/cache/app:min`]);
    expect(a.ran).toEqual(RUNS);
    const b = await build(host('b'), ctx, ['--cache-from', `type=registry,ref=${reg.host}/cache/app:min`]);
    // The build stage runs again; COPY --from finds the same files in it, and the final stage is a hit.
    expect(b.ran).toEqual([RUNS[0], RUNS[1]]);
    expect(b.id).toBe(a.id);
  });

  test('a cache ref that is missing or unreachable is a notice, and the build goes on', async () => {
    const ctx = context();
    const b = await build(host('b'), ctx, ['--cache-from', `type=registry,ref=${reg.host}/cache/none:1`, '--cache-from', 'type=registry,ref=127.0.0.1:9/cache/x:1']);
    expect(b.ran).toEqual(RUNS);
    expect(b.notices.some((n) => n.includes(`${reg.host}/cache/none:1`) && n.includes('not used'))).toBe(true);
    expect(b.notices.some((n) => n.includes('127.0.0.1:9/cache/x:1') && n.includes('not used'))).toBe(true);
  });
});

describe('--cache-to type=local, --cache-from type=local', () => {
  test('an OCI layout directory carries the cache from A to B', async () => {
    const ctx = context();
    const dir = path.join(work, 'local-cache');
    const a = await build(host('a'), ctx, ['--cache-to', `type=local,dest=${dir},mode=max`]);
    expect(a.ran).toEqual(RUNS);
    expect(readdirSync(dir).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
    // As CI caches move it: a copy, elsewhere.
    const moved = path.join(work, 'local-cache-moved');
    cpSync(dir, moved, { recursive: true });
    const b = await build(host('b'), ctx, ['--cache-from', `type=local,src=${moved}`]);
    expect(b.ran).toEqual([]);
    expect(b.id).toBe(a.id);
  });

  test('a corrupted cache document is a notice and ignored', async () => {
    const ctx = context();
    const dir = path.join(work, 'local-bad');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":"no"}');
    const b = await build(host('b'), ctx, ['--cache-from', `type=local,src=${dir}`]);
    expect(b.ran).toEqual(RUNS);
    expect(b.notices.some((n) => n.includes(`local:${dir}`))).toBe(true);
  });
});

describe('--cache-to type=inline', () => {
  test('the image carries its cache: --cache-from the image runs the final stage from it', async () => {
    const ctx = context();
    const a = await build(host('a'), ctx, ['--cache-to', 'type=inline', '-t', `${reg.host}/app/inline:1`, '--push']);
    expect(a.ran).toEqual(RUNS);
    const b = await build(host('b'), ctx, ['--cache-from', `${reg.host}/app/inline:1`]);
    // Inline is mode=min: the build stage runs again, the final stage is taken from the image.
    expect(b.ran).toEqual([RUNS[0], RUNS[1]]);
    expect(b.id).toBe(a.id);
  });
});

describe('flags', () => {
  test.each([
    ['--cache-to', 'type=gha', 'type=gha is not supported'],
    ['--cache-to', 'type=registry', 'needs ref='],
    ['--cache-to', 'type=registry,ref=r/x:1,mode=all', 'mode=all: expected min or max'],
    ['--cache-to', 'type=registry,ref=r/x:1,colour=blue', 'colour: not known'],
    ['--cache-from', 'type=inline', 'type=inline is for --cache-to'],
    ['--cache-from', 'type=local,src=/x,mode=max', 'mode: not known'],
  ])('%s %s is refused', async (flag, value, message) => {
    const r = await g(host('f'), ['build', flag, value, context()]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(message);
  });
});
