import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import { RegistryClient, type Credentials } from '../../src/registry/client.js';
import { pullImage } from '../../src/registry/pull.js';
import { Store } from '../../src/store/store.js';
import { expectStoreConsistent } from '../helpers/hostile.js';
import { serveLoopback } from '../helpers/http.js';

// Credentials never leave their host (issue 6, point 14). Loopback servers stand in for the
// registry, for "other hosts" (another port) and record every request they get; link-local
// destinations (169.254.169.254, the cloud metadata address) are refused before any
// connection, which the error's wording proves (the loopback-only guard would word it else).

const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-creds-'));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) s.close();
  rmSync(work, { recursive: true, force: true });
});

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const CREDS: Credentials = { username: 'alice', password: 's3cret' };
const BASIC = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;

interface Seen {
  url: string;
  authorization?: string;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void, address = '127.0.0.1'): Promise<{ host: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const { host, server } = await serveLoopback((req, res) => {
    seen.push({ url: req.url ?? '', ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
    handler(req, res);
  }, address);
  servers.push(server);
  return { host, seen };
}

const LAYER = gzipSync(Buffer.from('layer bytes'));
const CONFIG = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha('x')] } }));

function manifest(extraLayer: Record<string, unknown> = {}): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(CONFIG), size: CONFIG.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(LAYER), size: LAYER.length, ...extraLayer }],
  });
}

/**
 * A registry: `challenge` is its 401 answer to requests without the right Authorization;
 * `blob` may answer blob requests itself (a redirect, say).
 */
function registry(options: { challenge?: string; accept?: string; manifestBody?: string; blob?: (res: ServerResponse, digest: string) => boolean }) {
  return serve((req, res) => {
    const url = req.url ?? '';
    if (options.challenge && req.headers.authorization !== options.accept) {
      return void res.writeHead(401, { 'www-authenticate': options.challenge }).end();
    }
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    if (url.includes('/manifests/')) {
      const body = options.manifestBody ?? manifest();
      return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(body);
    }
    const digest = decodeURIComponent(/\/blobs\/(.+)$/.exec(url)?.[1] ?? '');
    if (options.blob?.(res, digest)) return;
    const blob = digest === sha(CONFIG) ? CONFIG : digest === sha(LAYER) ? LAYER : undefined;
    if (blob) return void res.writeHead(200).end(blob);
    res.writeHead(404).end();
  });
}

async function pull(host: string, creds: Credentials | null = CREDS): Promise<{ error?: Error; root: string }> {
  const root = path.join(mkdtempSync(path.join(work, 'case-')), 'store');
  const store = await Store.open(root);
  const client = new RegistryClient(host, { credentials: () => creds ?? undefined, attempts: 1 });
  try {
    await pullImage(client, store, `${host}/team/app:1`);
    return { root };
  } catch (e) {
    return { error: e as Error, root };
  } finally {
    await client.close();
    await store.releaseLease();
  }
}

describe('redirects', () => {
  test('a blob redirected to another host: followed, without the Authorization header', async () => {
    const other = await serve((req, res) => res.writeHead(200).end(req.url?.endsWith(sha(LAYER)) ? LAYER : CONFIG));
    const reg = await registry({
      challenge: 'Basic realm="r"',
      accept: BASIC,
      blob: (res, digest) => (res.writeHead(307, { location: `http://${other.host}/cdn/${digest}` }).end(), true),
    });
    const r = await pull(reg.host);
    expect(r.error).toBeUndefined();
    expect(other.seen.length).toBeGreaterThan(0);
    expect(other.seen.every((s) => s.authorization === undefined)).toBe(true);
    expect(reg.seen.some((s) => s.authorization === BASIC)).toBe(true); // the registry itself did get them
    expectStoreConsistent(r.root);
  });

  test.each(['http://169.254.169.254/latest/meta-data/', 'http://[fe80::1]/x'])('a redirect to %s is refused before any connection', async (location) => {
    const reg = await registry({ blob: (res) => (res.writeHead(302, { location }).end(), true) });
    const r = await pull(reg.host);
    expect(r.error?.message).toMatch(/link-local address .* refused/);
    expectStoreConsistent(r.root);
  });
});

describe('token realms', () => {
  /** A token service on another host: 127.0.0.2 (loopback too, but not the registry's 127.0.0.1). */
  async function tokenService() {
    return serve((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"tok"}'), '127.0.0.2');
  }

  test('a realm on another host over plain HTTP never gets the credentials', async () => {
    const realm = await tokenService();
    const reg = await registry({ challenge: `Bearer realm="http://${realm.host}/token",service="reg"`, accept: 'Bearer tok' });
    const r = await pull(reg.host);
    expect(r.error?.message).toMatch(/token realm .* is another host over plain HTTP; the credentials .* are not sent there/);
    expect(realm.seen).toEqual([]);
    expectStoreConsistent(r.root);
  });

  test('without credentials, a realm on another host is asked anonymously (positive control)', async () => {
    const realm = await tokenService();
    const reg = await registry({ challenge: `Bearer realm="http://${realm.host}/token",service="reg"`, accept: 'Bearer tok' });
    const r = await pull(reg.host, null);
    expect(r.error).toBeUndefined();
    expect(realm.seen.length).toBeGreaterThan(0);
    expect(realm.seen.every((s) => s.authorization === undefined)).toBe(true);
  });

  test('a realm on the registry host itself gets the credentials (positive control)', async () => {
    let port = '';
    const reg = await serve((req, res) => {
      if (req.url?.startsWith('/token')) {
        expect(req.headers.authorization).toBe(BASIC);
        return void res.writeHead(200).end('{"token":"tok"}');
      }
      if (req.headers.authorization !== 'Bearer tok') return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token"` }).end();
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.includes('/manifests/')) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }).end(manifest());
      res.writeHead(200).end(req.url?.endsWith(sha(LAYER)) ? LAYER : CONFIG);
    });
    port = reg.host.split(':')[1] as string;
    const r = await pull(reg.host);
    expect(r.error).toBeUndefined();
    expect(reg.seen.some((s) => s.url.startsWith('/token') && s.authorization === BASIC)).toBe(true);
  });

  test('a realm at the cloud metadata address is refused before any connection', async () => {
    const reg = await registry({ challenge: 'Bearer realm="http://169.254.169.254/latest/meta-data/iam",service="x"', accept: 'never' });
    const r = await pull(reg.host);
    expect(r.error?.message).toMatch(/link-local address .* refused/);
  });
});

describe('foreign layers', () => {
  test('URLs in a layer descriptor are never contacted: the blob comes from the registry', async () => {
    const foreign = await serve((_req, res) => res.writeHead(200).end('evil bytes'));
    const reg = await registry({ challenge: 'Basic realm="r"', accept: BASIC, manifestBody: manifest({ urls: [`http://${foreign.host}/layer.tgz`] }) });
    const r = await pull(reg.host);
    expect(r.error).toBeUndefined();
    expect(foreign.seen).toEqual([]);
    expectStoreConsistent(r.root);
  });
});
