import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent } from '../helpers/hostile.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// The layer cache cannot be poisoned (issue 6, point 15). A cached step is reused only when
// everything that decides its layer is the same: the base image's digest (not its name),
// FROM scratch versus an image, and every instruction that changes what a RUN runs as or
// with (USER, SHELL, WORKDIR, ENV, ARG). Metadata-only instructions (HEALTHCHECK, ONBUILD,
// LABEL, CMD, ...) cannot change a layer, so they do not invalidate one (as in BuildKit), and
// the image config is never taken from the cache: a changed HEALTHCHECK or ONBUILD always
// reaches the image.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-cache-'));
const store = path.join(work, 'store');
afterAll(() => rmSync(work, { recursive: true, force: true }));
const g = (args: string[]) => execa(bin, ['--root', store, ...args], { reject: false });

let n = 0;
/** Build `dockerfile`; resolves to the plain progress and the image config. */
async function build(dockerfile: string, files: Record<string, string> = {}) {
  const ctx = writeTree(path.join(work, 'ctx', String(++n)), { Dockerfile: dockerfile, ...files });
  const tag = `poison:${n}`;
  const r = await g(['build', '--progress', 'plain', '-t', tag, ctx]);
  expect(r.exitCode, r.stderr).toBe(0);
  const info = JSON.parse((await g(['inspect', tag])).stdout)[0];
  return { out: r.stdout + r.stderr, config: info.Config as Record<string, unknown>, layers: info.RootFS.Layers as string[] };
}

/** Whether the RUN step of a build was taken from the cache. */
const runCached = (out: string): boolean => /#\d+ \[[^\]]*\] RUN[^\n]*\n#\d+ CACHED/.test(out);

beforeAll(async () => {
  haveTool('runc');
  const one = makeBusyboxRootfs(path.join(work, 'bb1'));
  for (const applet of ['date', 'whoami', 'pwd']) symlinkSync('busybox', path.join(one, 'bin', applet));
  expect((await g(['import', tarDir(one, path.join(work, 'bb1.tgz')), 'base:1'])).exitCode).toBe(0);
  // The same name, later pointing at another image (one more file).
  writeFileSync(path.join(one, 'etc', 'variant'), 'two\n');
  expect((await g(['import', tarDir(one, path.join(work, 'bb2.tgz')), 'base:other'])).exitCode).toBe(0);
}, 60_000);

const RUN = 'RUN (id -u; echo "$0"; pwd; echo "$GREETING"; cat /etc/variant 2>/dev/null; true) > /state\n';

describe('what a RUN runs as or with is in its key', () => {
  test.each([
    ['USER', 'USER root\n', 'USER 0:65534\n'],
    ['SHELL', '', 'SHELL ["/bin/busybox", "sh", "-c"]\n'],
    ['WORKDIR', 'WORKDIR /tmp\n', 'WORKDIR /root\n'],
    ['ENV', 'ENV GREETING=one\n', 'ENV GREETING=two\n'],
    ['ARG', 'ARG GREETING=one\n', 'ARG GREETING=two\n'],
  ])('a changed %s re-runs the RUN after it', async (_, a, b) => {
    const first = await build(`FROM base:1\n${a}${RUN}`);
    const again = await build(`FROM base:1\n${a}${RUN}`);
    expect(runCached(again.out)).toBe(true); // the control: unchanged, it is cached
    const changed = await build(`FROM base:1\n${b}${RUN}`);
    expect(runCached(changed.out)).toBe(false);
    expect(changed.layers).not.toEqual(first.layers);
  });
});

describe('the base is its digest', () => {
  test('a tag moved to another image re-runs everything on it', async () => {
    const first = await build(`FROM base:1\n${RUN}`);
    expect((await g(['tag', 'base:other', 'base:1'])).exitCode).toBe(0);
    const moved = await build(`FROM base:1\n${RUN}`);
    expect(runCached(moved.out)).toBe(false);
    expect(moved.layers.at(-1)).not.toBe(first.layers.at(-1));
  });

  test('FROM scratch is distinct from an image', async () => {
    const dockerfile = (from: string) => `FROM ${from}\nCOPY f /f\n`;
    const scratch = await build(dockerfile('scratch'), { f: 'same' });
    const onBase = await build(dockerfile('base:other'), { f: 'same' });
    expect(onBase.out).not.toMatch(/COPY f \/f\n#\d+ CACHED/);
    expect(onBase.layers.length).toBe(scratch.layers.length + 1);
  });
});

describe('metadata never comes from the cache', () => {
  test.each([
    ['HEALTHCHECK', 'HEALTHCHECK CMD true\n', 'HEALTHCHECK --interval=7s CMD false\n', 'Healthcheck'],
    ['ONBUILD', 'ONBUILD RUN echo one\n', 'ONBUILD RUN echo two\n', 'OnBuild'],
    ['LABEL', 'LABEL v=1\n', 'LABEL v=2\n', 'Labels'],
    ['STOPSIGNAL', 'STOPSIGNAL SIGTERM\n', 'STOPSIGNAL SIGKILL\n', 'StopSignal'],
    ['CMD', 'CMD ["one"]\n', 'CMD ["two"]\n', 'Cmd'],
  ])('a changed %s reaches the image even when every layer is cached', async (_, a, b, field) => {
    const first = await build(`FROM base:other\n${a}${RUN}`);
    const second = await build(`FROM base:other\n${b}${RUN}`);
    expect(second.config[field]).not.toEqual(first.config[field]);
    const back = await build(`FROM base:other\n${a}${RUN}`);
    expect(back.config[field]).toEqual(first.config[field]);
    expect(back.layers).toEqual(first.layers);
  });
});

test('the store stays consistent', () => {
  expectStoreConsistent(store);
});
