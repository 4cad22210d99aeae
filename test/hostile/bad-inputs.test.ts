import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import { gantry, type GantryResult } from '../helpers/gantry.js';
import { expectStoreConsistent } from '../helpers/hostile.js';
import { serveLoopback } from '../helpers/http.js';

// Issue 21, "no crash, no hang on bad input": inputs that made gantry die with a stack trace
// (exit 70) or never answer. Each now ends with exit 1 and a message naming what was wrong and
// where (the URL or digest, the Dockerfile and line), or succeeds, within the bound each test
// states (the command is killed at that bound, so a hang fails the test rather than the suite).

const work = mkdtempSync(path.join(tmpdir(), 'gantry-bad-inputs-'));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  rmSync(work, { recursive: true, force: true });
});

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Run gantry with a hard bound: the result, and how long it took. */
async function run(args: string[], boundMs: number, env: Record<string, string> = {}): Promise<GantryResult & { ms: number }> {
  const started = Date.now();
  const r = await gantry(args, { timeout: boundMs, env });
  return { ...r, ms: Date.now() - started };
}

/** exit 1, the message matching each of `says`, within `boundMs`; never an internal error. */
function expectClearError(r: GantryResult & { ms: number }, boundMs: number, ...says: (string | RegExp)[]): void {
  expect(r.stderr, 'not an internal error').not.toMatch(/internal error|RangeError|TypeError|Maximum call stack/);
  expect(r.exitCode, r.stderr).toBe(1);
  for (const s of says) expect(r.stderr).toMatch(typeof s === 'string' ? new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : s);
  expect(r.ms).toBeLessThan(boundMs);
}

function context(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(work, 'ctx-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  return dir;
}

const store = (): string => path.join(mkdtempSync(path.join(work, 'store-')), 'store');

// ---------------------------------------------------------------------------------------------
// A registry that lies: one image (index → manifest → config, layer), any part of it replaced.

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const LAYER = gzipSync(Buffer.alloc(1024));
const DIFF_ID = sha(Buffer.alloc(1024));

function configOf(extra: object = {}): Buffer {
  return Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [DIFF_ID] }, ...extra }));
}

function manifestOf(config: Buffer, layer: object = { digest: sha(LAYER), size: LAYER.length }): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    }),
  );
}

type Handler = (req: IncomingMessage, res: ServerResponse) => boolean | void;

interface FakeRegistry {
  host: string;
  /** Every path asked for, in order. */
  requests: string[];
}

/**
 * A loopback registry: `/v2/`, the manifest `top` for every tag, documents and blobs by digest;
 * `handler` answers first when it returns true.
 */
async function registry(top: { body: Buffer; type: string }, blobs: Buffer[] = [], manifests: { body: Buffer; type: string }[] = [], handler?: Handler): Promise<FakeRegistry> {
  const requests: string[] = [];
  const byDigest = new Map(blobs.map((b) => [sha(b), b]));
  const docs = new Map(manifests.map((m) => [sha(m.body), m]));
  const { host, server } = await serveLoopback((req, res) => {
    const url = req.url ?? '';
    requests.push(url);
    res.on('error', () => undefined);
    if (handler?.(req, res) === true) return;
    if (url === '/v2/') return void res.writeHead(200).end('{}');
    const m = /\/manifests\/(.+)$/.exec(url);
    if (m) {
      const doc = docs.get(decodeURIComponent(m[1] as string)) ?? top;
      return void res.writeHead(200, { 'content-type': doc.type, 'docker-content-digest': sha(doc.body) }).end(doc.body);
    }
    const b = /\/blobs\/(.+)$/.exec(url);
    const blob = b ? byDigest.get(decodeURIComponent(b[1] as string)) : undefined;
    if (blob) return void res.writeHead(200, { 'content-length': blob.length }).end(blob);
    res.writeHead(404).end();
  });
  servers.push(server);
  return { host, requests };
}

/** Build `FROM <host>/bad/image:1` (in a new store unless `root` is given). */
function buildFrom(reg: FakeRegistry, boundMs: number, env: Record<string, string> = {}, root = store()): Promise<GantryResult & { ms: number }> {
  const ctx = context({ Dockerfile: `FROM ${reg.host}/bad/image:1\n` });
  return run(['--root', root, 'build', '--progress', 'plain', ctx], boundMs, env);
}

describe('a registry that lies about the shape of its documents', () => {
  test("an index whose entry typed as a manifest is an index: refused naming both (was: Cannot read properties of undefined (reading 'digest'))", async () => {
    const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [] }));
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: MANIFEST, digest: sha(inner), size: inner.length, platform: { os: 'linux', architecture: 'amd64' } }] }));
    const reg = await registry({ body: index, type: INDEX }, [], [{ body: inner, type: INDEX }]);
    const r = await buildFrom(reg, 30_000);
    expectClearError(r, 30_000, 'Dockerfile:1', `lists ${sha(inner)} as a manifest`, 'but it is an index', sha(index));
  });

  const config = configOf();
  test.each([
    ['a manifest without a config', { schemaVersion: 2, mediaType: MANIFEST, layers: [] }, /has no config descriptor/],
    ['layers that are not a list', { schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: { 0: 'x' } }, /its layers are an object, not a list/],
    ['a layer that is a string', { schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length }, layers: ['sha256:00'] }, /layer 0 is a string, not a descriptor/],
    ['a config descriptor whose size is a string', { schemaVersion: 2, mediaType: MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: '12' }, layers: [] }, /invalid size "12"/],
    ['an index whose manifests are not a list', { schemaVersion: 2, mediaType: INDEX, manifests: 'all of them' }, /its manifests are a string, not a list/],
    ['a manifest that is a list', [1, 2, 3], /is not a JSON object|unsupported media type/],
  ])('%s: refused naming the manifest', async (_, doc, message) => {
    const body = Buffer.from(JSON.stringify(doc));
    const type = (doc as { mediaType?: string }).mediaType ?? MANIFEST;
    const reg = await registry({ body, type }, [config, LAYER]);
    const root = store();
    const r = await run(['--root', root, 'pull', `${reg.host}/bad/image:1`], 30_000);
    expectClearError(r, 30_000, message, `${reg.host}/v2/bad/image/manifests/1`);
    expectStoreConsistent(root);
  });

  test.each([
    ['Env that is a string', configOf({ config: { Env: 'PATH=/bin' } }), /config\.Env is not a list of strings/],
    ['a config that is a list', Buffer.from('[1,2,3]'), /it is a list, not an image config/],
    ['history entries that are numbers', configOf({ history: [1] }), /history\[0\] is a number, not an object/],
    ['no rootfs', Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux' })), /no rootfs of type "layers"/],
  ])('a config with %s: refused naming the config, nothing stored', async (_, body, message) => {
    const reg = await registry({ body: manifestOf(body), type: MANIFEST }, [body, LAYER]);
    const root = store();
    const r = await buildFrom(reg, 30_000, {}, root);
    expectClearError(r, 30_000, message, `config ${sha(body)}`);
    expectStoreConsistent(root);
  });
});

describe('a registry that sends too much', () => {
  test('a config nested 100,000 deep: refused before anything recursive touches it, naming the digest (was: Maximum call stack size exceeded)', async () => {
    const depth = 100_000;
    const deep = Buffer.from(`{"architecture":"amd64","os":"linux","x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)},"rootfs":{"type":"layers","diff_ids":["${DIFF_ID}"]}}`);
    const reg = await registry({ body: manifestOf(deep), type: MANIFEST }, [deep, LAYER]);
    const r = await buildFrom(reg, 30_000);
    expectClearError(r, 30_000, 'Dockerfile:1', `config ${sha(deep)}`, 'nested more than 100 levels deep');
    // Refused before the layers were asked for.
    expect(reg.requests.some((u) => u.endsWith(sha(LAYER)))).toBe(false);
  });

  test('a config declared larger than 8 MiB is not fetched', async () => {
    const config = configOf();
    const manifest = Buffer.from(manifestOf(config).toString().replace(`"size":${config.length}`, `"size":${16 * 1024 * 1024}`));
    const reg = await registry({ body: manifest, type: MANIFEST }, [config, LAYER]);
    const r = await buildFrom(reg, 30_000);
    expectClearError(r, 30_000, `config ${sha(config)}`, 'more than the 8388608 bytes');
    expect(reg.requests.filter((u) => u.includes('/blobs/'))).toEqual([]);
  });

  test('a layer declaring 2^50 bytes with an endless body: refused before a byte of it is fetched', async () => {
    const config = configOf();
    let sent = 0;
    const reg = await registry({ body: manifestOf(config, { digest: sha(LAYER), size: 2 ** 50 }), type: MANIFEST }, [config], [], (req, res) => {
      if (!req.url?.endsWith(sha(LAYER))) return false;
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024);
      const push = (): void => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', push);
      };
      push();
      return true;
    });
    const r = await buildFrom(reg, 30_000);
    expectClearError(r, 30_000, 'Dockerfile:1', `layer ${sha(LAYER)}`, 'its descriptor says 1125899906842624 bytes', 'GANTRY_EXTRACT_LIMIT');
    expect(reg.requests.some((u) => u.endsWith(sha(LAYER)))).toBe(false);
    expect(sent).toBe(0);
  });

  test('a layer whose body goes on past its declared size: stopped at the size, naming the digest', async () => {
    const config = configOf();
    let sent = 0;
    const reg = await registry({ body: manifestOf(config), type: MANIFEST }, [config], [], (req, res) => {
      if (!req.url?.endsWith(sha(LAYER))) return false;
      res.writeHead(200);
      res.write(LAYER);
      const chunk = Buffer.alloc(64 * 1024);
      const push = (): void => {
        while (!res.destroyed && sent < 1024 ** 3 && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed && sent < 1024 ** 3) res.once('drain', push);
      };
      push();
      return true;
    });
    const root = store();
    const r = await buildFrom(reg, 30_000, {}, root);
    expectClearError(r, 30_000, `blob ${sha(LAYER)}`, `more than the ${LAYER.length} bytes its descriptor says`);
    expect(sent, 'gantry stopped reading (socket buffers aside)').toBeLessThan(64 * 1024 * 1024);
    expectStoreConsistent(root);
  });
});

describe('a registry that answers slowly', () => {
  // GANTRY_REGISTRY_TIMEOUT=3: a manifest must arrive whole within 3 s, a blob keep 1 KiB/s over each 3 s.
  const env = { GANTRY_REGISTRY_TIMEOUT: '3' };
  /** Answer with headers, then one byte every 2 s, until the client goes away. */
  const dribble = (res: ServerResponse, type = 'application/octet-stream'): true => {
    res.writeHead(200, { 'content-type': type });
    res.flushHeaders();
    const timer = setInterval(() => res.write(' '), 2000);
    res.on('close', () => clearInterval(timer));
    return true;
  };

  test('a manifest at one byte every 2 s: given up at the deadline, naming the URL (the timeout used to restart on every byte)', async () => {
    const reg = await registry({ body: Buffer.from('{}'), type: MANIFEST }, [], [], (req, res) => (req.url?.includes('/manifests/') ? dribble(res, MANIFEST) : false));
    const r = await buildFrom(reg, 30_000, env);
    expectClearError(r, 30_000, 'Dockerfile:1', `GET http://${reg.host}/v2/bad/image/manifests/1`, 'did not arrive whole within 3 s', 'GANTRY_REGISTRY_TIMEOUT');
  });

  test('a layer at one byte every 2 s: given up when it falls below 1 KiB/s, naming the blob', async () => {
    const config = configOf();
    const reg = await registry({ body: manifestOf(config), type: MANIFEST }, [config], [], (req, res) => (req.url?.endsWith(sha(LAYER)) ? dribble(res) : false));
    const r = await buildFrom(reg, 30_000, env);
    expectClearError(r, 30_000, `/blobs/${sha(LAYER)}`, /bytes in the last 3 s, slower than the 1024 bytes\/s/);
  });

  test('an ADD of a URL served at one byte every 2 s: given up at its line, naming the URL', async () => {
    const { host, server } = await serveLoopback((_req, res) => void dribble(res));
    servers.push(server);
    const ctx = context({ Dockerfile: `FROM scratch\nADD http://${host}/slow.txt /slow.txt\n` });
    const r = await run(['--root', store(), 'build', '--progress', 'plain', ctx], 30_000, env);
    expectClearError(r, 30_000, 'Dockerfile:2', `GET http://${host}/slow.txt`, /slower than the 1024 bytes\/s/);
  });

  test('a registry that never answers a blob request: given up at the deadline', async () => {
    const config = configOf();
    const reg = await registry({ body: manifestOf(config), type: MANIFEST }, [config], [], (req) => req.url?.endsWith(sha(LAYER)) === true);
    const r = await buildFrom(reg, 30_000, env);
    expectClearError(r, 30_000, `/blobs/${sha(LAYER)}`, 'no answer within 3 s');
  });
});

// ---------------------------------------------------------------------------------------------
// Dockerfiles.

describe('Dockerfiles past what a stack or an exec takes', () => {
  test('a RUN of 200,000 continuation lines: an error at its line saying the command is too long for one argument, as BuildKit would fail (was: spawn E2BIG)', async () => {
    const lines = ['FROM scratch', 'RUN echo start \\', ...Array.from({ length: 200_000 }, () => '  a \\'), '  end'];
    const ctx = context({ Dockerfile: `${lines.join('\n')}\n` });
    const r = await run(['--root', store(), 'build', '--progress', 'plain', ctx], 60_000);
    expectClearError(r, 60_000, 'Dockerfile:2', /the command is \d+ bytes, more than the 131071 Linux takes in one argument/);
    expect(r.stderr.length, 'the error does not repeat the 600 KB command').toBeLessThan(100_000);
  });

  test('a chain of 10,000 stages builds, in bounded time and heap', async () => {
    const lines = ['FROM scratch AS s0', ...Array.from({ length: 9_999 }, (_, i) => `FROM s${i} AS s${i + 1}`)];
    const ctx = context({ Dockerfile: `${lines.join('\n')}\n` });
    const r = await run(['--root', store(), 'build', '--progress', 'plain', ctx], 60_000, { NODE_OPTIONS: '--max-old-space-size=512' });
    expect(r.stderr).not.toMatch(/internal error|Maximum call stack/);
    expect(r.exitCode, r.stderr.slice(-2000)).toBe(0);
    expect(r.ms).toBeLessThan(60_000);
  });

  test('20,000 nested ${a:-${a:-...}}: an error at its line (was: Maximum call stack size exceeded)', async () => {
    const n = 20_000;
    const ctx = context({ Dockerfile: `FROM scratch\nENV b=${'${a:-'.repeat(n)}x${'}'.repeat(n)}\n` });
    const r = await run(['--root', store(), 'build', '--progress', 'plain', ctx], 30_000);
    expectClearError(r, 30_000, 'Dockerfile:2', 'variable expansions nested more than 100 deep');
    expect(r.stderr.length, 'the 120,000-character word is quoted shortened').toBeLessThan(10_000);
  });

  test('100 nested expansions still expand', async () => {
    const n = 100;
    const ctx = context({ Dockerfile: `FROM scratch\nENV b=${'${a:-'.repeat(n)}x${'}'.repeat(n)}\n` });
    const root = store();
    const r = await run(['--root', root, 'build', '--progress', 'plain', '-t', 'nested:1', ctx], 30_000);
    expect(r.exitCode, r.stderr).toBe(0);
    const inspect = await run(['--root', root, 'inspect', 'nested:1'], 30_000);
    expect(JSON.parse(inspect.stdout)[0].Config.Env).toContain('b=x');
  });
});

describe('.dockerignore patterns that used to take exponential time', () => {
  /** A context 40 directories deep, d0/d1/.../d39, with `f` and `b` files at each level. */
  const deepContext = (ignore: string): string => {
    const files: Record<string, string> = { Dockerfile: 'FROM scratch\nCOPY . /\n', '.dockerignore': ignore };
    let dir = '';
    for (let i = 0; i < 40; i++) {
      dir = dir ? `${dir}/d${i}` : `d${i}`;
      files[`${dir}/f`] = 'kept';
      files[`${dir}/b`] = 'left out';
    }
    return context(files);
  };
  const deepest = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');

  test.each([8, 30])('"**/" × %i + "b" against a 40-deep tree: the b files left out, the rest copied, in seconds', async (stars) => {
    const ctx = deepContext(`${Array(stars).fill('**').join('/')}/b\n`);
    const out = path.join(mkdtempSync(path.join(work, 'out-')), 'rootfs');
    const r = await run(['--root', store(), 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx], 30_000);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    expect(existsSync(path.join(out, deepest, 'f'))).toBe(true);
    expect(existsSync(path.join(out, 'd0', 'f'))).toBe(true);
    expect(existsSync(path.join(out, deepest, 'b'))).toBe(false);
    expect(existsSync(path.join(out, 'd0', 'b'))).toBe(false);
  });

  test('a .dockerignore of 100,000 patterns: applied in seconds, the last that matches deciding', async () => {
    const patterns: string[] = [];
    for (let i = 0; i < 100_000; i++) patterns.push([`dir${i}/*.tmp`, `**/f${i}.log`, `x${i}`, `!keep${i}*`][i % 4] as string);
    patterns.push('**/*.secret', '!src/public.secret');
    const files: Record<string, string> = { Dockerfile: 'FROM scratch\nCOPY . /\n', '.dockerignore': patterns.join('\n') };
    for (let d = 0; d < 20; d++) for (let f = 0; f < 20; f++) files[`src/d${d}/file${f}.c`] = 'kept';
    Object.assign(files, { 'dir4/a.tmp': 'out', 'dir4/a.c': 'kept', 'src/f5.log': 'out', x2: 'out', 'src/a.secret': 'out', 'src/public.secret': 'kept' });
    const ctx = context(files);
    const out = path.join(mkdtempSync(path.join(work, 'out-')), 'rootfs');
    const r = await run(['--root', store(), 'build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx], 30_000, { NODE_OPTIONS: '--max-old-space-size=512' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    for (const kept of ['src/d19/file19.c', 'dir4/a.c', 'src/public.secret']) expect(existsSync(path.join(out, kept)), kept).toBe(true);
    for (const gone of ['dir4/a.tmp', 'src/f5.log', 'x2', 'src/a.secret']) expect(existsSync(path.join(out, gone)), gone).toBe(false);
  });
});
