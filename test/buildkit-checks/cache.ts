import { execFileSync } from 'node:child_process';
import { renameSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { registryIndex, withRegistry } from '../helpers/registry.js';
import type { BuildResult, CheckFile, Harness } from './types.js';

const file = 'dockerfile_cache_test.go';

const ok = (r: BuildResult): void => expect(r.exitCode, r.output).toBe(0);
const fileOf = async (h: Harness, tag: string, p: string): Promise<string> => {
  const e = (await h.files(tag)).get(p);
  expect(e, `${p} in ${tag}`).toBeDefined();
  return e!.content;
};

const noCacheDockerfile = `
FROM busybox AS s0
RUN cat /dev/urandom | head -c 100 | sha256sum | tee unique
FROM busybox AS s1
RUN cat /dev/urandom | head -c 100 | sha256sum | tee unique2
FROM scratch
COPY --from=s0 unique /
COPY --from=s1 unique2 /
`;

const exportLoopDockerfile = `
FROM busybox as base
RUN echo aa > /foo
WORKDIR /bar

FROM base as base1
COPY hello.txt .

FROM base as base2
COPY --from=base1 /bar/hello.txt .
RUN true

FROM scratch
COPY --from=base2 /foo /f
`;

/**
 * BuildKit's testCacheImportExport (and, with `oci-mediatypes=true`, its image-manifest
 * variant): a registry cache exported with the default mode, the build cache pruned, the build
 * again from it: a file a RUN wrote at random is the same.
 */
const multiPlatformCache = `
FROM --platform=$BUILDPLATFORM busybox AS base
ARG TARGETARCH
RUN echo -n $TARGETARCH> arch && cat /dev/urandom | head -c 100 | sha256sum > unique
FROM scratch
COPY --from=base unique /
COPY --from=base arch /
`;

interface PushedPlatform {
  platform: string;
  /** A file of the image's layer `i`. */
  file(i: number, name: string): string;
}

/** A multi-platform image in a registry: the index's digest, and each platform's image's layers. */
async function pushedPlatforms(host: string, repo: string, tag: string): Promise<{ digest: string; images: PushedPlatform[] }> {
  const { digest, images } = await registryIndex(host, repo, tag);
  return {
    digest,
    images: images.map((im) => ({ platform: im.platform, file: (i, name) => execFileSync('tar', ['-xzO', name], { input: im.layers[i] as Buffer, encoding: 'utf8' }) })),
  };
}

async function cacheImportExport(h: Harness, extra: string[]): Promise<void> {
  await withRegistry(async (host) => {
    const cache = `${host}/buildkit/testexportdf:latest`;
    const spec = {
      dockerfile: '\nFROM busybox AS base\nCOPY foo const\nRUN cat /dev/urandom | head -c 100 | sha256sum > unique\nFROM scratch\nCOPY --from=base const /\nCOPY --from=base unique /\n',
      context: { foo: { content: 'foobar', mode: 0o600 } },
    };
    const a = await h.build({ ...spec, args: ['--cache-to', ['type=registry', `ref=${cache}`, ...extra].join(',')] });
    ok(a);
    const manifest = await (await fetch(`http://${cache.replace('/buildkit/', '/v2/buildkit/').replace(':latest', '/manifests/latest')}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json() as { mediaType: string; config: { mediaType: string } };
    expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(manifest.config.mediaType).toBe('application/vnd.gantry.cache.config.v1+json');
    expect(await fileOf(h, a.tag, 'const')).toBe('foobar');
    const unique = await fileOf(h, a.tag, 'unique');
    expect((await h.gantry(['rmi', a.tag])).exitCode).toBe(0);
    expect((await h.gantry(['prune', '--all'])).exitCode).toBe(0);
    const b = await h.build({ ...spec, args: ['--cache-from', cache] });
    ok(b);
    expect(await fileOf(h, b.tag, 'const')).toBe('foobar');
    expect(await fileOf(h, b.tag, 'unique')).toBe(unique);
  });
}

export default {
  file,
  checks: [
    {
      name: 'testReproducibleIDs',
      file,
      dockerfile: '',
      // Two builds under two names: the same image. BuildKit compares the manifests' digests
      // in containerd; here the image IDs (config digests) and the layers.
      async custom(h) {
        const spec = { dockerfile: '\nFROM busybox\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n', context: { foo: { content: 'foo-contents', mode: 0o600 } } };
        const a = await h.build(spec, { tag: 'example.com/moby/dockerfileids:test' });
        ok(a);
        const b = await h.build(spec, { tag: 'example.com/moby/dockerfileids2:test' });
        ok(b);
        const ia = await h.inspect(a.tag);
        const ib = await h.inspect(b.tag);
        expect(ib.Id).toBe(ia.Id);
        expect(ib.RootFS).toEqual(ia.RootFS);
      },
    },
    {
      name: 'testNoCache',
      file,
      dockerfile: '',
      // The first two builds: --no-cache runs both stages again.
      async custom(h) {
        const a = await h.build({ dockerfile: noCacheDockerfile });
        ok(a);
        const b = await h.build({ dockerfile: noCacheDockerfile, args: ['--no-cache'] });
        ok(b);
        expect(await fileOf(h, b.tag, 'unique')).not.toBe(await fileOf(h, a.tag, 'unique'));
        expect(await fileOf(h, b.tag, 'unique2')).not.toBe(await fileOf(h, a.tag, 'unique2'));
      },
    },
    {
      name: 'testNoCache',
      file,
      dockerfile: '',
      // The third build: no-cache for stage s1 only (docker build --no-cache-filter s1).
      async custom(h) {
        const a = await h.build({ dockerfile: noCacheDockerfile, args: ['--no-cache'] });
        ok(a);
        const b = await h.build({ dockerfile: noCacheDockerfile, args: ['--no-cache-filter', 's1'] });
        ok(b);
        expect(await fileOf(h, b.tag, 'unique')).toBe(await fileOf(h, a.tag, 'unique'));
        expect(await fileOf(h, b.tag, 'unique2')).not.toBe(await fileOf(h, a.tag, 'unique2'));
      },
    },
    {
      name: 'testCacheMountModeNoCache',
      file,
      dockerfile: '',
      // A --no-cache build starts from an empty cache mount; a build with the cache then finds
      // the first build's file. The mount has an id of its own here (BuildKit's test uses the
      // target as id), so that other checks' /cache mounts in the same store do not meet it.
      async custom(h) {
        const dockerfile = '\nFROM busybox AS base\nARG FOO=abc\nRUN --mount=type=cache,id=bk-cachemodenocache,target=/cache,mode=0773 touch /cache/$FOO && ls -l /cache | wc -l > /out\n\nFROM scratch\nCOPY --from=base /out /\n';
        const a = await h.build({ dockerfile });
        ok(a);
        expect(await fileOf(h, a.tag, 'out')).toBe('2\n');
        const b = await h.build({ dockerfile, args: ['--no-cache'], buildArgs: { FOO: 'def' } });
        ok(b);
        expect(await fileOf(h, b.tag, 'out')).toBe('2\n');
        const c = await h.build({ dockerfile, buildArgs: { FOO: 'ghi' } });
        ok(c);
        expect(await fileOf(h, c.tag, 'out')).toBe('3\n');
      },
    },
    {
      name: 'testWildcardRenameCache',
      file,
      dockerfile: '',
      // FROM alpine in BuildKit's test. Renaming file1 to file2 must invalidate the COPY's cache,
      // so the RUN fails.
      async custom(h) {
        const dockerfile = '\nFROM busybox\nCOPY file* /files/\nRUN ls /files/file1\n';
        const a = await h.build({ dockerfile, context: { file1: { content: 'foo', mode: 0o600 } } });
        ok(a);
        renameSync(path.join(a.ctx, 'file1'), path.join(a.ctx, 'file2'));
        const b = await h.build({ dockerfile }, { keepContext: true });
        expect(b.exitCode, b.output).not.toBe(0);
        expect(b.exitCode, b.output).not.toBe(70);
        expect(b.output).toMatch(/file1/);
      },
    },
    {
      name: 'testExportCacheLoop',
      file,
      dockerfile: '',
      // A local cache exported, the build cache pruned, then the same build importing from and
      // exporting to the same directory at once.
      async custom(h) {
        const spec = { dockerfile: exportLoopDockerfile, context: { 'hello.txt': { content: 'hello', mode: 0o600 } } };
        ok(await h.build({ ...spec, args: ['--cache-to', 'type=local,dest={work}/cache'] }));
        expect((await h.gantry(['prune', '--all'])).exitCode).toBe(0);
        const again = await h.build({ ...spec, args: ['--cache-to', 'type=local,dest={work}/cache', '--cache-from', 'type=local,src={work}/cache'] });
        ok(again);
        await h.expectImage(again, { files: { f: 'aa\n' } });
      },
    },
    {
      name: 'testImportExportReproducibleIDs',
      file,
      dockerfile: '',
      // The cache exported to a registry, the image and the build cache removed, the build again
      // from the registry's cache: the same image. BuildKit compares the manifests in
      // containerd; here the image IDs.
      async custom(h) {
        await withRegistry(async (host) => {
          const cache = `${host}/test/dockerfileexpids:cache`;
          const spec = { dockerfile: '\nFROM busybox\nENV foo=bar\nCOPY foo /\nRUN echo bar > bar\n', context: { foo: { content: 'foobar', mode: 0o600 } } };
          const a = await h.build({ ...spec, args: ['--cache-to', `type=registry,ref=${cache}`] }, { tag: 'example.com/moby/dockerfileexpids:test' });
          ok(a);
          const id = (await h.inspect(a.tag)).Id;
          expect((await h.gantry(['rmi', a.tag])).exitCode).toBe(0);
          expect((await h.gantry(['prune', '--all'])).exitCode).toBe(0);
          const b = await h.build({ ...spec, args: ['--cache-to', `type=registry,ref=${cache}`, '--cache-from', cache] }, { tag: 'example.com/moby/dockerfileexpids2:test' });
          ok(b);
          expect(b.output).toMatch(/RUN echo bar > bar\n#\d+ CACHED/);
          expect((await h.inspect(b.tag)).Id).toBe(id);
        });
      },
    },
    {
      name: 'testCacheMultiPlatformImportExport',
      file,
      dockerfile: multiPlatformCache,
      gap: "as testCacheImportExport: an inline cache is mode=min, and gantry runs the $BUILDPLATFORM stage again (a new /unique for each platform) where BuildKit's COPY --from hits by the stage's definition; the two-platform image, its index and the inline cache of each platform (asserted before) hold",
      // Two platforms, an inline cache, pushed; then, twice, everything removed and built again
      // from the pushed image's cache: the same index, each platform's random file as before.
      async custom(h) {
        await withRegistry(async (host) => {
          const target = `${host}/buildkit/testexportdf:multi-img`;
          const build = async (from: string[]): Promise<void> => ok(await h.build({ dockerfile: multiPlatformCache, args: ['--platform', 'linux/amd64,linux/arm/v7', '--cache-to', 'type=inline', ...from, '--push'] }, { tag: target }));
          await build([]);
          const first = await pushedPlatforms(host, 'buildkit/testexportdf', 'multi-img');
          expect(first.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
          expect(first.images.map((i) => i.platform)).toEqual(['linux/amd64', 'linux/arm/v7']);
          const [amd, arm] = first.images as [PushedPlatform, PushedPlatform];
          expect(amd.file(1, 'arch')).toBe('amd64');
          expect(amd.file(0, 'unique')).not.toBe(arm.file(0, 'unique'));
          for (let round = 0; round < 2; round++) {
            expect((await h.gantry(['rmi', target])).exitCode).toBe(0);
            expect((await h.gantry(['prune', '--all'])).exitCode).toBe(0);
            await build(['--cache-from', target]);
            const again = await pushedPlatforms(host, 'buildkit/testexportdf', 'multi-img');
            expect(again.digest).toBe(first.digest);
            const [amd2, arm2] = again.images as [PushedPlatform, PushedPlatform];
            expect(arm2.file(1, 'arch')).toBe('arm');
            expect(amd2.file(0, 'unique')).toBe(amd.file(0, 'unique'));
            expect(arm2.file(0, 'unique')).toBe(arm.file(0, 'unique'));
          }
        });
      },
    },
    {
      name: 'testCacheImportExport',
      file,
      dockerfile: '',
      gap: "BuildKit's default mode=min keys COPY --from by the stage's definition and never runs a stage whose result the cache already has; gantry runs the intermediate stage again (a new /unique) and copies what it made",
      async custom(h) {
        await cacheImportExport(h, []);
      },
    },
    {
      name: 'testImageManifestCacheImportExport',
      file,
      dockerfile: '',
      gap: 'as testCacheImportExport: with mode=min the intermediate stage runs again (the manifest and config media types asserted before that hold)',
      async custom(h) {
        await cacheImportExport(h, ['oci-mediatypes=true']);
      },
    },
  ],
  notPorted: [
    { name: 'testCacheReleased', file, reason: "asserts BuildKit's solver internals: every cache record releasable and the disk usage empty after a prune" },
  ],
} satisfies CheckFile;
