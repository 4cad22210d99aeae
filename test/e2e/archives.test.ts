import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';
import { expectValid } from '../helpers/schemas.js';

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-archives-'));
const root = path.join(work, 'store');
const g = (store: string, args: string[], input?: string | Buffer) =>
  execa(bin, ['--root', store, ...args], { reject: false, encoding: 'utf8', ...(input !== undefined ? { input } : {}) });
const gantry = (args: string[], input?: string | Buffer) => g(root, args, input);
const inspect = async (store: string, ref: string) => JSON.parse((await g(store, ['inspect', ref])).stdout)[0];
const fresh = () => path.join(mkdtempSync(path.join(work, 's-')), 'store');

beforeAll(async () => {
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  const r = await gantry(['import', tarDir(rootfs, path.join(work, 'rootfs.tgz'), 'z'), 'busybox:base', '-c', 'CMD ["sh"]']);
  expect(r.exitCode, r.stderr).toBe(0);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Store contents before and after a failed load must be identical. */
function snapshot(store: string): string {
  const blobs = readdirSync(path.join(store, 'blobs', 'sha256')).sort();
  return JSON.stringify({ blobs, index: readFileSync(path.join(store, 'index.json'), 'utf8'), tmp: readdirSync(path.join(store, 'tmp')) });
}

describe('save', () => {
  test('into a directory that does not exist: an error that names it, no stack trace', async () => {
    const r = await gantry(['save', 'busybox:base', '-o', path.join(work, 'missing-dir', 'out.tar')]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`cannot write ${path.join(work, 'missing-dir', 'out.tar')}: ${path.join(work, 'missing-dir')} does not exist`);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });

  test('--format docker is read by skopeo as a docker-archive', async () => {
    haveTool('skopeo');
    const file = path.join(work, 'docker.tar');
    expect((await gantry(['save', '-o', file, 'busybox:base'])).exitCode).toBe(0);
    const sk = JSON.parse((await execa('skopeo', ['inspect', `docker-archive:${file}`])).stdout);
    const ours = await inspect(root, 'busybox:base');
    expect(sk.Layers).toHaveLength(1);
    expect(sk.Env ?? undefined).toEqual(ours.Config.Env);
    const list = await execa('tar', ['tf', file]);
    expect(list.stdout.split('\n')).toEqual(expect.arrayContaining(['manifest.json', 'repositories', 'index.json', 'oci-layout']));
  });

  test('--format oci is read by skopeo as an oci-archive with the same manifest', async () => {
    haveTool('skopeo');
    const file = path.join(work, 'oci.tar');
    expect((await gantry(['save', '--format', 'oci', '-o', file, 'busybox:base'])).exitCode).toBe(0);
    // ref.name is the tag, as docker save and BuildKit write it (the full name is io.containerd.image.name).
    const sk = JSON.parse((await execa('skopeo', ['inspect', `oci-archive:${file}:base`])).stdout);
    expect(sk.Digest).toBe((await inspect(root, 'busybox:base')).Descriptor.digest);
  });

  test('the same image saves to the same bytes', async () => {
    const a = path.join(work, 'a.tar');
    const b = path.join(work, 'b.tar');
    await gantry(['save', '-o', a, 'busybox:base']);
    await gantry(['save', '-o', b, 'busybox:base']);
    expect(readFileSync(a).equals(readFileSync(b))).toBe(true);
  });
});

describe('archives gantry writes are valid OCI layouts', () => {
  test.each(['docker', 'oci'])('%s format: oci-layout, index.json, manifests and configs', async (format) => {
    const file = path.join(work, `schema-${format}.tar`);
    await gantry(['save', '--format', format, '-o', file, 'busybox:base']);
    const out = mkdtempSync(path.join(work, 'x-'));
    await execa('tar', ['xf', file, '-C', out]);
    expectValid('image-layout-schema.json', JSON.parse(readFileSync(path.join(out, 'oci-layout'), 'utf8')), 'oci-layout');
    const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expectValid('image-index-schema.json', index, 'index.json');
    for (const m of index.manifests) {
      const manifest = JSON.parse(readFileSync(path.join(out, 'blobs', 'sha256', m.digest.slice(7)), 'utf8')) as { config: { digest: string } };
      expectValid('image-manifest-schema.json', manifest, m.digest);
      expectValid('config-schema.json', JSON.parse(readFileSync(path.join(out, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8')), 'config');
    }
  });
});

describe('load', () => {
  test.each(['docker', 'oci'])('a %s archive from gantry save loads into an empty store with the same image', async (format) => {
    const file = path.join(work, `rt-${format}.tar`);
    await gantry(['save', '--format', format, '-o', file, 'busybox:base']);
    const store = fresh();
    const r = await g(store, ['load', '-i', file]);
    expect(r.stdout.trim()).toBe('Loaded image: busybox:base');
    const before = await inspect(root, 'busybox:base');
    const after = await inspect(store, 'busybox:base');
    expect(after.Id).toBe(before.Id);
    expect(after.Descriptor.digest).toBe(before.Descriptor.digest);
  });

  test('gzip-compressed archives and standard input', async () => {
    const file = path.join(work, 'rt-docker.tar');
    const gz = path.join(work, 'rt.tar.gz');
    await execa('sh', ['-c', `gzip -c '${file}' > '${gz}'`]);
    const store = fresh();
    const r = await execa('sh', ['-c', `'${bin}' --root '${store}' load < '${gz}'`], { reject: false });
    expect(r.stdout.trim()).toBe('Loaded image: busybox:base');
  });

  test.each([
    ['docker-archive', 'busybox:sk-docker'],
    ['oci-archive', 'busybox:sk-oci'],
  ])('an image skopeo copied to %s loads with the same layer digests', async (transport, name) => {
    haveTool('skopeo');
    const file = path.join(work, `${transport}.tar`);
    rmSync(file, { force: true });
    await execa('skopeo', ['copy', '-q', `oci:${root}:docker.io/library/busybox:base`, `${transport}:${file}:${name}`]);
    const skLayers = JSON.parse((await execa('skopeo', ['inspect', `${transport}:${file}${transport === 'oci-archive' ? `:${name}` : ''}`])).stdout).Layers;
    const store = fresh();
    const r = await g(store, ['load', '-i', file]);
    expect(r.exitCode, r.stderr).toBe(0);
    const loaded = await inspect(store, name);
    const manifest = JSON.parse(readFileSync(path.join(store, 'blobs', 'sha256', loaded.Descriptor.digest.slice(7)), 'utf8'));
    expect(manifest.layers.map((l: { digest: string }) => l.digest)).toEqual(skLayers);
    expect(loaded.Id).toBe((await inspect(root, 'busybox:base')).Id);
  });
});

async function archive(entries: { name: string; body?: string | Buffer }[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) pack.entry({ name: e.name }, e.body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('bad archives get a clear error and change nothing', () => {
  let good: Buffer;
  beforeAll(async () => {
    good = readFileSync(path.join(work, 'rt-oci.tar'));
  });

  const cases: [string, () => Buffer | Promise<Buffer>, RegExp][] = [
    ['truncated', () => good.subarray(0, Math.floor(good.length / 2)), /not a valid tar archive|metadata|is not in the archive|neither/],
    ['garbage', () => Buffer.alloc(4096, 'garbage!'), /not a valid tar archive|neither a docker archive/],
    ['a member named ../x', () => archive([{ name: '../x', body: 'x' }]), /archive member "\.\.\/x" escapes the root/],
    ['a member named /etc/x', () => archive([{ name: '/etc/x', body: 'x' }]), /archive member "\/etc\/x" escapes the root/],
    [
      'an unknown media type',
      () =>
        archive([
          { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
          { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/x-unknown', digest: 'sha256:' + '0'.repeat(64), size: 1 }] }) },
        ]),
      /unknown media type "application\/x-unknown"/,
    ],
    [
      'a blob whose content does not match its name',
      () => archive([{ name: 'oci-layout', body: '{}' }, { name: `blobs/sha256/${'a'.repeat(64)}`, body: 'not that' }]),
      new RegExp(`blob sha256:${'a'.repeat(64)}`),
    ],
  ];

  test.each(cases)('%s', async (_name, make, message) => {
    const before = snapshot(root);
    const r = await gantry(['load'], await make());
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(message);
    expect(snapshot(root)).toBe(before);
  });

  test('a missing file', async () => {
    const r = await gantry(['load', '-i', path.join(work, 'nope.tar')]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('no such file');
  });
});

describe('export', () => {
  test('the flattened rootfs of an image', async () => {
    const file = path.join(work, 'export.tar');
    expect((await gantry(['export', 'busybox:base', '-o', file])).exitCode).toBe(0);
    const names = (await execa('tar', ['tf', file])).stdout.split('\n');
    expect(names).toEqual(expect.arrayContaining(['bin/', 'bin/busybox', 'bin/sh', 'etc/passwd']));
    expect(statSync(file).size).toBeGreaterThan(1_000_000);
  });
});
