import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { startFleet, type Fleet } from '../helpers/fleet.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// A build's cache shared through a registry, a directory, or the image itself (issue 24), on a
// fleet: hosts A and B in network namespaces of their own, each reaching only the registry (in
// a namespace of its own too), each with its own store that starts empty. A builds and exports
// its cache; B builds the same with --cache-from. RUN steps executed are counted from B's JSON
// progress.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-shared-cache-'));
let fleet: Fleet;
let reg: { host: string };
let base: string;

/** gantry on the host that owns `root` (a store made by `host`). */
const g = (root: string, args: string[]) => {
  const { command, args: full } = fleet.exec(hostOf.get(root) ?? 'a', bin, ['--root', root, ...args]);
  // The guard against contacting anything but loopback is the host's namespace here: it reaches the registry's and nothing else.
  return execa(command, full, { reject: false, env: { GANTRY_LOOPBACK_ONLY: '0' } });
};

const hostOf = new Map<string, string>();
/** An empty store on host `name` (a or b): a runner as it starts. */
const host = (name: string): string => {
  const root = path.join(mkdtempSync(path.join(work, `${name}-`)), 'store');
  hostOf.set(root, name === 'b' ? 'b' : 'a');
  return root;
};

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
  fleet = await startFleet(['a', 'b']);
  reg = { host: fleet.registry };
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
  await fleet?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('--cache-to type=registry, --cache-from', () => {
  test('mode=max: host B runs nothing and makes the same image; after a one-file edit only the steps after it run', async () => {
    const ctx = context();
    const a = await build(host('a'), ctx, ['--cache-to', `type=registry,ref=${reg.host}/cache/app:max,mode=max`, '-t', `${reg.host}/app/max:1`, '--push']);
    expect(a.ran).toEqual(RUNS);
    const bRoot = host('b');
    // B's checkout is owned by another user (CI runners' users differ): the same keys.
    const bCtx = mkdtempSync(path.join(work, 'ctx-b-'));
    cpSync(ctx, bCtx, { recursive: true });
    execFileSync('chown', ['-R', '1234:1234', bCtx]);
    const b = await build(bRoot, bCtx, ['--cache-from', `type=registry,ref=${reg.host}/cache/app:max`]);
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
    const b = await build(host('b'), ctx, ['--cache-from', `type=registry,ref=${reg.host}/cache/none:1`, '--insecure-registry', '10.231.0.1:9', '--cache-from', 'type=registry,ref=10.231.0.1:9/cache/x:1']);
    expect(b.ran).toEqual(RUNS);
    expect(b.notices.some((n) => n.includes(`${reg.host}/cache/none:1`) && n.includes('not used'))).toBe(true);
    expect(b.notices.some((n) => n.includes('10.231.0.1:9/cache/x:1') && n.includes('not used'))).toBe(true);
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
    const bRoot = host('b');
    const b = await build(bRoot, ctx, ['--cache-from', `type=local,src=${moved}`]);
    expect(b.ran).toEqual([]);
    expect(b.id).toBe(a.id);
    // Only the layers the image needs were taken. The cache's layers, in the order the steps made
    // them: the build stage's RUN and COPY (not taken), its RUN that writes /out (the same layer
    // as the final stage's COPY --from of /out: taken), the final stage's RUN (taken).
    const index = JSON.parse(readFileSync(path.join(moved, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(readFileSync(path.join(moved, 'blobs', 'sha256', (index.manifests[0]?.digest ?? '').slice(7)), 'utf8')) as { layers: { digest: string }[] };
    const inB = manifest.layers.map((l) => readdirSync(path.join(bRoot, 'blobs', 'sha256')).includes(l.digest.slice(7)));
    expect(inB).toEqual([false, false, true, true]);
  });

  test.each([
    ['index.json a FIFO', (dir: string) => execFileSync('mkfifo', [path.join(dir, 'index.json')])],
    ['index.json a link to /dev/zero', (dir: string) => symlinkSync('/dev/zero', path.join(dir, 'index.json'))],
    ['a null manifest', (dir: string) => writeFileSync(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[null]}')],
    ['a manifest with no digest', (dir: string) => writeFileSync(path.join(dir, 'index.json'), '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":2}]}')],
    ['a manifest blob that is missing', (dir: string) => writeFileSync(path.join(dir, 'index.json'), `{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:${'a'.repeat(64)}","size":2}]}`)],
    ['no index.json', () => undefined],
  ])('a layout with %s is a notice, and the build goes on', async (_what, make) => {
    const dir = mkdtempSync(path.join(work, 'hostile-layout-'));
    make(dir);
    const b = await build(host('b'), context(), ['--cache-from', `type=local,src=${dir}`]);
    expect(b.ran).toEqual(RUNS);
    expect(b.notices.some((n) => n.includes(`local:${dir}`) && n.includes('not used'))).toBe(true);
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

/** Every file under `dir`, gzip ones decompressed: what a reader of the cache could read. */
function readable(dir: string): Buffer[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const bytes = readFileSync(path.join(e.parentPath, e.name));
      return bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
    });
}

describe('what a cache holds', () => {
  test('a secret a RUN read, and a build argument it was given, reach no file of the cache', async () => {
    const secret = `s3cr3t-${Math.random().toString(36).slice(2)}`;
    const secretFile = path.join(work, 'secret.txt');
    writeFileSync(secretFile, secret);
    const ctx = mkdtempSync(path.join(work, 'ctx-'));
    writeFileSync(
      path.join(ctx, 'Dockerfile'),
      `FROM ${base}\nARG TOKEN\nRUN --mount=type=secret,id=s wc -c /run/secrets/s > /length\nRUN --mount=type=secret,id=s test "$(cat /run/secrets/s)" = "$(cat /run/secrets/s)" && echo used > /used\n`,
    );
    const dir = path.join(work, 'secret-cache');
    const a = await build(host('a'), ctx, ['--secret', `id=s,src=${secretFile}`, '--build-arg', `TOKEN=${secret}-arg`, '--cache-to', `type=local,dest=${dir},mode=max`]);
    expect(a.ran).toHaveLength(2);
    const files = readable(dir);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      expect(f.includes(secret)).toBe(false);
    }
  });

  test('a layer that is not what the cache says it is fails the build, naming the cache; nothing of it is kept', async () => {
    const ctx = context();
    const dir = path.join(work, 'lying-cache');
    const a = await build(host('a'), ctx, ['--cache-to', `type=local,dest=${dir},mode=max`]);
    expect(a.ran).toEqual(RUNS);
    // The document says another diff ID for its first layer: its digest still holds, its content does not.
    const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; size: number }[] };
    const manifestFile = path.join(dir, 'blobs', 'sha256', (index.manifests[0]?.digest ?? '').slice(7));
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as { config: { digest: string; size: number } };
    const doc = JSON.parse(readFileSync(path.join(dir, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8')) as { diffIds: string[] };
    doc.diffIds = doc.diffIds.map((d, i) => (i === 0 ? `sha256:${'0'.repeat(64)}` : d));
    const put = (bytes: Buffer): { digest: string; size: number } => {
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      writeFileSync(path.join(dir, 'blobs', 'sha256', digest.slice(7)), bytes);
      return { digest, size: bytes.length };
    };
    manifest.config = { ...manifest.config, ...put(Buffer.from(JSON.stringify(doc))) };
    const m = put(Buffer.from(JSON.stringify(manifest)));
    writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ ...index, manifests: [{ ...index.manifests[0], ...m }] }));
    const bRoot = host('b');
    const iid = path.join(work, 'lying-iid');
    const { command, args } = fleet.exec('b', bin, ['--root', bRoot, 'build', '--iidfile', iid, '--insecure-registry', reg.host, '--cache-from', `type=local,src=${dir}`, ctx]);
    const r = await execa(command, args, { reject: false, env: { GANTRY_LOOPBACK_ONLY: '0' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`of the cache local:${dir}: its content has diff ID`);
    // Nothing was named, and the store is consistent.
    const images = await g(bRoot, ['images', '-q']);
    expect(images.stdout.trim()).toBe((await g(bRoot, ['images', '-q', base])).stdout.trim());
    expect((await g(bRoot, ['fsck'])).exitCode).toBe(0);
    // Nothing of that cache was kept: the next build on B, without it, runs every step.
    expect((await build(bRoot, ctx, [])).ran).toEqual(RUNS);
  });
});

describe('--cache-to type=inline', () => {
  test('the image carries its cache: --cache-from the image runs the final stage from it', async () => {
    const ctx = context();
    const aRoot = host('a');
    const a = await build(aRoot, ctx, ['--cache-to', 'type=inline', '-t', `${reg.host}/app/inline:1`, '--push']);
    expect(a.ran).toEqual(RUNS);
    const bRoot = host('b');
    const b = await build(bRoot, ctx, ['--cache-from', `${reg.host}/app/inline:1`, '--cache-to', 'type=inline']);
    // Inline is mode=min: the build stage runs again, the final stage is taken from the image,
    // and the image is the same (its config carries the same cache).
    expect(b.ran).toEqual([RUNS[0], RUNS[1]]);
    expect(b.id).toBe(a.id);
    // Without --cache-to type=inline, B's config has no cache: its last layer is still A's.
    const c = await build(host('b'), ctx, ['--cache-from', `${reg.host}/app/inline:1`]);
    expect(c.ran).toEqual([RUNS[0], RUNS[1]]);
    const layers = async (root: string, id: string) => (JSON.parse((await g(root, ['inspect', id])).stdout)[0] as { RootFS: { Layers: string[] } }).RootFS.Layers;
    expect((await layers(bRoot, b.id)).at(-1)).toBe((await layers(aRoot, a.id)).at(-1));
    // An image built FROM one that carries its cache does not carry the base's.
    const derived = mkdtempSync(path.join(work, 'ctx-'));
    writeFileSync(path.join(derived, 'Dockerfile'), `FROM ${reg.host}/app/inline:1\nENV DERIVED=1\n`);
    const d = await build(bRoot, derived, []);
    const derivedConfig = JSON.parse(readFileSync(path.join(bRoot, 'blobs', 'sha256', d.id.slice(7)), 'utf8')) as Record<string, unknown>;
    expect(derivedConfig['gantry.cache.v1']).toBeUndefined();
    // The cache is the config's gantry.cache.v1 field, its layers the image's own.
    const config = JSON.parse(readFileSync(path.join(aRoot, 'blobs', 'sha256', a.id.slice(7)), 'utf8')) as Record<string, { entries: unknown[]; diffIds: string[] }>;
    expect(config['gantry.cache.v1']?.diffIds).toEqual(await layers(aRoot, a.id));
    expect(config['gantry.cache.v1']?.entries.length).toBeGreaterThan(0);
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
