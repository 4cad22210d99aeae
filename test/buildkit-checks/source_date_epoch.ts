import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_source_date_epoch_test.go';

// Most of these tests check the `buildkit/rewritten-timestamp` annotation that BuildKit's
// exporters put on layers with `rewrite-timestamp=true`, asked for here as buildx asks for it
// (-o type=oci,dest=…,rewrite-timestamp=true). Several use features of BuildKit's Dockerfile
// frontend 1.26 (a SOURCE_DATE_EPOCH default in the Dockerfile, `context`, a stage as the
// epoch's source), newer than Docker 28.5's.

const json = (tarball: string, member: string): Record<string, unknown> => JSON.parse(execFileSync('tar', ['-xOf', tarball, member], { encoding: 'utf8' })) as Record<string, unknown>;

interface Layer {
  digest: string;
  annotations?: Record<string, string>;
}

/** The manifest and config of the one image in an OCI layout tar. */
function readOCI(tarball: string): { layers: Layer[]; created: string; history: { created?: string }[] } {
  const idx = json(tarball, 'index.json') as { manifests: { digest: string }[] };
  const mfst = json(tarball, `blobs/sha256/${idx.manifests[0]!.digest.slice(7)}`) as { layers: Layer[]; config: { digest: string } };
  const img = json(tarball, `blobs/sha256/${mfst.config.digest.slice(7)}`) as { created: string; history: { created?: string }[] };
  return { layers: mfst.layers, created: img.created, history: img.history };
}

/** A file's text in a layer of an OCI layout tar. */
function layerFile(tarball: string, layer: Layer, name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-sde-'));
  try {
    execFileSync('tar', ['-xf', tarball, '-C', dir, `blobs/sha256/${layer.digest.slice(7)}`]);
    return execFileSync('tar', ['-xOf', path.join(dir, 'blobs', 'sha256', layer.digest.slice(7)), name], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const unix = (iso: string): number => Math.floor(Date.parse(iso) / 1000);

/** Builds to an OCI layout tar (`exporter` are more keys of the -o) and returns the path. */
async function buildOCI(h: Harness, dockerfile: string, opts: { exporter?: string; buildArgs?: Record<string, string> } = {}): Promise<string> {
  const r = await h.build({ dockerfile, ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}), args: ['-o', `type=oci,dest={work}/out.tar${opts.exporter ?? ''}`] });
  await h.expectImage(r, {});
  return path.join(r.dir, 'out.tar');
}

/** BuildKit's makeTarContext: a tar of 0600 files with the given times, served at /src.tar (with an ETag) while `run` runs. */
async function withTarServer(files: { name: string; data: string; mtime: number }[], run: (url: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-sde-'));
  let server: Server | undefined;
  try {
    for (const f of files) {
      writeFileSync(path.join(dir, f.name), f.data, { mode: 0o600 });
      utimesSync(path.join(dir, f.name), f.mtime, f.mtime);
    }
    const tarball = execFileSync('tar', ['-cf', '-', '--numeric-owner', '--owner=0', '--group=0', '-C', dir, ...files.map((f) => f.name)]);
    const s = createServer((req, res) => {
      if (req.url !== '/src.tar') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { ETag: '"bk-sde-src"', 'Content-Length': tarball.length }).end(tarball);
    });
    server = s;
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    await run(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  } finally {
    if (server) await new Promise((resolve) => server!.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

const defaultDockerfile = (epoch: number | string): string => `\nARG SOURCE_DATE_EPOCH=${epoch}\nFROM scratch\nCOPY Dockerfile .\n`;
const rewrite = ',rewrite-timestamp=true';
const noRewriteKey = 'no rewrite-timestamp= for -o type=oci (the key is refused) and no buildkit/rewritten-timestamp layer annotation';

export default {
  file,
  checks: [
    {
      name: 'testSourceDateEpochWithoutExporter',
      file,
      dockerfile: '',
      // BuildKit turns the exporter's own epoch off to test the frontend's; gantry has one.
      async custom(h) {
        const out = await buildOCI(h, '\nFROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n', { buildArgs: { SOURCE_DATE_EPOCH: '1700000001' } });
        const img = readOCI(out);
        expect(unix(img.created)).toBe(1700000001);
        for (const e of img.history) expect(unix(e.created ?? '')).toBe(1700000001);
      },
    },
    {
      name: 'testSourceDateEpochDockerfileDefault',
      file,
      dockerfile: '',
      gap: `${noRewriteKey}; the Dockerfile's ARG SOURCE_DATE_EPOCH default (dockerfile 1.26) is not taken as the build's epoch`,
      async custom(h) {
        const tm = Date.UTC(2015, 9, 21, 7, 28) / 1000;
        const { layers } = readOCI(await buildOCI(h, defaultDockerfile(tm), { exporter: rewrite }));
        expect(layers).toHaveLength(1);
        expect(layers[0]!.annotations?.['buildkit/rewritten-timestamp']).toBe(String(tm));
      },
    },
    {
      name: 'testSourceDateEpochDockerfileDefaultOverride',
      file,
      dockerfile: '',
      gap: noRewriteKey,
      async custom(h) {
        const { layers } = readOCI(await buildOCI(h, defaultDockerfile(1700000001), { exporter: rewrite, buildArgs: { SOURCE_DATE_EPOCH: '1700000002' } }));
        expect(layers).toHaveLength(1);
        expect(layers[0]!.annotations?.['buildkit/rewritten-timestamp']).toBe('1700000002');
      },
    },
    {
      name: 'testSourceDateEpochDockerfileDefaultReset',
      file,
      dockerfile: '',
      // The exporter's source-date-epoch= set empty drops the Dockerfile's default.
      gap: 'no rewrite-timestamp= nor source-date-epoch= for -o type=oci (the keys are refused)',
      async custom(h) {
        const tm = Date.UTC(2015, 9, 21, 7, 28) / 1000;
        const { layers } = readOCI(await buildOCI(h, defaultDockerfile(tm), { exporter: `,source-date-epoch=${rewrite}` }));
        expect(layers).toHaveLength(1);
        expect(layers[0]!.annotations?.['buildkit/rewritten-timestamp'] ?? '').toBe('');
      },
    },
    {
      name: 'testSourceDateEpochDockerfileDefaultInvalid',
      file,
      dockerfile: defaultDockerfile('not-a-timestamp'),
      args: ['-o', 'type=oci,dest={work}/out.tar'],
      error: /invalid SOURCE_DATE_EPOCH: not-a-timestamp/,
      gap: "the Dockerfile's ARG SOURCE_DATE_EPOCH default (dockerfile 1.26) is not read: the build succeeds",
    },
    {
      name: 'testSourceDateEpochContextLocalUnset',
      file,
      dockerfile: '',
      // SOURCE_DATE_EPOCH=context with a local context: no epoch.
      gap: `${noRewriteKey}; SOURCE_DATE_EPOCH=context (dockerfile 1.26) is not understood`,
      async custom(h) {
        const { layers } = readOCI(await buildOCI(h, 'FROM scratch\nCOPY Dockerfile /\n', { exporter: rewrite, buildArgs: { SOURCE_DATE_EPOCH: 'context' } }));
        expect(layers).toHaveLength(1);
        expect(layers[0]!.annotations?.['buildkit/rewritten-timestamp'] ?? '').toBe('');
      },
    },
    {
      name: 'testSourceDateEpochStageHTTPArchive',
      file,
      dockerfile: '',
      gap: `${noRewriteKey}; a stage as the SOURCE_DATE_EPOCH default (dockerfile 1.26) is not understood`,
      custom: (h) =>
        withTarServer([{ name: 'foo', data: 'bar', mtime: 1700000402 }], async (url) => {
          const out = await buildOCI(h, `\nARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD ${url}/src.tar /\n\nFROM busybox\nARG SOURCE_DATE_EPOCH\nRUN echo -n "$SOURCE_DATE_EPOCH" >/epoch\n`, { exporter: rewrite });
          const img = readOCI(out);
          const last = img.layers[img.layers.length - 1]!;
          expect(last.annotations?.['buildkit/rewritten-timestamp']).toBe('1700000402');
          expect(layerFile(out, last, 'epoch')).toBe('1700000402');
          expect(unix(img.created)).toBe(1700000402);
        }),
    },
    {
      name: 'testSourceDateEpochStageOverride',
      file,
      dockerfile: '',
      gap: `${noRewriteKey}; a stage as the SOURCE_DATE_EPOCH default (dockerfile 1.26) is not understood`,
      custom: (h) =>
        withTarServer([{ name: 'foo', data: 'bar', mtime: 1700000501 }], async (url) => {
          const out = await buildOCI(h, `\nARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nADD ${url}/src.tar /\n\nFROM scratch\nCOPY Dockerfile .\n`, {
            exporter: rewrite,
            buildArgs: { SOURCE_DATE_EPOCH: '1700000502' },
          });
          const { layers } = readOCI(out);
          expect(layers).toHaveLength(1);
          expect(layers[0]!.annotations?.['buildkit/rewritten-timestamp']).toBe('1700000502');
        }),
    },
    {
      name: 'testSourceDateEpochStageInvalid',
      file,
      dockerfile: '\nARG SOURCE_DATE_EPOCH=mysource\nFROM scratch AS mysource\nCOPY Dockerfile /Dockerfile\n\nFROM scratch\n',
      args: ['-o', 'type=oci,dest={work}/out.tar'],
      error: /SOURCE_DATE_EPOCH stage does not meet source-only requirements/,
      gap: 'a stage as the SOURCE_DATE_EPOCH default (dockerfile 1.26) is not understood: the build succeeds',
    },
  ],
  notPorted: [
    { name: 'testSourceDateEpochContextGit', file, reason: 'needs a git repository as the build context (and SOURCE_DATE_EPOCH=context), which gantry lacks: its context is a local directory' },
    { name: 'testSourceDateEpochContextHTTPLastModified', file, reason: 'needs an http(s) tarball as the build context, which gantry lacks: its context is a local directory' },
    { name: 'testSourceDateEpochContextHTTPArchive', file, reason: 'needs an http(s) tarball as the build context, which gantry lacks: its context is a local directory' },
    { name: 'testSourceDateEpochNamedContextHTTPLastModified', file, reason: 'needs --build-context (a named context from a URL), which gantry lacks (issue 21)' },
    { name: 'testSourceDateEpochNamedContextHTTPArchive', file, reason: 'needs --build-context (a named context from a URL), which gantry lacks (issue 21)' },
    {
      name: 'testReproSourceDateEpoch',
      file,
      reason: "needs amd64/debian:bullseye-20230109-slim from Docker Hub, whose layers and history dates the expected digests depend on, a registry with cache export (oci-mediatypes) and BuildKit's pruning",
    },
  ],
} satisfies CheckFile;
