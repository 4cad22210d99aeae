import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { withRegistry } from '../helpers/registry.js';
import type { CheckFile } from './types.js';

const file = 'dockerfile_namedcontext_test.go';

// Named contexts are docker build's --build-context NAME=VALUE (BuildKit's context:NAME
// attribute). BuildKit's images come from a registry; here from the suite's store, made by the
// checks themselves (an "alpine" is busybox with /etc/alpine-release).

/** A stand-in for alpine in the suite's store: busybox with /etc/alpine-release; returns its tag. */
async function alpineStandIn(h: Parameters<NonNullable<CheckFile['checks'][number]['custom']>>[0], tag: string, extra = ''): Promise<string> {
  const r = await h.build({ dockerfile: `FROM busybox\nCOPY alpine-release /etc/alpine-release\n${extra}`, context: { 'alpine-release': '3.21.0\n' } }, { tag });
  expect(r.exitCode, r.output).toBe(0);
  return tag;
}

export default {
  file,
  checks: [
    {
      name: 'testNamedImageContext',
      file,
      dockerfile: '',
      async custom(h) {
        // The image named busybox replaced by another (no tag given: latest).
        const alpine = await alpineStandIn(h, 'bknamed/alpine:latest');
        const r = await h.build({
          dockerfile: '\nFROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /out /\n',
          args: ['--build-context', 'busybox=docker-image://bknamed/alpine'],
        });
        await h.expectImage(r, { files: { out: '3.21.0\n' } });
        // An image with an environment of its own: RUN sees it.
        const custom = await h.build({ dockerfile: `\nFROM ${alpine}\nENV PATH=/foobar:$PATH\nENV FOOBAR=foobar\n` }, { tag: 'bknamed/custom:latest' });
        expect(custom.exitCode, custom.output).toBe(0);
        const e = await h.build({
          dockerfile:
            '\nFROM busybox AS base\nRUN cat /etc/alpine-release > /out\nRUN env | grep PATH > /env_path\nRUN env | grep FOOBAR > /env_foobar\nFROM scratch\nCOPY --from=base /out /\nCOPY --from=base /env_path /\nCOPY --from=base /env_foobar /\n',
          args: ['--build-context', 'busybox=docker-image://bknamed/custom:latest'],
        });
        await h.expectImage(e, { files: { out: '3.21.0\n', env_path: /^PATH=\/foobar:/, env_foobar: 'FOOBAR=foobar\n' } });
      },
    },
    {
      name: 'testNamedImageContextScratch',
      file,
      dockerfile: '\nFROM busybox AS build\nCOPY <<EOF /out\nhello world!\nEOF\n',
      args: ['--build-context', 'busybox=docker-image://scratch'],
      files: { out: 'hello world!\n' },
      absent: ['bin', 'bin/busybox'],
    },
    {
      name: 'testNamedLocalContext',
      file,
      dockerfile: '',
      // The stage `base` replaced by a local directory (with its own .dockerignore).
      async custom(h) {
        const dir2 = mkdtempSync(path.join(tmpdir(), 'bk-named-'));
        try {
          mkdirSync(dir2, { recursive: true });
          writeFileSync(path.join(dir2, 'out'), 'dummy-result', { mode: 0o600 });
          writeFileSync(path.join(dir2, 'out2'), 'dummy-result', { mode: 0o600 });
          writeFileSync(path.join(dir2, '.dockerignore'), 'out2\n', { mode: 0o600 });
          const r = await h.build({
            dockerfile: '\nFROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /o* /\n',
            args: ['--build-context', `base=${dir2}`],
          });
          await h.expectImage(r, { files: { out: 'dummy-result' }, absent: ['out2'] });
        } finally {
          rmSync(dir2, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'testNamedOCILayoutContext',
      file,
      dockerfile: '',
      // An image written as an OCI layout takes the place of the stage `base` and of the image
      // `foo`: its files and its ENV foo=bar.
      async custom(h) {
        const layoutBuild = await h.build({
          dockerfile: '\nFROM busybox:latest\nWORKDIR /test\nRUN sh -c "echo -n first > out"\nRUN sh -c "echo -n second > out2"\nENV foo=bar\n',
          args: ['-o', 'type=oci,dest={work}/layout,tar=false'],
        });
        expect(layoutBuild.exitCode, layoutBuild.output).toBe(0);
        const layout = path.join(layoutBuild.dir, 'layout');
        const index = JSON.parse(readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
        expect(index.manifests).toHaveLength(1);
        const ref = `oci-layout://${layout}@${index.manifests[0]!.digest}`;
        const r = await h.build({
          dockerfile:
            '\nFROM busybox AS base\nRUN cat /etc/alpine-release > out\n\nFROM foo AS imported\nRUN echo -n $foo > outfoo\n\nFROM scratch\nCOPY --from=base /test/o* /\nCOPY --from=imported /test/outfoo /\n',
          args: ['--build-context', `base=${ref}`, '--build-context', `foo=${ref}`],
        });
        await h.expectImage(r, { files: { out: 'first', out2: 'second', outfoo: 'bar' } });
      },
    },
    {
      name: 'testNamedImageContextPlatform',
      file,
      dockerfile: '',
      // An image pushed as an index (BUILDKIT_MULTI_PLATFORM=true, one platform), named by a
      // docker-image:// context in a build for a platform no image has (darwin/ppc64le): the
      // stage on $BUILDPLATFORM takes the index's image for the build platform.
      async custom(h) {
        await withRegistry(async (host) => {
          const target = `${host}/buildkit/testnamedimagecontextplatform:latest`;
          // (A marker file beside BuildKit's FROM line, so that the second build shows which image it used.)
          const pushed = await h.build({ dockerfile: 'FROM --platform=$BUILDPLATFORM busybox:latest\nCOPY marker /marker\n', context: { marker: 'pushed\n' }, buildArgs: { BUILDKIT_MULTI_PLATFORM: 'true' }, args: ['--push'] }, { tag: target });
          expect(pushed.exitCode, pushed.output).toBe(0);
          const res = await fetch(`http://${host}/v2/buildkit/testnamedimagecontextplatform/manifests/latest`, { headers: { accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json' } });
          expect(res.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
          const r = await h.build({ dockerfile: '\nFROM --platform=$BUILDPLATFORM busybox AS target\nRUN echo hello && cat /marker\n', args: ['--build-context', `busybox=docker-image://${target}`, '--platform', 'darwin/ppc64le'] });
          expect(r.exitCode, r.output).toBe(0);
          expect(r.output).toMatch(/^#\d+ pushed$/m);
        });
      },
    },
  ],
  notPorted: [
    { name: 'testNamedImageContextTimestamps', file, reason: "BuildKit's image from a registry with its own history timestamps, compared with a named context's: needs the registry image BuildKit builds and its created times" },
    { name: 'testNamedOCILayoutContextExport', file, reason: "an OCI layout exported with BuildKit's ContentStore API (the client's OCIStores), which docker build has no option for" },
    { name: 'testNamedInputContext', file, reason: 'a frontend input (an LLB definition) passed through the gateway API' },
    { name: 'testNamedMultiplatformInputContext', file, reason: 'frontend inputs (LLB definitions for two platforms) passed through the gateway API' },
    { name: 'testNamedFilteredContext', file, reason: "it asserts which files BuildKit's filesync transfers" },
    { name: 'testSourcePolicyWithNamedContext', file, reason: 'BuildKit source policies, which gantry lacks' },
    { name: 'testEagerNamedContextLookup', file, reason: "it asserts BuildKit's lookup of named contexts through the gateway" },
  ],
} satisfies CheckFile;
