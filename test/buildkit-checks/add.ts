import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { expect } from 'vitest';
import tar from '../../src/tar/tar.js';
import { serveLoopback } from '../helpers/http.js';
import type { BuildResult, BuildSpec, Check, CheckFile, Expectations, Harness } from './types.js';

const file = 'dockerfile_add_test.go';

// Helpers shared by the ports of BuildKit's ADD tests (and imported by other modules here).

export interface TarEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'link';
  content?: string;
  mode?: number;
  linkname?: string;
}

/** A ustar archive, as Go's archive/tar writes one for BuildKit's tests (owners 0, mtime 0). */
export function tarball(entries: TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  const octal = (n: number, width: number): string => n.toString(8).padStart(width - 1, '0') + '\0';
  for (const e of entries) {
    const body = Buffer.from(e.content ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write(octal(e.mode ?? 0o644, 8), 100);
    h.write(octal(0, 8), 108);
    h.write(octal(0, 8), 116);
    h.write(octal((e.type ?? 'file') === 'file' ? body.length : 0, 12), 124);
    h.write(octal(0, 12), 136);
    h.write('        ', 148);
    h.write({ file: '0', link: '1', symlink: '2', dir: '5' }[e.type ?? 'file'], 156);
    h.write(e.linkname ?? '', 157, 100);
    h.write('ustar\u000000', 257);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h);
    if ((e.type ?? 'file') === 'file' && body.length) blocks.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/**
 * Build with binary files in the context (the harness writes text only): a first build writes
 * the context and gives its path, the files are written there, and the build runs on it again.
 */
export async function buildWithFiles(h: Harness, spec: BuildSpec, binaries: Record<string, Buffer>): Promise<BuildResult> {
  const first = await h.build({ dockerfile: 'FROM scratch\n' });
  for (const [name, data] of Object.entries(binaries)) writeFileSync(path.join(first.ctx, name), data);
  return h.build(spec, { keepContext: true });
}

export interface Route {
  content: Buffer | string;
  etag?: string;
  lastModified?: Date;
}

/** BuildKit's httpserver test server: routes with an ETag (304 on If-None-Match) and Last-Modified; it logs every request. */
export async function serveRoutes(routes: Record<string, Route>): Promise<{ url: string; requests: Record<string, { method: string; headers: IncomingHttpHeaders }[]>; close(): void }> {
  const requests: Record<string, { method: string; headers: IncomingHttpHeaders }[]> = {};
  const { host, server } = await serveLoopback((req, res) => {
    const p = new URL(req.url ?? '/', 'http://x').pathname;
    const r = routes[p];
    if (!r) {
      res.writeHead(404).end();
      return;
    }
    (requests[p] ??= []).push({ method: req.method ?? '', headers: req.headers });
    if (r.lastModified) res.setHeader('Last-Modified', r.lastModified.toUTCString());
    if (r.etag) {
      res.setHeader('ETag', r.etag);
      if (req.headers['if-none-match'] === r.etag) {
        res.writeHead(304).end();
        return;
      }
    }
    res.writeHead(200).end(r.content);
  });
  return { url: `http://${host}`, requests, close: () => server.close() };
}

/** A check whose Dockerfile names an URL of a loopback server ({url}) and whose context may hold binary files. */
function served(
  name: string,
  routes: Record<string, Route>,
  dockerfile: string,
  exp: Expectations & { error?: RegExp },
  more: Partial<BuildSpec> & { binaries?: Record<string, Buffer>; gap?: string } = {},
): Check {
  const { binaries, gap, ...spec } = more;
  return {
    name,
    file,
    dockerfile: '',
    ...(gap ? { gap } : {}),
    async custom(h) {
      const server = await serveRoutes(routes);
      try {
        const full = { ...spec, dockerfile: dockerfile.replaceAll('{url}', server.url) };
        const r = binaries ? await buildWithFiles(h, full, binaries) : await h.build(full);
        if (exp.error) {
          expect(r.exitCode, r.output).not.toBe(0);
          expect(r.exitCode, r.output).not.toBe(70);
          expect(r.output).toMatch(exp.error);
        } else await h.expectImage(r, exp);
      } finally {
        server.close();
      }
    },
  };
}

const content0 = 'content0';
const tFoo = tarball([{ name: 'foo', content: content0, mode: 0o644 }]);
const tFooGz = gzipSync(tFoo);
/** Binary files are compared as the harness reads them (utf8 text). */
const asText = (b: Buffer): string => b.toString('utf8');
const sha256 = (s: string): string => `sha256:${createHash('sha256').update(s).digest('hex')}`;
const etag = (): string => Math.random().toString(36).slice(2);

export default {
  file,
  checks: [
    {
      name: 'testDockerfileADDFromURL',
      file,
      dockerfile: '',
      // The first half: ADD of /foo, then the same build again, which BuildKit answers with a
      // HEAD request (If-None-Match) and its cache. BuildKit's User-Agent ("buildkit/v") is not checked.
      async custom(h) {
        const server = await serveRoutes({ '/foo': { content: 'content1', etag: etag() } });
        try {
          const dockerfile = `FROM scratch\nADD ${server.url}/foo /dest/\n`;
          const a = await h.build({ dockerfile });
          await h.expectImage(a, { files: { 'dest/foo': 'content1' } });
          const b = await h.build({ dockerfile });
          expect(b.exitCode, b.output).toBe(0);
          expect(server.requests['/foo']?.map((r) => r.method)).toEqual(['GET', 'HEAD']);
        } finally {
          server.close();
        }
      },
      gap: 'downloads the URL again with a GET on every build (no HEAD/ETag check)',
    },
    {
      name: 'testDockerfileADDFromURL',
      file,
      dockerfile: '',
      // The second half: a URL with an empty last path component is saved as __unnamed__, with
      // the Last-Modified time as its modification time.
      async custom(h) {
        const modTime = new Date(Math.floor(Date.now() / 1000 - 24 * 3600) * 1000);
        const server = await serveRoutes({ '/': { content: 'content2', etag: etag(), lastModified: modTime } });
        try {
          const r = await h.build({ dockerfile: `FROM scratch\nADD ${server.url}/ /dest/\n` });
          await h.expectImage(r, { files: { 'dest/__unnamed__': 'content2' } });
          const out = path.join(r.dir, 'mtime.tar');
          const e = await h.gantry(['export', r.tag, '-o', out]);
          expect(e.exitCode, e.output).toBe(0);
          const extract = tar.extract();
          const { createReadStream } = await import('node:fs');
          createReadStream(out).pipe(extract);
          let mtime: Date | undefined;
          for await (const entry of extract) {
            if (entry.header.name.replace(/^\.?\/+/, '') === 'dest/__unnamed__') mtime = entry.header.mtime;
            entry.resume();
          }
          expect(mtime?.toUTCString()).toBe(modTime.toUTCString());
        } finally {
          server.close();
        }
      },
    },
    // testDockerfileAddArchive, one check per build of the test.
    served('testDockerfileAddArchive', {}, 'FROM scratch\nADD t.tar /\n', { files: { foo: content0 } }, { binaries: { 't.tar': tFoo } }),
    served('testDockerfileAddArchive', {}, 'FROM scratch\nADD t.tar.gz /\n', { files: { foo: content0 } }, { binaries: { 't.tar.gz': tFooGz } }),
    served('testDockerfileAddArchive', {}, '\n\tFROM scratch\n\tADD --unpack=false t.tar.gz /\n\t', { absent: ['foo'], files: { 't.tar.gz': asText(tFooGz) } }, { binaries: { 't.tar.gz': tFooGz } }),
    served('testDockerfileAddArchive', {}, 'FROM scratch\nCOPY t.tar.gz /\n', { absent: ['foo'], files: { 't.tar.gz': asText(tFooGz) } }, { binaries: { 't.tar.gz': tFooGz } }),
    served('testDockerfileAddArchive', { '/t.tar.gz': { content: tFooGz, etag: etag() } }, 'FROM scratch\nADD {url}/t.tar.gz /\n', { absent: ['foo'], files: { 't.tar.gz': asText(tFooGz) } }),
    served('testDockerfileAddArchive', { '/t.tar.gz': { content: tFooGz, etag: etag() } }, 'FROM scratch\nADD --unpack=true {url}/t.tar.gz /dest/\n', { files: { 'dest/foo': content0 } }),
    served('testDockerfileAddArchive', { '/t.tar.gz': { content: tFooGz, etag: etag() } }, 'FROM scratch\nADD {url}/t.tar.gz /newname.tar.gz\n', { files: { 'newname.tar.gz': asText(tFooGz) } }),
    served(
      'testDockerfileAddArchiveWithImpliedParentDir',
      {},
      'FROM scratch\nADD t.tar.gz /\n',
      { files: { 'etc/dnf/dnf.conf': content0 } },
      { binaries: { 't.tar.gz': gzipSync(tarball([{ name: 'etc/dnf/', type: 'dir', mode: 0o755 }, { name: 'etc/dnf/dnf.conf', content: content0, mode: 0o644 }])) } },
    ),
    {
      name: 'testDockerfileAddArchiveThroughAbsoluteSymlink',
      file,
      dockerfile: '',
      // The second archive goes through var/run -> /run (absolute), made by the first; the hard
      // link must be the same file as its target.
      async custom(h) {
        const dir = (name: string): TarEntry => ({ name, type: 'dir', mode: 0o755 });
        const rootfs = tarball([dir('run/'), dir('var/'), { name: 'var/run', type: 'symlink', linkname: '/run', mode: 0o777 }]);
        const head = 'ref: refs/heads/main\n';
        const payload = tarball([
          dir('var/run/act/'), dir('var/run/act/actions/'), dir('var/run/act/actions/broad/'), dir('var/run/act/actions/broad/.git/'),
          { name: 'var/run/act/actions/broad/.git/HEAD', content: head, mode: 0o644 },
          { name: 'var/run/act/actions/broad/.git/HEAD.link', type: 'link', linkname: 'var/run/act/actions/broad/.git/HEAD', mode: 0o644 },
        ]);
        const r = await buildWithFiles(h, { dockerfile: 'FROM scratch\nADD rootfs.tar /\nADD payload.tar /\n' }, { 'rootfs.tar': rootfs, 'payload.tar': payload });
        const base = 'run/act/actions/broad/.git';
        await h.expectImage(r, { files: { [`${base}/HEAD`]: head, [`${base}/HEAD.link`]: head }, symlinks: { 'var/run': '/run' } });
        const image = await h.files(r.tag);
        const a = image.get(`${base}/HEAD`)!;
        const b = image.get(`${base}/HEAD.link`)!;
        // One of the two is a hard link to the other.
        const linked = (a.type === 'link' && a.linkname.replace(/^\/+/, '') === `${base}/HEAD.link`) || (b.type === 'link' && b.linkname.replace(/^\/+/, '') === `${base}/HEAD`);
        expect(linked, `${a.type} ${a.linkname} / ${b.type} ${b.linkname}`).toBe(true);
      },
    },
    served(
      'testDockerfileAddChownArchive',
      {},
      'FROM scratch\nADD --chown=100:200 t.tar /out/\n',
      { files: { 'out/foo': content0 }, owners: { 'out/foo': '100:200', out: '100:200' } },
      { binaries: { 't.tar': tFoo } },
    ),
    served(
      'testDockerfileAddArchiveWildcard',
      {},
      'FROM scratch\nADD *.tar /dest\n',
      { files: { 'dest/foo': content0, 'dest/bar': 'content1' } },
      { binaries: { 't.tar': tFoo, 'b.tar': tarball([{ name: 'bar', content: 'content1', mode: 0o644 }]) } },
    ),
    {
      name: 'testDockerfileAddChownExpand',
      file,
      // Debian's busybox names gid 65534 "nogroup", Docker Hub's "nobody": renamed first.
      dockerfile: 'FROM busybox\nRUN sed -i \'s/^nogroup:/nobody:/\' /etc/group\nARG group\nENV owner 1000\nADD --chown=${owner}:${group} foo /\nRUN [ "$(stat -c "%u %G" /foo)" == "1000 nobody" ]\n',
      context: { foo: { content: 'foo-contents', mode: 0o600 } },
      buildArgs: { group: 'nobody' },
      owners: { foo: '1000:65534' },
    },
    served(
      'testAddURLChmod',
      { '/foo': { content: 'content1', etag: etag() } },
      `
FROM busybox AS build
ADD --chmod=644 {url}/foo /tmp/foo1
ADD --chmod=755 {url}/foo /tmp/foo2
ADD --chmod=0413 {url}/foo /tmp/foo3

ARG mode
ADD --chmod=\${mode} {url}/foo /tmp/foo4

RUN stat -c "%04a" /tmp/foo1 >> /dest && \\
	stat -c "%04a" /tmp/foo2 >> /dest && \\
	stat -c "%04a" /tmp/foo3 >> /dest && \\
	stat -c "%04a" /tmp/foo4 >> /dest

FROM scratch
COPY --from=build /dest /dest
`,
      { files: { dest: '0644\n0755\n0413\n0400\n' } },
      { buildArgs: { mode: '400' } },
    ),
    {
      name: 'testAddInvalidChmod',
      file,
      dockerfile: 'FROM scratch\nADD --chmod=64a foo /\n',
      context: { foo: 'foo-contents' },
      error: /invalid chmod parameter: '64a'\. it should be octal string and between 0 and 07777/,
    },
    {
      name: 'testAddInvalidChmod',
      file,
      dockerfile: 'FROM scratch\nADD --chmod=10000 foo /\n',
      context: { foo: 'foo-contents' },
      error: /invalid chmod parameter: '10000'\. it should be octal string and between 0 and 07777/,
    },
    // testAddChecksum's subtests. BuildKit asserts only that the failing ones fail; the checks
    // also want the output to speak of the checksum.
    served('testAddChecksum', { '/foo': { content: 'content1', etag: etag() } }, `FROM scratch\nADD --checksum=${sha256('content1')} {url}/foo /tmp/foo\n`, { files: { 'tmp/foo': 'content1' } }),
    served('testAddChecksum', { '/foo': { content: 'content1', etag: etag() } }, `FROM scratch\nENV DIGEST=${sha256('content1')}\nENV LINK={url}/foo\nADD --checksum=\${DIGEST} \${LINK} /tmp/foo\n`, { files: { 'tmp/foo': 'content1' } }),
    served('testAddChecksum', { '/foo': { content: 'content1', etag: etag() } }, `FROM scratch\nADD --checksum=${sha256('')} {url}/foo /tmp/foo\n`, { error: /checksum|digest/i }),
    served('testAddChecksum', { '/foo': { content: 'content1', etag: etag() } }, 'FROM scratch\nADD --checksum=md5:7e55db001d319a94b0b713529a756623 {url}/foo /tmp/foo\n', { error: /checksum|digest|algorithm/i }),
    served('testAddChecksum', { '/foo': { content: 'content1', etag: etag() } }, `FROM scratch\nADD --checksum=unknown:${sha256('content1').slice(7)} {url}/foo /tmp/foo\n`, { error: /checksum|digest|algorithm/i }),
    served('testAddChecksum', { '/foo': { content: 'content1', etag: etag() } }, `FROM scratch\nADD --checksum=${sha256('content1').slice(7)} {url}/foo /tmp/foo\n`, { error: /checksum|digest/i }),
    {
      name: 'testAddChecksum',
      file,
      dockerfile: `FROM scratch\nADD --checksum=${sha256('local file')} foo /tmp/foo\n`,
      context: { foo: { content: 'local file', mode: 0o600 } },
      error: /checksum/i,
    },
  ],
  notPorted: [],
} satisfies CheckFile;
