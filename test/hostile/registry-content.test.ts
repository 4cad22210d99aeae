import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { pullImage } from '../../src/registry/pull.js';
import { Store } from '../../src/store/store.js';
import { expectStoreConsistent, makeVictim } from '../helpers/hostile.js';
import { serveLoopback } from '../helpers/http.js';

// A registry that lies (issue 6, point 13): digests that would be paths, blobs whose bytes or
// sizes are not what the manifest says, manifests that are two things at once, that disagree
// with their content type, or that never end. Every case: refused with an error that names
// the digest or the URL, nothing stored under a claimed digest, the victim beside the store
// untouched, the store invariant.

const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-registry-'));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(work, { recursive: true, force: true });
});

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const { host, server } = await serveLoopback(handler);
  servers.push(server);
  return host;
}

const LAYER = gzipSync(Buffer.from('not really a tar, never applied here'));
const CONFIG = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha('x')] } }));
const MANIFEST_TYPE = 'application/vnd.oci.image.manifest.v1+json';

function manifest(layer: { digest: string; size: number }, config = { digest: sha(CONFIG), size: CONFIG.length }): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST_TYPE,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
  });
}

/** A registry serving one manifest for every tag, and `blobs` by digest (anything else: 404). */
function registry(manifestBody: string | ((res: ServerResponse) => void), blobs: Record<string, Buffer> = {}, type = MANIFEST_TYPE) {
  return serve((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (url.includes('/manifests/')) {
      if (typeof manifestBody === 'function') return manifestBody(res);
      return void res.writeHead(200, { 'content-type': type, 'docker-content-digest': sha(manifestBody) }).end(manifestBody);
    }
    const m = /\/blobs\/(.+)$/.exec(url);
    const blob = m ? blobs[decodeURIComponent(m[1] as string)] : undefined;
    if (blob) return void res.writeHead(200, { 'content-length': blob.length }).end(blob);
    res.writeHead(404).end();
  });
}

async function attempt(host: string, ref = `${host}/evil/image:1`): Promise<{ error: Error; root: string; victimUnchanged: () => void; marker: string }> {
  const base = mkdtempSync(path.join(work, 'case-'));
  const victim = makeVictim(path.join(base, 'victim'));
  const root = path.join(base, 'store');
  const store = await Store.open(root);
  const client = new RegistryClient(host);
  let error: Error | undefined;
  try {
    await pullImage(client, store, ref);
  } catch (e) {
    error = e as Error;
  } finally {
    await client.close();
    await store.releaseLease();
  }
  expect(error, 'the pull must fail').toBeDefined();
  expect(await store.entries()).toEqual([]);
  return { error: error as Error, root, victimUnchanged: victim.unchanged, marker: victim.marker };
}

describe('digests that would be paths are refused before any use', () => {
  test.each([
    ['a climbing digest', 'sha256:../../victim/secret'],
    ['an uppercase digest', `sha256:${'A'.repeat(64)}`],
    ['a digest of the wrong length', `sha256:${'a'.repeat(63)}`],
    ['an unknown algorithm', `md5:${'a'.repeat(32)}`],
    ['a digest with a slash', `sha256:${'a'.repeat(30)}/${'a'.repeat(33)}`],
  ])('%s in a manifest', async (_, digest) => {
    const host = await registry(manifest({ digest, size: LAYER.length }), { [sha(CONFIG)]: CONFIG });
    const { error, root, victimUnchanged, marker } = await attempt(host);
    expect(error.message).toMatch(/invalid digest/);
    expect(error.message).toContain(digest);
    victimUnchanged();
    expectStoreConsistent(root, marker);
  });

  test.each(['sha256:../../x', `sha256:${'A'.repeat(64)}`, 'sha1:abc'])('%s as the reference pulled', async (digest) => {
    const host = await registry(manifest({ digest: sha(LAYER), size: LAYER.length }));
    const { error, root } = await attempt(host, `${host}/evil/image@${digest}`);
    expect(error.message).toMatch(/invalid|digest/i);
    expectStoreConsistent(root);
  });
});

describe('blobs that are not what the manifest says', () => {
  test('a layer whose bytes do not hash to its digest: nothing stored under that digest', async () => {
    const claimed = sha(LAYER);
    const host = await registry(manifest({ digest: claimed, size: LAYER.length }), { [sha(CONFIG)]: CONFIG, [claimed]: Buffer.from(LAYER).fill(7, 10, 20) });
    const { error, root, marker } = await attempt(host);
    expect(error.message).toContain(claimed);
    expectStoreConsistent(root, marker);
  });

  test.each([
    ['larger than its descriptor', LAYER.length - 5],
    ['smaller than its descriptor', LAYER.length + 5],
  ])('a layer %s', async (_, size) => {
    const host = await registry(manifest({ digest: sha(LAYER), size }), { [sha(CONFIG)]: CONFIG, [sha(LAYER)]: LAYER });
    const { error, root } = await attempt(host);
    expect(error.message).toMatch(/size|bytes/i);
    expect(error.message).toContain(sha(LAYER));
    expectStoreConsistent(root);
  });

  test('a negative size', async () => {
    const host = await registry(manifest({ digest: sha(LAYER), size: -1 }), { [sha(CONFIG)]: CONFIG, [sha(LAYER)]: LAYER });
    const { error, root } = await attempt(host);
    expect(error.message).toMatch(/size/i);
    expectStoreConsistent(root);
  });

  test('a config that does not hash to its digest', async () => {
    const host = await registry(manifest({ digest: sha(LAYER), size: LAYER.length }), { [sha(CONFIG)]: Buffer.from(CONFIG).fill(32, 0, 1), [sha(LAYER)]: LAYER });
    const { error, root } = await attempt(host);
    expect(error.message).toContain(sha(CONFIG));
    expectStoreConsistent(root);
  });
});

describe('manifests that lie', () => {
  test('a 200 MiB manifest is cut off early, not read to the end', async () => {
    let sent = 0;
    const host = await registry((res) => {
      res.writeHead(200, { 'content-type': MANIFEST_TYPE, 'content-length': String(200 * 1024 * 1024) });
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const push = (): void => {
        while (sent < 200 * 1024 * 1024) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', push);
        }
        res.end();
      };
      res.on('error', () => undefined);
      push();
    });
    const { error, root } = await attempt(host);
    expect(error.message).toMatch(/larger than 4194304 bytes/);
    expect(sent).toBeLessThan(64 * 1024 * 1024); // socket buffers aside, gantry stopped reading
    expectStoreConsistent(root);
  });

  test.each([
    ['both an index and a manifest', MANIFEST_TYPE, JSON.stringify({ schemaVersion: 2, mediaType: MANIFEST_TYPE, config: {}, layers: [], manifests: [] }), /both an index and a manifest/],
    ['a content type that disagrees with its mediaType', 'application/vnd.oci.image.index.v1+json', manifest({ digest: sha(LAYER), size: LAYER.length }), /disagrees with mediaType/],
    ['not JSON', MANIFEST_TYPE, '{"schemaVersion":2,', /JSON|parse/i],
  ])('a manifest that is %s', async (_, type, body, message) => {
    const host = await registry(body, { [sha(CONFIG)]: CONFIG, [sha(LAYER)]: LAYER }, type);
    const { error, root } = await attempt(host);
    expect(error.message).toMatch(message);
    expectStoreConsistent(root);
  });
});
