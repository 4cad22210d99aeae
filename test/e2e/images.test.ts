import { createReadStream, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { expectValid, isValid } from '../helpers/schemas.js';
import { BUSYBOX, makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-images-'));
const root = path.join(work, 'store');
const gantry = (args: string[], input?: string) =>
  execa(bin, ['--root', root, ...args], { reject: false, env: { NO_COLOR: '1', SOURCE_DATE_EPOCH: '1700000000' }, ...(input !== undefined ? { input } : {}) });

let rootfs: string;
let tgz: string;

beforeAll(() => {
  if (!haveTool('busybox') && !existsSync(BUSYBOX)) throw new Error('busybox-static is required');
  rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  tgz = tarDir(rootfs, path.join(work, 'rootfs.tar.gz'), 'z');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Every blob hashes to its name; every index entry and manifest reference resolves. */
function assertStoreConsistent(): void {
  const blobs = path.join(root, 'blobs', 'sha256');
  for (const hex of readdirSync(blobs)) {
    const sum = createHash('sha256').update(readFileSync(path.join(blobs, hex))).digest('hex');
    expect(sum, `blob ${hex}`).toBe(hex);
  }
  const index = JSON.parse(readFileSync(path.join(root, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  for (const m of index.manifests) {
    const manifest = JSON.parse(readFileSync(path.join(blobs, m.digest.slice(7)), 'utf8')) as { config: { digest: string }; layers: { digest: string }[] };
    for (const d of [manifest.config, ...manifest.layers]) expect(existsSync(path.join(blobs, d.digest.slice(7))), d.digest).toBe(true);
  }
  expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
}

describe('import', () => {
  test.each([
    ['gzip', 'z', '.tar.gz'],
    ['bzip2', 'j', '.tar.bz2'],
    ['xz', 'J', '.tar.xz'],
    ['plain', '', '.tar'],
  ] as const)('a %s rootfs tarball becomes a one-layer image with the same layer', async (_name, flag, ext) => {
    const file = flag === 'z' ? tgz : tarDir(rootfs, path.join(work, `rootfs${ext}`), flag);
    const r = await gantry(['import', file, `busybox:${_name}`, '-c', 'CMD ["sh"]', '-c', 'ENV GREETING=hi']);
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);
    const inspect = JSON.parse((await gantry(['inspect', `busybox:${_name}`])).stdout)[0];
    expect(inspect.Config).toEqual({ Cmd: ['sh'], Env: ['GREETING=hi'] });
    expect(inspect.RootFS.Layers).toHaveLength(1);
    expect(inspect.Created).toBe('2023-11-14T22:13:20.000Z');
  });

  test('the same tarball in any compression gives the same diff ID', async () => {
    const ids = new Set<string>();
    for (const tag of ['gzip', 'bzip2', 'xz', 'plain']) {
      ids.add(JSON.parse((await gantry(['inspect', `busybox:${tag}`])).stdout)[0].RootFS.Layers[0]);
    }
    expect(ids.size).toBe(1);
  });

  test('from standard input, without a name (dangling)', async () => {
    const r = await execa('sh', ['-c', `cat '${tgz}' | '${bin}' --root '${root}' import -`], { reject: false });
    expect(r.exitCode).toBe(0);
    const dangling = await gantry(['images', '--filter', 'dangling=true', '-q']);
    expect(dangling.stdout.trim()).toBe(r.stdout.trim().slice(7, 19));
  });

  test('from an http URL (a loopback server); an HTTP error is reported with the URL', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/rootfs.tar.gz') createReadStream(tgz).pipe(res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const ok = await gantry(['import', `http://127.0.0.1:${port}/rootfs.tar.gz`, 'busybox:url']);
      expect(ok.exitCode, ok.stderr).toBe(0);
      const missing = await gantry(['import', `http://127.0.0.1:${port}/nope.tar`]);
      expect(missing.stderr).toContain(`cannot fetch http://127.0.0.1:${port}/nope.tar: HTTP 404`);
    } finally {
      server.close();
    }
    const a = JSON.parse((await gantry(['inspect', 'busybox:url'])).stdout)[0];
    const b = JSON.parse((await gantry(['inspect', 'busybox:gzip'])).stdout)[0];
    expect(a.RootFS).toEqual(b.RootFS);
  });

  test('bad input: missing file, not a tar, bad --change', async () => {
    const missing = await gantry(['import', path.join(work, 'nope.tar')]);
    expect(missing.stderr).toContain('no such file');
    const notTar = await gantry(['import', '-'], 'this is not a tar archive at all, but it is long enough to be read as one..........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................');
    expect(notTar.exitCode).toBe(1);
    expect(notTar.stderr).toMatch(/not a valid tar archive/);
    const badChange = await gantry(['import', tgz, '-c', 'RUN echo hi']);
    expect(badChange.exitCode).toBe(2);
    expect(badChange.stderr).toContain('RUN is not a config instruction');
    assertStoreConsistent();
  });
});

describe('images, tag, rmi, history', () => {
  test('images lists names with docker-like columns and filters', async () => {
    await gantry(['tag', 'busybox:gzip', 'localhost:5000/team/bb:1.0']);
    const r = await gantry(['images']);
    expect(r.stdout.split('\n')[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(r.stdout).toMatch(/localhost:5000\/team\/bb\s+1\.0\s+[0-9a-f]{12}\s/);
    const filtered = await gantry(['images', '--filter', 'reference=localhost:5000/*/*', '--format', 'json']);
    expect(JSON.parse(filtered.stdout).map((x: { name: string }) => x.name)).toEqual(['localhost:5000/team/bb:1.0']);
    const digests = await gantry(['images', '--digests', 'busybox']);
    expect(digests.stdout).toMatch(/sha256:[0-9a-f]{64}/);
    // --no-trunc is docker's spelling; yargs used to read it as the negation of "trunc" and fail.
    const full = await gantry(['images', '--no-trunc', 'busybox']);
    expect(full.stderr).toBe('');
    expect(full.stdout).toMatch(/\ssha256:[0-9a-f]{64}\s/);
  });

  test('label filter', async () => {
    await gantry(['import', tgz, 'labelled:1', '-c', 'LABEL tier=web']);
    const r = await gantry(['images', '--filter', 'label=tier=web', '--format', 'json']);
    expect(JSON.parse(r.stdout).map((x: { name: string }) => x.name)).toEqual(['docker.io/library/labelled:1']);
  });

  test('history', async () => {
    const r = await gantry(['history', 'busybox:gzip']);
    expect(r.stdout.split('\n')[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(r.stdout).toContain('gantry import');
    const full = await gantry(['history', '--no-trunc', 'busybox:gzip']);
    expect(full.exitCode, full.stderr).toBe(0);
    expect(full.stdout).toMatch(/^sha256:[0-9a-f]{64}\s/m);
  });

  test('rmi untags; the image goes with its last name; by ID needs -f when named twice', async () => {
    const id = JSON.parse((await gantry(['inspect', 'busybox:gzip'])).stdout)[0].Id as string;
    const refused = await gantry(['rmi', id.slice(7, 19)]);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('must be forced');
    const untag = await gantry(['rmi', 'localhost:5000/team/bb:1.0']);
    expect(untag.stdout.trim()).toBe('Untagged: localhost:5000/team/bb:1.0');
    const missing = await gantry(['rmi', 'no-such-image']);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no such image: no-such-image');
    assertStoreConsistent();
  });

  test('an invalid reference is rejected with the reason', async () => {
    const r = await gantry(['tag', 'busybox:gzip', 'Bad/Name']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('invalid reference "Bad/Name": repository name must be lowercase');
  });
});

describe('what gantry writes is valid OCI', () => {
  test('oci-layout, index.json, every manifest and config', () => {
    expectValid('image-layout-schema.json', JSON.parse(readFileSync(path.join(root, 'oci-layout'), 'utf8')), 'oci-layout');
    const index = JSON.parse(readFileSync(path.join(root, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    expectValid('image-index-schema.json', index, 'index.json');
    expect(index.manifests.length).toBeGreaterThan(3);
    for (const m of index.manifests) {
      const manifest = JSON.parse(readFileSync(path.join(root, 'blobs', 'sha256', m.digest.slice(7)), 'utf8')) as { config: { digest: string } };
      expectValid('image-manifest-schema.json', manifest, m.digest);
      const config = JSON.parse(readFileSync(path.join(root, 'blobs', 'sha256', manifest.config.digest.slice(7)), 'utf8'));
      expectValid('config-schema.json', config, manifest.config.digest);
    }
  });

  test('the schemas are not vacuous: a broken manifest fails', () => {
    expect(isValid('image-manifest-schema.json', { schemaVersion: 2, config: { digest: 'x' } })).toBe(false);
  });
});

describe('other tools read the store as it is', () => {
  test('skopeo inspect oci:<store>:<name>', async () => {
    haveTool('skopeo');
    const r = await execa('skopeo', ['inspect', `oci:${root}:docker.io/library/busybox:gzip`], { reject: false });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { Digest: string; Env: string[] };
    const ours = JSON.parse((await gantry(['inspect', 'busybox:gzip'])).stdout)[0];
    expect(out.Digest).toBe(ours.Descriptor.digest);
    expect(out.Env).toEqual(['GREETING=hi']);
  });

  test('umoci unpack gives the rootfs back', async () => {
    haveTool('umoci');
    const bundle = path.join(work, 'bundle');
    const r = await execa('umoci', ['unpack', '--rootless', '--image', `${root}:docker.io/library/busybox:xz`, bundle], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(statSync(path.join(bundle, 'rootfs', 'bin', 'busybox')).size).toBe(statSync(BUSYBOX).size);
    const config = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: { args: string[] } };
    expect(config.process.args).toEqual(['sh']);
  });
});
