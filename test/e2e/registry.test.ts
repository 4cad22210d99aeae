import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';
import { Store } from '../../src/store/store.js';

// (a) anonymous over HTTP, against Debian's docker-registry on a loopback port.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-reg-'));
const root = path.join(work, 'store');
const g = (store: string, args: string[]) => execa(bin, ['--root', store, ...args], { reject: false });
const fresh = () => path.join(mkdtempSync(path.join(work, 's-')), 'store');
let reg: TestRegistry;

beforeAll(async () => {
  const started = await startRegistry();
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  expect((await g(root, ['import', tarDir(rootfs, path.join(work, 'base.tgz')), 'base:1'])).exitCode).toBe(0);
  // A second, different image: the same rootfs plus one more file.
  writeFileSync(path.join(rootfs, 'etc', 'motd'), 'second\n');
  expect((await g(root, ['import', tarDir(rootfs, path.join(work, 'second.tgz')), 'second:1'])).exitCode).toBe(0);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

const inspect = async (store: string, ref: string) => JSON.parse((await g(store, ['inspect', ref])).stdout)[0];

describe('push and pull, anonymous over HTTP', () => {
  test('push, then pull into an empty store: identical digests', async () => {
    const push = await g(root, ['push', 'base:1', `${reg.host}/team/base:1`]);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stdout).toMatch(/: uploaded/);
    const store = fresh();
    const pull = await g(store, ['pull', `${reg.host}/team/base:1`]);
    expect(pull.exitCode, pull.stderr).toBe(0);
    const a = await inspect(root, 'base:1');
    const b = await inspect(store, `${reg.host}/team/base:1`);
    expect(b.Descriptor.digest).toBe(a.Descriptor.digest);
    expect(b.Id).toBe(a.Id);
    expect(pull.stdout).toContain(`Digest: ${a.Descriptor.digest}`);
  });

  test('pushing again skips blobs the registry has; another repository gets them mounted', async () => {
    const again = await g(root, ['push', 'base:1', `${reg.host}/team/base:2`]);
    expect(again.stdout.match(/: exists/g)).toHaveLength(2);
    expect(again.stdout).not.toMatch(/uploaded|mounted/);
    await g(root, ['tag', 'base:1', `${reg.host}/team/base:1`]);
    const other = await g(root, ['push', `${reg.host}/team/base:1`, `${reg.host}/other/base:1`]);
    expect(other.stdout.match(/: mounted/g)).toHaveLength(2);
  });

  test('pull by digest, and a pull of what the store has fetches no blob again', async () => {
    const digest = (await inspect(root, 'base:1')).Descriptor.digest;
    const store = fresh();
    expect((await g(store, ['pull', `${reg.host}/team/base@${digest}`])).exitCode).toBe(0);
    const again = await g(store, ['pull', `${reg.host}/team/base:1`]);
    expect(again.exitCode).toBe(0);
    expect(again.stdout.match(/Already exists/g)).toHaveLength(2);
    expect(again.stdout).not.toContain('Pull complete');
  });

  test('interop: skopeo reads what gantry pushed; gantry pulls what skopeo pushed', async () => {
    haveTool('skopeo');
    await g(root, ['push', 'second:1', `${reg.host}/team/second:1`]);
    const sk = JSON.parse((await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/team/second:1`])).stdout);
    expect(sk.Digest).toBe((await inspect(root, 'second:1')).Descriptor.digest);
    const layout = path.join(work, 'sk-layout');
    await execa('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${reg.host}/team/second:1`, `oci:${layout}:x`]);
    expect(existsSync(path.join(layout, 'index.json'))).toBe(true);
    await execa('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${root}:docker.io/library/base:1`, `docker://${reg.host}/fromskopeo/base:7`]);
    const skd = JSON.parse((await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/fromskopeo/base:7`])).stdout);
    const store = fresh();
    expect((await g(store, ['pull', `${reg.host}/fromskopeo/base:7`])).exitCode).toBe(0);
    const ours = await inspect(store, `${reg.host}/fromskopeo/base:7`);
    expect(ours.Descriptor.digest).toBe(skd.Digest);
    expect(ours.RootFS.Layers).toEqual((await inspect(root, 'base:1')).RootFS.Layers);
  });

  test('a blob altered in the registry storage: the pull fails naming the digest, the store holds nothing of it', async () => {
    const a = await inspect(root, 'second:1');
    const manifestPath = path.join(root, 'blobs', 'sha256', a.Descriptor.digest.slice(7));
    const manifest = JSON.parse((await execa('cat', [manifestPath])).stdout) as { layers: { digest: string }[] };
    const layer = manifest.layers[0]?.digest as string;
    await g(root, ['push', 'second:1', `${reg.host}/tamper/second:1`]);
    const dataFile = path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', layer.slice(7, 9), layer.slice(7), 'data');
    writeFileSync(dataFile, Buffer.alloc(1000, 'x'));
    const store = fresh();
    const pull = await g(store, ['pull', `${reg.host}/tamper/second:1`]);
    expect(pull.exitCode).toBe(1);
    expect(pull.stderr).toContain(layer);
    expect(existsSync(path.join(store, 'blobs', 'sha256', layer.slice(7)))).toBe(false);
    expect(readdirSync(path.join(store, 'tmp'))).toEqual([]);
    expect(JSON.parse((await g(store, ['images', '--format', 'json'])).stdout)).toEqual([]);
  });

  test('--registry-mirror serves docker.io names from a mirror; the image keeps its docker.io name', async () => {
    await g(root, ['push', 'base:1', `${reg.host}/library/base:1`]);
    const store = fresh();
    const r = await g(store, ['pull', '--registry-mirror', `http://${reg.host}`, 'base:1']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('Pulled: base:1');
    const names = JSON.parse((await g(store, ['images', '--format', 'json'])).stdout).map((x: { name: string }) => x.name);
    expect(names).toEqual(['docker.io/library/base:1']);
  });

  test('a multi-platform index: pushed with its images, pulled per platform, a missing platform listed', async () => {
    // A third image of its own (the tamper test spoils the registry's copy of second's layer).
    writeFileSync(path.join(work, 'rootfs', 'etc', 'motd'), 'third\n');
    expect((await g(root, ['import', tarDir(path.join(work, 'rootfs'), path.join(work, 'third.tgz')), 'third:1'])).exitCode).toBe(0);
    const store = await Store.open(root);
    const amd = (await inspect(root, 'base:1')).Descriptor;
    const arm = (await inspect(root, 'third:1')).Descriptor;
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { ...amd, annotations: undefined, platform: { os: 'linux', architecture: 'amd64' } },
        { ...arm, annotations: undefined, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      ],
    };
    const blob = await store.writeJSON(index);
    await store.tag('docker.io/library/multi:1', { mediaType: index.mediaType, digest: blob.digest, size: blob.size });
    await store.releaseLease();
    const push = await g(root, ['push', 'multi:1', `${reg.host}/team/multi:1`]);
    expect(push.exitCode, push.stderr).toBe(0);
    expect(push.stdout).toContain(`digest: ${blob.digest}`);
    const s1 = fresh();
    const arm64 = await g(s1, ['pull', '--platform', 'linux/arm64', `${reg.host}/team/multi:1`]);
    expect(arm64.exitCode, arm64.stderr).toBe(0);
    expect(arm64.stdout).toContain(`Digest: ${blob.digest}`);
    expect((await inspect(s1, `${reg.host}/team/multi:1`)).Descriptor.digest).toBe(arm.digest);
    const none = await g(fresh(), ['pull', '--platform', 'linux/s390x', `${reg.host}/team/multi:1`]);
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toContain('has no image for linux/s390x (it has: linux/amd64, linux/arm64/v8)');
  });

  test('build --push sends the built image to the registry', async () => {
    const name = `${reg.host}/built/hello:1`;
    // The example builds FROM busybox:latest: give the store one, so nothing leaves loopback.
    expect((await g(root, ['tag', 'base:1', 'busybox:latest'])).exitCode).toBe(0);
    const r = await g(root, ['build', '--push', '-t', name, path.join(projectRoot, 'examples', 'hello')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const store = fresh();
    expect((await g(store, ['pull', name])).exitCode).toBe(0);
    // The same image (config digest, layers' diff IDs); what went up has gzip layers under a
    // manifest of its own, while the builder's store keeps its layers uncompressed.
    const pulled = await inspect(store, name);
    const built = await inspect(root, name);
    expect(pulled.Id).toBe(built.Id);
    expect(pulled.RootFS.Layers).toEqual(built.RootFS.Layers);
    const manifest = JSON.parse(readFileSync(path.join(store, 'blobs', 'sha256', pulled.Descriptor.digest.slice(7)), 'utf8')) as { layers: { mediaType: string }[] };
    expect(new Set(manifest.layers.map((l) => l.mediaType))).toEqual(new Set(['application/vnd.oci.image.layer.v1.tar+gzip']));
    // A second push of the same image reuses the compressed blobs: the same manifest.
    const again = await g(root, ['push', name, `${reg.host}/built/hello:2`]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toContain(pulled.Descriptor.digest);
  });

  test('an unknown image is a clear error with the URL', async () => {
    const r = await g(fresh(), ['pull', `${reg.host}/nope/nothing:1`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`http://${reg.host}/v2/nope/nothing/manifests/1: 404`);
  });
});
