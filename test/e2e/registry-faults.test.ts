import { createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readArchive } from '../../src/archive/read.js';
import { saveImages } from '../../src/archive/save.js';
import { RegistryClient } from '../../src/registry/client.js';
import type { Image } from '../../src/image/image.js';
import { remoteImage } from '../../src/registry/image.js';
import { pushImage } from '../../src/registry/push.js';
import { pullImage } from '../../src/registry/pull.js';
import { Store } from '../../src/store/store.js';
import { projectRoot } from '../helpers/conformance.js';
import { serveLoopback } from '../helpers/http.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// Faults between gantry and a registry, with loopback servers the test controls.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-regf-'));
const root = path.join(work, 'store');
let reg: TestRegistry;
let digest: string;
let layer: string;
const servers: Server[] = [];

async function listen(handler: (req: IncomingMessage, res: import('node:http').ServerResponse) => void): Promise<string> {
  const { host, server } = await serveLoopback(handler);
  servers.push(server);
  return host;
}

beforeAll(async () => {
  const started = await startRegistry();
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  await execa(bin, ['--root', root, 'import', tarDir(rootfs, path.join(work, 'base.tgz')), 'base:1']);
  await execa(bin, ['--root', root, 'push', 'base:1', `${reg.host}/f/base:1`]);
  const info = JSON.parse((await execa(bin, ['--root', root, 'inspect', 'base:1'])).stdout)[0];
  digest = info.Descriptor.digest;
  layer = JSON.parse(readFileSync(path.join(root, 'blobs', 'sha256', digest.slice(7)), 'utf8')).layers[0].digest;
}, 60_000);

afterAll(async () => {
  for (const s of servers) s.close();
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A proxy to the real registry that misbehaves once on the layer blob. */
async function faultyProxy(fault: '500' | '429' | 'drop' | 'drop, then no ranges'): Promise<{ host: string; faults: () => number; ranges: string[] }> {
  let faults = 0;
  const ranges: string[] = [];
  const host = await listen((req, res) => {
    const isLayer = req.method === 'GET' && req.url?.endsWith(`/blobs/${layer}`);
    if (isLayer && typeof req.headers.range === 'string') ranges.push(req.headers.range);
    if (isLayer && faults === 0 && (fault === '500' || fault === '429')) {
      faults++;
      if (fault === '429') res.writeHead(429, { 'retry-after': '1' }).end('slow down');
      else res.writeHead(500).end('boom');
      return;
    }
    // A registry that ignores Range: the whole blob again.
    const { range: _range, ...whole } = req.headers;
    const headers = fault === 'drop, then no ranges' ? whole : req.headers;
    const up = httpRequest({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (isLayer && faults === 0 && fault.startsWith('drop')) {
        faults++;
        let sent = 0;
        r.on('data', (chunk: Buffer) => {
          if (sent > 100_000) return;
          sent += chunk.length;
          res.write(chunk);
          // Let what was sent reach the client, then cut the connection.
          if (sent > 100_000) setTimeout(() => res.socket?.destroy(), 200);
        });
        return;
      }
      r.pipe(res);
    });
    req.pipe(up);
  });
  return { host, faults: () => faults, ranges };
}

describe('faults on the way', () => {
  test.each(['500', '429', 'drop'] as const)('the registry answers %s once mid-pull: the pull still succeeds', async (fault) => {
    const proxy = await faultyProxy(fault);
    const store = await Store.open(path.join(mkdtempSync(path.join(work, 's-')), 'store'));
    const client = new RegistryClient(proxy.host, { backoffMs: 20 });
    const r = await pullImage(client, store, `${proxy.host}/f/base:1`);
    await client.close();
    await store.releaseLease();
    expect(proxy.faults()).toBe(1);
    expect(r.descriptor.digest).toBe(digest);
    expect(await store.hasBlob(layer)).toBe(true);
    // After a drop the download resumes where it stopped.
    if (fault === 'drop') expect(proxy.ranges).toEqual([expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
    else expect(proxy.ranges).toEqual([]);
  });

  test('a redirect to another host does not carry the Authorization header', async () => {
    const seen: (string | undefined)[] = [];
    const blobHost = await listen((req, res) => {
      seen.push(req.headers.authorization);
      const p = path.join(root, 'blobs', 'sha256', (req.url ?? '').split('/').pop() ?? '');
      res.writeHead(200).end(readFileSync(p));
    });
    const registryHost = await listen((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="test"' }).end();
        return;
      }
      const m = /\/(manifests|blobs)\/(.+)$/.exec(req.url ?? '');
      if (m?.[1] === 'manifests') {
        const body = readFileSync(path.join(root, 'blobs', 'sha256', digest.slice(7)));
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(body);
      } else if (m?.[1] === 'blobs') {
        res.writeHead(307, { location: `http://${blobHost}/storage/${m[2]?.slice(7)}` }).end();
      } else res.writeHead(200).end('{}');
    });
    const store = await Store.open(path.join(mkdtempSync(path.join(work, 's-')), 'store'));
    const client = new RegistryClient(registryHost, { credentials: () => ({ username: 'u', password: 'p' }) });
    const r = await pullImage(client, store, `${registryHost}/x/base:1`);
    await client.close();
    await store.releaseLease();
    expect(r.descriptor.digest).toBe(digest);
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(seen.every((a) => a === undefined)).toBe(true);
  });

  test.each([
    ['schema 1', 'application/vnd.docker.distribution.manifest.v1+prettyjws', '{"schemaVersion":1,"fsLayers":[]}', 'Docker schema 1, which gantry does not support'],
    ['both index and manifest', 'application/vnd.oci.image.manifest.v1+json', '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"manifests":[],"config":{}}', 'claims to be both an index and a manifest'],
    ['a content type that disagrees', 'application/vnd.oci.image.index.v1+json', '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[],"config":{}}', 'disagrees with mediaType'],
    ['an unknown media type', 'application/x-what', '{"schemaVersion":2,"mediaType":"application/x-what","layers":[]}', 'unsupported media type "application/x-what"'],
    ['a huge manifest', 'application/vnd.oci.image.manifest.v1+json', 'x'.repeat(5 * 1024 * 1024), 'larger than 4194304 bytes'],
  ])('a manifest with %s is refused and nothing is stored', async (_name, type, body, message) => {
    const host = await listen((_req, res) => res.writeHead(200, { 'content-type': type }).end(body));
    const root2 = path.join(mkdtempSync(path.join(work, 's-')), 'store');
    const store = await Store.open(root2);
    const client = new RegistryClient(host);
    await expect(pullImage(client, store, `${host}/x/y:1`)).rejects.toThrow(message);
    await client.close();
    expect(await store.entries()).toEqual([]);
  });

  test('a manifest that is not what its digest says is refused', async () => {
    const host = await listen((req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end('{"schemaVersion":2,"layers":[],"config":{}}');
    });
    const store = await Store.open(path.join(mkdtempSync(path.join(work, 's-')), 'store'));
    const client = new RegistryClient(host);
    await expect(pullImage(client, store, `${host}/x/y@${digest}`)).rejects.toThrow(`expected ${digest}`);
    await client.close();
  });
});

/** A proxy to the real registry that records each request (method, path, chunked or not) and can refuse PATCH. */
async function recordingProxy(options: { refusePatch?: boolean } = {}): Promise<{ host: string; seen: { method: string; url: string; chunked: boolean }[] }> {
  const seen: { method: string; url: string; chunked: boolean }[] = [];
  const host = await listen((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', chunked: req.headers['transfer-encoding'] === 'chunked' });
    if (options.refusePatch && req.method === 'PATCH') {
      req.resume();
      res.writeHead(405).end('no chunked uploads here');
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    req.pipe(up);
  });
  return { host, seen };
}

describe('pushing a layer built here (compressed on the way)', () => {
  const built = async (name: string) => {
    const ctx = mkdtempSync(path.join(work, 'ctx-'));
    // Enough bytes that the layer takes several gzip members.
    await execa('sh', ['-c', `head -c 9000000 /dev/urandom > '${ctx}/blob' && printf 'FROM base:1\\nCOPY blob /blob\\n' > '${ctx}/Dockerfile'`]);
    const b = await execa(bin, ['--root', root, 'build', '--progress', 'plain', '-t', name, ctx], { reject: false });
    expect(b.exitCode, b.stderr).toBe(0);
    const info = JSON.parse((await execa(bin, ['--root', root, 'inspect', name])).stdout)[0] as { RootFS: { Layers: string[] } };
    return info.RootFS.Layers;
  };
  const pulledBack = async (ref: string) => {
    const other = path.join(mkdtempSync(path.join(work, 'back-')), 'store');
    const p = await execa(bin, ['--root', other, 'pull', ref], { reject: false });
    expect(p.exitCode, p.stderr).toBe(0);
    return (JSON.parse((await execa(bin, ['--root', other, 'inspect', ref])).stdout)[0] as { RootFS: { Layers: string[] } }).RootFS.Layers;
  };

  test('is uploaded while it is compressed (one chunked PATCH, then PUT with the digest); the base is mounted from where it came; it pulls back the same', async () => {
    const layers = await built('streamed:1');
    const proxy = await recordingProxy();
    // base:1 was pushed to f/base on this registry: its layer is mounted from there, not uploaded.
    await execa(bin, ['--root', root, 'tag', 'base:1', `${proxy.host}/f/base:1`]);
    const r = await execa(bin, ['--root', root, 'push', 'streamed:1', `${proxy.host}/s/streamed:1`], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const patches = proxy.seen.filter((s) => s.method === 'PATCH' && s.url.startsWith('/v2/s/streamed/blobs/uploads/'));
    expect(patches).toHaveLength(1);
    expect(patches[0]?.chunked).toBe(true);
    expect(proxy.seen.some((s) => s.method === 'PUT' && /\/v2\/s\/streamed\/blobs\/uploads\/.*[?&]digest=sha256%3A/.test(s.url))).toBe(true);
    expect(proxy.seen.filter((s) => s.method === 'POST' && s.url.includes('mount=') && s.url.includes('from=f%2Fbase'))).toHaveLength(1);
    expect(r.stdout).toMatch(new RegExp(`${layer.slice(7, 19)}: mounted`));
    expect(await pulledBack(`${reg.host}/s/streamed:1`)).toEqual(layers);
  }, 60_000);

  test('a registry that refuses chunked uploads gets the blob whole afterwards', async () => {
    const layers = await built('refused:1');
    const proxy = await recordingProxy({ refusePatch: true });
    const r = await execa(bin, ['--root', root, 'push', 'refused:1', `${proxy.host}/s/refused:1`], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(proxy.seen.some((s) => s.method === 'PATCH')).toBe(true);
    // The monolithic upload: a PUT with the digest and the body, after a POST of its own.
    expect(proxy.seen.filter((s) => s.method === 'PUT' && s.url.includes('/blobs/uploads/')).length).toBeGreaterThanOrEqual(1);
    expect(await pulledBack(`${reg.host}/s/refused:1`)).toEqual(layers);
    const again = await execa(bin, ['--root', root, 'push', 'refused:1', `${reg.host}/s/refused:1`], { reject: false });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toMatch(/uploaded/); // all there already
  }, 60_000);
});

/** A proxy to the real registry that flips a byte of every layer blob it passes on. */
async function corruptingProxy(): Promise<string> {
  return listen((req, res) => {
    const isLayer = req.method === 'GET' && req.url?.endsWith(`/blobs/${layer}`);
    const up = httpRequest({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      let first = true;
      r.on('data', (chunk: Buffer) => {
        if (isLayer && first) chunk.writeUInt8(chunk.readUInt8(chunk.length - 1) ^ 0xff, chunk.length - 1);
        first = false;
        res.write(chunk);
      });
      r.on('end', () => res.end());
    });
    req.pipe(up);
  });
}

describe('an image read from a registry, with no store', () => {
  test('goes to an archive and to another repository byte for byte; no store is opened', async () => {
    const client = new RegistryClient(reg.host);
    try {
      const image = await remoteImage(client, `${reg.host}/f/base:1`);
      expect(image.digest).toBe(digest);
      expect(image.resolvedDigest).toBe(digest);
      expect(image.layers.map((l) => l.digest)).toEqual([layer]);
      const file = path.join(mkdtempSync(path.join(work, 'remote-')), 'oci.tar');
      await saveImages([{ image, names: ['base:1'] }], createWriteStream(file), 'oci');
      const [saved] = await readArchive(file);
      expect(saved?.image.digest).toBe(digest);
      const savedImage = saved?.image as Image;
      expect(savedImage.rawConfig.equals(image.rawConfig)).toBe(true);
      const chunks: Buffer[] = [];
      for await (const c of savedImage.layers[0]?.open() ?? []) chunks.push(c as Buffer);
      expect(Buffer.concat(chunks).equals(readFileSync(path.join(root, 'blobs', 'sha256', layer.slice(7))))).toBe(true);
      const pushed = await pushImage(client, image, `${reg.host}/copy/base:1`);
      expect(pushed.digest).toBe(digest);
      expect((await remoteImage(client, `${reg.host}/copy/base:1`)).digest).toBe(digest);
    } finally {
      await client.close();
    }
  });

  test('a layer that is not what its digest says fails the sink, naming the digest and the URL', async () => {
    const host = await corruptingProxy();
    const client = new RegistryClient(host);
    try {
      const image = await remoteImage(client, `${host}/f/base:1`);
      const file = path.join(mkdtempSync(path.join(work, 'remote-')), 'oci.tar');
      const error = await saveImages([{ image, names: ['base:1'] }], createWriteStream(file), 'oci').then(() => undefined, (e: unknown) => e as Error & { code?: string });
      expect(error?.code).toBe('REGISTRY_DIGEST_MISMATCH');
      expect(error?.message).toContain(layer);
      expect(error?.message).toContain(`${host}/v2/f/base/blobs/`);
    } finally {
      await client.close();
    }
  });

  test.each(['drop', 'drop, then no ranges'] as const)('a connection dropped mid-layer is resumed where it stopped (Range), and the bytes are whole: %s', async (fault) => {
    const proxy = await faultyProxy(fault);
    const client = new RegistryClient(proxy.host, { backoffMs: 20 });
    try {
      const image = await remoteImage(client, `${proxy.host}/f/base:1`);
      const chunks: Buffer[] = [];
      for await (const c of image.layers[0]?.open() ?? []) chunks.push(c as Buffer);
      expect(proxy.faults()).toBe(1);
      expect(proxy.ranges).toEqual([expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
      expect(Buffer.concat(chunks).equals(readFileSync(path.join(root, 'blobs', 'sha256', layer.slice(7))))).toBe(true);
    } finally {
      await client.close();
    }
  });
});
