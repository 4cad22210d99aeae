import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
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
async function faultyProxy(fault: '500' | '429' | 'drop'): Promise<{ host: string; faults: () => number; ranges: string[] }> {
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
    const up = httpRequest({ host: '127.0.0.1', port: Number(reg.host.split(':')[1]), path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      if (isLayer && faults === 0 && fault === 'drop') {
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
