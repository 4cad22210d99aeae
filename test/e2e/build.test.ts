import { chmodSync, existsSync, linkSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { example, gantry, gantryArgv, suiteWorkDir, testUser, type GantryResult } from '../helpers/gantry.js';
import { writeTree } from '../helpers/files.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { runUnderCrun } from '../helpers/crun.js';
import { haveTool } from '../helpers/tools.js';
import { mountsUnder, waitForNoProcesses } from '../helpers/faults.js';

// gantry build end to end, FROM a busybox base the test makes offline.

// GANTRY_TEST_USER (the `rootless` project of vitest.config.ts) runs every gantry command here
// as a non-root user: the same checks then hold for a rootless build (test/helpers/gantry.ts).
const work = suiteWorkDir('gantry-build-');
const root = path.join(work, 'store');
const g = (args: string[], env: Record<string, string> = {}) => gantry(['--root', root, ...args], { env });

const context = (name: string, files: Record<string, string>): string => writeTree(path.join(work, name), files);

/** The host's git for making test repositories: no user or system configuration. */
const hostGit = (args: string[], cwd: string) =>
  execa('git', args, { cwd, env: { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t', GIT_CONFIG_NOSYSTEM: '1', HOME: work } });

/** A dumb-HTTP server on loopback: a directory's files as they are (BuildKit's own tests serve git repositories so). */
async function serveDumbHttp(served: string): Promise<{ server: ReturnType<typeof createServer>; base: string }> {
  const server = createServer((req, res) => {
    const file = path.join(served, decodeURIComponent((req.url ?? '/').split('?')[0] as string));
    if (!file.startsWith(served + '/')) return void res.writeHead(403).end();
    try {
      res.end(readFileSync(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function files(ref: string): Promise<Record<string, string>> {
  const out = path.join(work, `export-${Math.random().toString(16).slice(2)}.tar`);
  const r = await g(['export', ref, '-o', out]);
  expect(r.exitCode, r.stderr).toBe(0);
  const list = await execa('tar', ['tvf', out]);
  return Object.fromEntries(list.stdout.split('\n').map((l) => {
    const parts = l.split(/\s+/);
    return [parts.slice(5).join(' '), `${parts[0]} ${parts[1]}`];
  }));
}

const inspect = async (ref: string) => JSON.parse((await g(['inspect', ref])).stdout)[0];

/**
 * The store of the tests that call the Node API in this process: the suite's, or for the test
 * user a store of root's (this process is root; the API as a non-root user is tested in
 * test/e2e/rootless.test.ts).
 */
const apiRoot = testUser ? path.join(work, 'store-api') : root;

beforeAll(async () => {
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  const r = await g(['import', tarDir(rootfs, path.join(work, 'busybox.tgz')), 'busybox:latest', '-c', 'CMD ["sh"]']);
  expect(r.exitCode, r.stderr).toBe(0);
  if (apiRoot !== root) await execa(path.join(projectRoot, 'bin', 'gantry'), ['--root', apiRoot, 'import', path.join(work, 'busybox.tgz'), 'busybox:latest', '-c', 'CMD ["sh"]']);
}, 60_000);
afterAll(() => rmSync(work, { recursive: true, force: true }), 120_000);

describe('gantry build', () => {
  test('the example Dockerfile: multi-stage, ARG, WORKDIR, RUN, COPY --from, COPY, CMD', async () => {
    const r = await g(['build', '-t', 'hello:1', example('hello')]);
    expect(r.exitCode, r.stderr).toBe(0);
    const f = await files('hello:1');
    expect(Object.keys(f)).toEqual(expect.arrayContaining(['greeting.txt', 'message.txt', 'bin/busybox']));
    const out = path.join(work, 'hello.tar');
    await g(['export', 'hello:1', '-o', out]);
    const greeting = await execa('tar', ['xOf', out, 'greeting.txt']);
    expect(greeting.stdout).toBe('hello from gantry');
    const info = await inspect('hello:1');
    expect(info.Config.Cmd).toEqual(['cat', '/greeting.txt', '/message.txt']);
    expect(info.Config.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  });

  test('progress: plain lines as BuildKit prints them, JSON events on request; prune --all empties the build cache', async () => {
    const ctx = context('progressctx', { Dockerfile: 'FROM busybox\nRUN echo from-the-run\nCOPY f /f\n', f: 'x\n' });
    const plain = await g(['build', '--progress', 'plain', '-t', 'prog:1', ctx]);
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/^#1 \[2\/3\] RUN echo from-the-run$/m);
    expect(plain.stderr).toMatch(/^#1 from-the-run$/m);
    expect(plain.stderr).toMatch(/^#1 DONE \d+\.\ds$/m);
    const again = await g(['build', '--progress', 'plain', '-t', 'prog:1', ctx]);
    expect(again.stderr).toMatch(/^#1 \[2\/3\] RUN echo from-the-run\n#1 CACHED$/m);
    // Each step's line once, not again with CACHED.
    expect(again.stderr.match(/^#1 \[2\/3\] RUN/gm)).toHaveLength(1);
    const json = await g(['build', '--progress', 'json', '--no-cache', '-t', 'prog:1', ctx]);
    expect(json.exitCode, json.stderr).toBe(0);
    const events = json.stderr.trim().split('\n').map((l) => JSON.parse(l) as { type: string; status?: string; text?: string; digest?: string });
    // The header, the plan, the steps, the image, how it ended (docs/cli.md's schema).
    expect(events.map((e) => e.type).slice(0, 2)).toEqual(['start', 'plan']);
    expect(events.filter((e) => e.type === 'step' && e.status === 'done')).toHaveLength(2);
    expect(events.some((e) => e.type === 'output' && e.text?.includes('from-the-run'))).toBe(true);
    expect(events.at(-2)).toMatchObject({ type: 'image', digest: expect.stringMatching(/^sha256:/) });
    expect(events.at(-1)).toMatchObject({ type: 'finished' });
    // prune keeps the build cache; prune --all clears it, so the next build runs every step.
    expect((await g(['prune'])).exitCode).toBe(0);
    expect((await g(['build', '--progress', 'plain', ctx])).stderr).toContain('CACHED');
    expect((await g(['prune', '--all'])).exitCode).toBe(0);
    const cold = await g(['build', '--progress', 'plain', ctx]);
    expect(cold.exitCode, cold.stderr).toBe(0);
    expect(cold.stderr).not.toContain('CACHED');
  });

  test('the README quick start: examples/site builds FROM scratch in an empty store', async () => {
    const store = path.join(work, 'quickstart');
    const r = await gantry(['--root', store, 'build', '-t', 'site:1', example('site')], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const info = JSON.parse((await gantry(['--root', store, 'inspect', 'site:1'])).stdout)[0];
    expect(info.Config).toMatchObject({ Cmd: ['index.html'], WorkingDir: '/srv/www', Env: [expect.stringMatching(/^PATH=/), 'SITE_ROOT=/srv/www'] });
    const out = path.join(work, 'site.tar');
    await gantry(['--root', store, 'export', 'site:1', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'srv/www/index.html'])).stdout).toContain('Built by gantry');
  });

  test('an unchanged rebuild is all CACHED and, with SOURCE_DATE_EPOCH, the identical digest', async () => {
    const ctx = example('hello');
    const a = await g(['build', '-t', 'repro:1', ctx], { SOURCE_DATE_EPOCH: '1700000000' });
    const b = await g(['build', '-t', 'repro:2', ctx], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(b.stderr).toContain('CACHED');
    expect(b.stderr).not.toMatch(/DONE/);
    expect(a.stdout).toBe(b.stdout);
    expect((await inspect('repro:1')).Descriptor.digest).toBe((await inspect('repro:2')).Descriptor.digest);
  });

  test('two builds of the same inputs in two empty stores give the same digest', async () => {
    const ctx = example('hello');
    const digests: string[] = [];
    for (const n of [1, 2]) {
      const store = path.join(work, `empty-${n}`);
      await gantry(['--root', store, 'import', path.join(work, 'busybox.tgz'), 'busybox:latest', '-c', 'CMD ["sh"]'], { env: { SOURCE_DATE_EPOCH: '0' } });
      const r = await gantry(['--root', store, 'build', '-t', 'x:1', ctx], { env: { SOURCE_DATE_EPOCH: '1700000000' }, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      digests.push(JSON.parse((await gantry(['--root', store, 'inspect', 'x:1'])).stdout)[0].Descriptor.digest);
    }
    expect(digests[0]).toBe(digests[1]);
  });

  test('touching a file hits the cache; changing it or a build arg the RUN uses re-runs', async () => {
    const ctx = context('cachectx', {
      Dockerfile: 'FROM busybox\nARG V=1\nCOPY data.txt /data.txt\nRUN echo "v=$V" > /v.txt\n',
      'data.txt': 'one',
    });
    expect((await g(['build', '-t', 'c:1', ctx])).exitCode).toBe(0);
    writeFileSync(path.join(ctx, 'data.txt'), 'one'); // same content, new mtime
    const touched = await g(['build', '-t', 'c:1', ctx]);
    expect(touched.stderr.match(/CACHED/g)).toHaveLength(2);
    const arg = await g(['build', '-t', 'c:2', '--build-arg', 'V=2', ctx]);
    expect(arg.stderr.match(/CACHED/g)).toHaveLength(1); // COPY cached, RUN re-ran (buildah got this wrong)
    writeFileSync(path.join(ctx, 'data.txt'), 'two');
    const changed = await g(['build', '-t', 'c:3', ctx]);
    expect(changed.stderr).not.toContain('CACHED');
    const noCache = await g(['build', '--no-cache', '-t', 'c:4', ctx]);
    expect(noCache.exitCode, noCache.stderr).toBe(0);
    expect(noCache.stderr).not.toContain('CACHED');
    expect(noCache.stderr).toMatch(/DONE/);
  });

  test('COPY --from a stage that ran again and made the same files is a hit, and so are the steps after it; other files, modes or hard links run it again', async () => {
    const ctx = context('contentkey', {
      Dockerfile: [
        'FROM busybox AS gen',
        'COPY version.txt mode.sh /',
        'RUN mkdir /out && echo stable > /out/a && cat /version.txt > /seen && sh /mode.sh',
        'FROM busybox',
        'COPY --from=gen /out/ /out/',
        'RUN ls -l /out > /listing',
      ].join('\n'),
      'version.txt': '1\n',
      'mode.sh': 'true\n',
    });
    // What the stage's RUN does to /out after writing it.
    const mode = (script: string) => writeFileSync(path.join(ctx, 'mode.sh'), script);
    const steps = (stderr: string) => ({ cached: [...stderr.matchAll(/^#\d+ CACHED$/gm)].length, done: [...stderr.matchAll(/^#\d+ DONE/gm)].length });
    const first = await g(['build', '--progress', 'plain', '-t', 'ck:1', ctx]);
    expect(first.exitCode, first.stderr).toBe(0);

    // The stage runs again (its input changed) and makes the same /out: the COPY --from and the
    // RUN after it are hits, the image the same.
    writeFileSync(path.join(ctx, 'version.txt'), '2\n');
    const same = await g(['build', '--progress', 'plain', '-t', 'ck:2', ctx]);
    expect(same.exitCode, same.stderr).toBe(0);
    expect(steps(same.stderr)).toEqual({ cached: 2, done: 2 });
    expect((await inspect('ck:2')).Id).toBe((await inspect('ck:1')).Id);

    // Each of these changes what the COPY would make: it runs again, and the RUN after it.
    const changes: [string, string][] = [
      ['a mode', 'chmod 600 /out/a\n'],
      ['an owner', 'chown 7:7 /out/a\n'],
      ['a hard link', 'ln /out/a /out/b\n'],
      ['two equal files', 'echo stable > /out/b\n'],
      ['the content', 'echo other > /out/a\n'],
    ];
    for (const [i, [what, script]] of changes.entries()) {
      mode(script);
      writeFileSync(path.join(ctx, 'version.txt'), `${i + 3}\n`);
      const r = await g(['build', '--progress', 'plain', '-t', `ck:${i + 3}`, ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(steps(r.stderr), what).toEqual({ cached: 0, done: 4 });
    }
    // A hard link and two equal files differ in the image too.
    const [link, copies] = [await files('ck:5'), await files('ck:6')];
    expect(link['out/b link to out/a']).toMatch(/^h/);
    expect(copies['out/b']).toMatch(/^-/);
  });

  test('COPY --from the stage the stage is built FROM, on a cold build: the files are there (its overlay is sealed when the stage mounts it)', async () => {
    const ctx = context('fromself', {
      Dockerfile: ['FROM busybox AS base', 'RUN mkdir /app && echo hi > /app/f', 'FROM base', 'COPY --from=base /app /copy', 'COPY --from=base / /whole/'].join('\n'),
    });
    const r = await g(['build', '--no-cache', '-t', 'fromself:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const f = await files('fromself:1');
    expect(f['copy/f']).toBeDefined();
    expect(f['whole/app/f']).toBeDefined();
    expect(f['whole/bin/busybox']).toBeDefined();
  });

  test('.dockerignore, directory contents, symlinks kept, USER and chown by name', async () => {
    const ctx = context('copyctx', {
      Dockerfile: [
        'FROM busybox',
        'RUN echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group',
        'COPY --chown=app:app dir/ /srv/',
        'USER app',
        'RUN id -u > /tmp/uid && touch /tmp/mine',
      ].join('\n'),
      '.dockerignore': 'dir/secret\n',
      'dir/a.txt': 'a',
      'dir/sub/b.txt': 'b',
      'dir/secret': 'nope',
    });
    symlinkSync('a.txt', path.join(ctx, 'dir', 'link'));
    const r = await g(['build', '-t', 'copy:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const f = await files('copy:1');
    expect(f['srv/a.txt']).toMatch(/^-rw-r--r-- 1000\/1000$/);
    expect(f['srv/sub/b.txt']).toBeDefined();
    expect(f['srv/secret']).toBeUndefined();
    expect(Object.keys(f).find((k) => k.startsWith('srv/link'))).toBe('srv/link -> a.txt');
    expect(f['tmp/mine']).toMatch(/1000\/1000/);
  });

  test('a failing RUN names the step, the command, the exit code and the last output', async () => {
    const ctx = context('failctx', { Dockerfile: 'FROM busybox\nRUN echo about to fail && exit 7\n' });
    const r = await g(['build', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Dockerfile:2: step [2/2] RUN echo about to fail && exit 7 failed with exit code 7');
    expect(r.stderr).toContain('about to fail');
  });

  test('a RUN that changes nothing adds no layer; config-only steps add none; the first RUN on a base without /proc, /dev, /sys leaves them (BuildKit 28)', async () => {
    const ctx = context('emptyctx', { Dockerfile: 'FROM busybox\nRUN true\nRUN true\nLABEL a=b\nEXPOSE 80\n' });
    expect((await g(['build', '-t', 'empty:1', ctx])).exitCode).toBe(0);
    const info = await inspect('empty:1');
    expect(info.RootFS.Layers).toHaveLength(2);
    const f = await files('empty:1');
    for (const d of ['dev/', 'proc/', 'sys/']) expect(f[d], d).toMatch(/^drwxr-xr-x (root\/root|0\/0)$/);
    expect(info.Config.Labels).toEqual({ a: 'b' });
    expect(info.Config.ExposedPorts).toEqual({ '80/tcp': {} });
    expect(info.History.filter((h: { empty_layer?: boolean }) => h.empty_layer)).toHaveLength(3);
  });

  test('COPY heredocs (expanded unless quoted), ADD of a local tar.gz (extracted), ADD of a URL with --checksum (0600), --exclude', async () => {
    const payload = 'downloaded bytes\n';
    const sum = createHash('sha256').update(payload).digest('hex');
    const served: { tarball?: Buffer } = {};
    const server = createServer((req, res) => {
      if (req.url === '/files/tool.txt') res.end(payload);
      else if (req.url === '/files/vendor.tar.gz' && served.tarball) res.end(served.tarball);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const ctx = context('addctx', {
      Dockerfile: [
        'FROM busybox',
        'ARG WHO=world',
        'COPY <<EOF <<"RAW" /notes/',
        'hello $WHO',
        'EOF',
        'literal $WHO',
        'RAW',
        'ADD vendor.tar.gz /opt/vendor/',
        `ADD --checksum=sha256:${sum} http://127.0.0.1:${port}/files/tool.txt /usr/local/share/`,
        'COPY --exclude=*.log logs/ /logs/',
        // --unpack (BuildKit 28): false keeps a local archive whole, true unpacks one from a URL.
        'ADD --unpack=false vendor.tar.gz /kept/',
        `ADD --unpack=true http://127.0.0.1:${port}/files/vendor.tar.gz /from-url/`,
        `ADD http://127.0.0.1:${port}/files/vendor.tar.gz /url-default/`,
      ].join('\n'),
      'logs/keep.txt': 'k',
      'logs/drop.log': 'd',
      'vendor/lib/x.txt': 'x',
    });
    await execa('tar', ['-czf', path.join(ctx, 'vendor.tar.gz'), '-C', path.join(ctx, 'vendor'), '.']);
    served.tarball = readFileSync(path.join(ctx, 'vendor.tar.gz'));
    try {
      const r = await g(['build', '-t', 'add:1', ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      const f = await files('add:1');
      expect(f['opt/vendor/lib/x.txt']).toBeDefined();
      expect(f['usr/local/share/tool.txt']).toMatch(/^-rw------- /);
      expect(f['logs/keep.txt']).toBeDefined();
      expect(f['logs/drop.log']).toBeUndefined();
      expect(f['kept/vendor.tar.gz']).toBeDefined();
      expect(f['kept/lib/x.txt']).toBeUndefined();
      expect(f['from-url/lib/x.txt']).toBeDefined();
      expect(f['url-default/vendor.tar.gz']).toBeDefined();
      const out = path.join(work, 'add.tar');
      await g(['export', 'add:1', '-o', out]);
      expect((await execa('tar', ['xOf', out, 'notes/EOF'])).stdout).toBe('hello world');
      expect((await execa('tar', ['xOf', out, 'notes/RAW'])).stdout).toBe('literal $WHO');
      const bad = context('addbad', { Dockerfile: `FROM busybox\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/files/tool.txt /x\n` });
      const rb = await g(['build', bad]);
      expect(rb.exitCode).toBe(1);
      expect(rb.stderr).toContain(`has checksum sha256:${sum}, expected sha256:${'0'.repeat(64)}`);
    } finally {
      server.close();
    }
  });

  /**
   * Start a build whose RUN holds cache mount `id` until the test creates `release` in its
   * context: resolves once the RUN has said it started, with the build's end.
   */
  async function holdingBuild(name: string, id: string, sharing: string): Promise<{ ctl: string; done: Promise<GantryResult> }> {
    const ctx = context(name, {
      Dockerfile: [
        'FROM busybox',
        // A new RUNID runs the RUN again (--no-cache would give it a new, empty cache).
        'ARG RUNID',
        `RUN --mount=type=cache,id=${id},target=/cache,sharing=${sharing} --mount=type=bind,source=ctl,target=/ctl sh -c 'busybox touch /cache/a-started; echo a-started; until [ -f /ctl/release ]; do busybox sleep 0.05; done; busybox touch /cache/a-done'`,
      ].join('\n'),
      'ctl/.keep': '',
    });
    const runId = Math.random().toString(16).slice(2);
    const [cmd, ...argv] = gantryArgv(['--root', root, 'build', '--progress', 'plain', '--build-arg', `RUNID=${runId}`, ctx]) as [string, ...string[]];
    const child = execa(cmd, argv, { reject: false, all: true, encoding: 'utf8' });
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      child.all?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (/^a-started|\sa-started$/m.test(seen)) resolve();
      });
      void child.then((r) => reject(new Error(`the holding build ended before its RUN started: ${r.all}`)));
    });
    return { ctl: path.join(ctx, 'ctl'), done: child.then((r) => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr })) };
  }

  test('RUN --mount=type=cache,sharing=locked: a second RUN waits until the first is done with the cache', async () => {
    const a = await holdingBuild('lockedA', 'locked-cache', 'locked');
    const ctx = context('lockedB', {
      Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=locked-cache,target=/cache,sharing=locked sh -c \'[ -f /cache/a-done ] && echo saw-a-done > /result\'\n',
    });
    const [cmd, ...argv] = gantryArgv(['--root', root, 'build', '--progress', 'plain', '-t', 'locked:b', ctx]) as [string, ...string[]];
    const b = execa(cmd, argv, { reject: false, all: true, encoding: 'utf8' });
    // B says it waits; only then is A let go (B cannot have run before: it would have failed).
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      b.all?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes('waiting for cache mount locked-cache')) resolve();
      });
      void b.then((r) => reject(new Error(`B ended without waiting: ${r.all}`)));
    });
    writeFileSync(path.join(a.ctl, 'release'), '');
    const ra = await a.done;
    expect(ra.exitCode, ra.stderr).toBe(0);
    const rb = await b;
    expect(rb.exitCode, rb.all).toBe(0);
    const out = path.join(work, 'locked.tar');
    await g(['export', 'locked:b', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'result'])).stdout).toBe('saw-a-done');
  });

  test('RUN --mount=type=cache,sharing=private: a RUN that finds the cache held gets a new one of its own, and does not wait', async () => {
    const a = await holdingBuild('privateA', 'private-cache', 'private');
    try {
      const ctx = context('privateB', {
        Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=private-cache,target=/cache,sharing=private sh -c \'[ ! -e /cache/a-started ] && ls -A /cache > /listed && busybox touch /cache/b-was-here\'\n',
      });
      // Finishes while A still holds the cache (a wait would hang here until the test's timeout).
      const rb = await g(['build', '-t', 'private:b', ctx]);
      expect(rb.exitCode, rb.stderr).toBe(0);
      expect(rb.stderr).not.toMatch(/waiting for cache mount/);
      const out = path.join(work, 'private.tar');
      await g(['export', 'private:b', '-o', out]);
      expect((await execa('tar', ['xOf', out, 'listed'])).stdout).toBe('');
    } finally {
      writeFileSync(path.join(a.ctl, 'release'), '');
    }
    expect((await a.done).exitCode).toBe(0);
    // B's private cache was thrown away: the shared one has A's files and not B's.
    const ctx = context('privateC', {
      Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=private-cache,target=/cache sh -c \'ls /cache > /listed\'\n',
    });
    const rc = await g(['build', '-t', 'private:c', ctx]);
    expect(rc.exitCode, rc.stderr).toBe(0);
    const out = path.join(work, 'private-c.tar');
    await g(['export', 'private:c', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'listed'])).stdout).toBe('a-done\na-started');
  });

  test('the same cache mounted twice with sharing=locked in one RUN is held once (no wait on itself)', async () => {
    const ctx = context('lockedtwice', {
      Dockerfile: 'FROM busybox\nRUN --mount=type=cache,id=twice,target=/a,sharing=locked --mount=type=cache,id=twice,target=/b,sharing=locked sh -c \'echo x > /a/f && cat /b/f > /seen\'\n',
    });
    const r = await g(['build', '-t', 'twice:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/waiting for cache mount/);
    const out = path.join(work, 'twice.tar');
    await g(['export', 'twice:1', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'seen'])).stdout).toBe('x');
  });

  test('what a Dockerfile names that cannot be made or read is an error at its line, never an internal error', async () => {
    const cases: [string, RegExp][] = [
      // WORKDIR through a link that leads into a file.
      ['FROM busybox\nRUN busybox ln -s /etc/passwd/sub /link\nWORKDIR /link/x\n', /Dockerfile:3: WORKDIR: .*\/link.*(leads through a file|is not a directory)/],
      // A cache mount's source= without from= (a directory inside a shared cache).
      ['FROM busybox\nRUN --mount=type=cache,id=c,target=/c,source=sub true\n', /Dockerfile:2: RUN: source= on a cache mount without from= is not supported/],
      // A --parents pivot after "..": how much of the path it stands for is not plain.
      ['FROM busybox\nCOPY --parents a/../b/./c /out/\n', /Dockerfile:2: COPY: COPY --parents a\/\.\.\/b\/\.\/c: "\.\." or "\*\*" before the \.\/ pivot is not supported/],
      // ADD of a link-local URL (where cloud metadata services answer).
      ['FROM busybox\nADD http://169.254.169.254/latest/meta-data /md\n', /Dockerfile:2: ADD: refusing to fetch from http:\/\/169\.254\.169\.254\/latest\/meta-data: a link-local address/],
    ];
    for (const [dockerfile, expected] of cases) {
      const ctx = context(`errat-${Math.random().toString(16).slice(2)}`, { Dockerfile: dockerfile, 'b/c/f': 'x\n' });
      const r = await g(['build', ctx]);
      expect(r.exitCode, r.stderr).toBe(1);
      expect(r.stderr).toMatch(expected);
    }
  });

  test('ADD of a URL follows redirects by hand and refuses one that leads to a link-local address; credentials in a URL are not shown', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/to-metadata') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/' }).end();
      if (req.url === '/hop') return void res.writeHead(301, { location: '/file.txt' }).end();
      if (req.url === '/file.txt') return void res.end('after a hop\n');
      if (req.url === '/auth') return void (req.headers.authorization === `Basic ${Buffer.from('user:pa ss').toString('base64')}` ? res.end('let in\n') : res.writeHead(401).end());
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const ok = await g(['build', '-t', 'hop:1', context('hop', { Dockerfile: `FROM busybox\nADD ${base}/hop /got\n` })]);
      expect(ok.exitCode, ok.stderr).toBe(0);
      const out = path.join(work, 'hop.tar');
      await g(['export', 'hop:1', '-o', out]);
      expect((await execa('tar', ['xOf', out, 'got'])).stdout).toBe('after a hop');
      const bad = await g(['build', context('tometa', { Dockerfile: `FROM busybox\nADD ${base}/to-metadata /x\n` })]);
      expect(bad.exitCode).toBe(1);
      expect(bad.stderr).toMatch(/refusing to fetch from http:\/\/169\.254\.169\.254\/latest\/: a link-local address/);
      // Credentials in the URL go as basic authentication (as BuildKit sends them).
      const authed = await g(['build', '-t', 'auth:1', context('auth', { Dockerfile: `FROM busybox\nADD ${base.replace('//', '//user:pa%20ss@')}/auth /auth.txt\n` })]);
      expect(authed.exitCode, authed.stderr).toBe(0);
      const authOut = path.join(work, 'auth.tar');
      await g(['export', 'auth:1', '-o', authOut]);
      expect((await execa('tar', ['xOf', authOut, 'auth.txt'])).stdout).toBe('let in');
      const secret = await g(['build', context('creds', { Dockerfile: `FROM busybox\nADD http://user:s3cr3t-token@127.0.0.1:1/missing /x\n` })]);
      expect(secret.exitCode).toBe(1);
      // The error does not repeat it (the step's name shows the Dockerfile's line as written, as BuildKit's does).
      const errorLines = secret.stderr.split('\n').filter((l) => l.startsWith('error:'));
      expect(errorLines.length).toBeGreaterThan(0);
      expect(errorLines.join('\n')).not.toContain('s3cr3t-token');
    } finally {
      server.close();
    }
  });

  test('check=error=true judges the plan made with the base image\'s config (its SHELL), not the one made before it was known', async () => {
    const base = await g(['build', '-t', 'shellbase:1', context('shellbase', { Dockerfile: 'FROM busybox\nSHELL ["/bin/sh", "-c"]\n' })]);
    expect(base.exitCode, base.stderr).toBe(0);
    const r = await g(['build', context('shellchild', { Dockerfile: '# check=error=true\nFROM shellbase:1\nCMD echo hi\n' })]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/JSONArgsRecommended/);
  });

  test('BUILDKIT_SANDBOX_HOSTNAME: empty means the default name; one the kernel would refuse is an error', async () => {
    const ctx = context('hostname', { Dockerfile: 'FROM busybox\nRUN busybox hostname > /name\n' });
    const r = await g(['build', '--build-arg', 'BUILDKIT_SANDBOX_HOSTNAME=', '-t', 'hostname:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = path.join(work, 'hostname.tar');
    await g(['export', 'hostname:1', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'name'])).stdout).toBe('buildkitsandbox');
    const long = await g(['build', '--build-arg', `BUILDKIT_SANDBOX_HOSTNAME=${'a'.repeat(65)}`, ctx]);
    expect(long.exitCode).toBe(1);
    expect(long.stderr).toMatch(/is not a valid host name/);
  });

  test('RUN --mount: cache persists, bind (content in the key, rw never writes back), tmpfs, secret; none of their contents enters a layer', async () => {
    const ctx = context('mountctx', {
      Dockerfile: [
        'FROM busybox',
        'ARG N',
        'RUN --mount=type=cache,target=/cache sh -c "echo run $N >> /cache/log; wc -l < /cache/log > /count"',
        'RUN --mount=type=bind,source=src,target=/src cat /src/input > /copied',
        'RUN --mount=type=bind,source=src,target=/rw,rw sh -c "echo scribble > /rw/input"',
        'RUN --mount=type=tmpfs,target=/scratch sh -c "echo tmp > /scratch/x; ls /scratch > /listed"',
        'RUN --mount=type=secret,id=token,target=/run/secrets/token sh -c "wc -c < /run/secrets/token > /secret-size"',
      ].join('\n'),
      'src/input': 'from the context\n',
    });
    const secret = path.join(work, 'token.txt');
    writeFileSync(secret, 's3cr3t');
    const r1 = await g(['build', '-t', 'mnt:1', '--secret', `id=token,src=${secret}`, ctx]);
    expect(r1.exitCode, r1.stderr).toBe(0);
    // A --no-cache build gets a new, empty cache and leaves the kept one alone (Docker 28.5).
    const fresh = await g(['build', '--no-cache', '-t', 'mnt:fresh', '--secret', `id=token,src=${secret}`, ctx]);
    expect(fresh.exitCode, fresh.stderr).toBe(0);
    const freshOut = path.join(work, 'mnt-fresh.tar');
    await g(['export', 'mnt:fresh', '-o', freshOut]);
    expect((await execa('tar', ['xOf', freshOut, 'count'])).stdout.trim()).toBe('1');
    const r2 = await g(['build', '--build-arg', 'N=2', '-t', 'mnt:2', '--secret', `id=token,src=${secret}`, ctx]);
    expect(r2.exitCode, r2.stderr).toBe(0);
    const out = path.join(work, 'mnt.tar');
    await g(['export', 'mnt:2', '-o', out]);
    const x = async (f: string) => (await execa('tar', ['xOf', out, f])).stdout.trim();
    expect(await x('count')).toBe('2'); // the cache mount kept the first build's line, not the --no-cache build's
    expect(await x('copied')).toBe('from the context');
    expect(await x('listed')).toBe('x');
    expect(await x('secret-size')).toBe('6');
    expect(readFileSync(path.join(ctx, 'src/input'), 'utf8')).toBe('from the context\n');
    const names = Object.keys(await files('mnt:2'));
    // As in BuildKit 28, the directories made as mount points (and their parents made for them,
    // /run here) are removed again; what was mounted never enters a layer.
    for (const n of ['cache/', 'src/', 'rw/', 'scratch/', 'run/secrets/', 'run/']) expect(names).not.toContain(n);
    for (const n of ['cache/log', 'src/input', 'rw/input', 'scratch/x', 'run/secrets/token']) expect(names).not.toContain(n);
    writeFileSync(path.join(ctx, 'src/input'), 'changed\n');
    const r3 = await g(['build', '-t', 'mnt:3', '--secret', `id=token,src=${secret}`, ctx]);
    expect(r3.stderr.match(/CACHED/g)).toHaveLength(1); // only the cache-mount RUN before the bind one
    // Without the secret the mount is simply absent (it is not required), so this RUN fails as in docker.
    const missing = await g(['build', '--no-cache', ctx]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('/run/secrets/token: no such file');
  });

  test('secret and cache mounts get the uid, gid and mode asked for (secrets: 0:0 and 0400 by default, whatever the file has), as in Docker 28.5', async () => {
    const ctx = context('mountmodes', {
      Dockerfile: [
        'FROM busybox',
        "RUN --mount=type=secret,id=token --mount=type=secret,id=token,target=/s2,uid=5,gid=6,mode=0640 --mount=type=cache,target=/c,uid=7,gid=8,mode=0777 sh -c 'busybox stat -c \"%a %u:%g\" /run/secrets/token /s2 /c > /modes'",
      ].join('\n'),
    });
    const secret = path.join(work, 'token-modes.txt');
    writeFileSync(secret, 's3cr3t', { mode: 0o644 });
    const r = await g(['build', '-t', 'mountmodes:1', '--secret', `id=token,src=${secret}`, ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = path.join(work, 'mountmodes.tar');
    await g(['export', 'mountmodes:1', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'modes'])).stdout.split('\n')).toEqual(['400 0:0', '640 5:6', '777 7:8']);
  });

  test('--label sets labels over the Dockerfile\'s, with no history entry (as Docker 28.5); -o keys gantry lacks are refused', async () => {
    const ctx = context('labelctx', { Dockerfile: 'FROM busybox\nLABEL a=orig b=keep\n' });
    const r = await g(['build', '--label', 'a=cli', '--label', 'c', '-t', 'lab:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const info = await inspect('lab:1');
    expect(info.Config.Labels).toEqual({ a: 'cli', b: 'keep', c: '' });
    expect(info.History.at(-1).created_by).toBe('LABEL a=orig b=keep');
    const refused = await g(['build', '-o', 'type=oci,dest=x.tar,rewrite-timestamp=true', ctx]);
    expect(refused.exitCode).toBe(2); // a usage error
    expect(refused.stderr).toContain('type=oci does not take rewrite-timestamp=');
  });

  test('COPY --parents keeps each source\'s path, from the context or from a ./ pivot (the Dockerfile reference; 28.5\'s built-in frontend lacks it)', async () => {
    const ctx = context('parentsctx', {
      Dockerfile: ['FROM busybox', 'COPY --parents x/a.txt y/b.txt /p/', 'COPY --parents ./x/./sub/c.txt /q/', 'COPY --parents x/*.txt /r/', 'COPY --parents x /s/', 'COPY x/a.txt y/b.txt /flat/'].join('\n'),
      'x/a.txt': 'a',
      'y/b.txt': 'b',
      'x/sub/c.txt': 'c',
    });
    const r = await g(['build', '-t', 'parents:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const names = Object.keys(await files('parents:1')).filter((n) => /^(p|q|r|s|flat)\//.test(n) && !n.endsWith('/'));
    expect(names.sort()).toEqual(['flat/a.txt', 'flat/b.txt', 'p/x/a.txt', 'p/y/b.txt', 'q/sub/c.txt', 'r/x/a.txt', 's/x/a.txt', 's/x/sub/c.txt']);
    const info = await inspect('parents:1');
    expect(info.History.at(-3).created_by).toBe('COPY --parents x/*.txt /r/ # buildkit');
  });

  test('a socket in the context arrives as an empty file with its mode; a directory made for a copied tree is dated as the tree (as Docker 28.5)', async () => {
    const ctx = context('socketctx', { Dockerfile: 'FROM busybox\nCOPY tree /t/\nCOPY tree/g /v/g\n', 'tree/g': 'g', 'tree/sub/f': 'f' });
    const sock = createNetServer().listen(path.join(ctx, 'tree', 'sock'));
    await new Promise((r) => sock.once('listening', r));
    try {
      chmodSync(path.join(ctx, 'tree', 'sock'), 0o700);
      const old = new Date('2001-01-01T00:00:00Z');
      utimesSync(path.join(ctx, 'tree'), old, old);
      const r = await g(['build', '-t', 'socket:1', ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      const out = path.join(work, 'socket.tar');
      await g(['export', 'socket:1', '-o', out]);
      const list = (await execa('tar', ['tvf', out, '--full-time'])).stdout.split('\n');
      expect(list.find((l) => l.endsWith(' t/sock'))).toMatch(/^-rwx------ \S+\s+0 /);
      expect(list.find((l) => l.endsWith(' t/'))).toContain('2001-01-01');
      expect(list.find((l) => l.endsWith(' v/'))).not.toContain('2001-01-01');
    } finally {
      sock.close();
    }
  });

  test('ADD of a git repository (served over HTTP on loopback): a ref, a subdirectory, --keep-git-dir, as Docker 28.5 adds them', async () => {
    haveTool('git');
    const repo = path.join(work, 'gitsrc');
    const git = (args: string[], cwd = repo) => hostGit(args, cwd);
    writeTree(repo, { 'a.txt': 'hello\n', 'sub/s.txt': 'sub\n', 'run.sh': '#!/bin/sh\necho x\n' });
    chmodSync(path.join(repo, 'run.sh'), 0o755);
    await git(['init', '-q', '-b', 'main']);
    await git(['add', '.']);
    await git(['commit', '-qm', 'one']);
    await git(['tag', 'v1']);
    writeFileSync(path.join(repo, 'b.txt'), 'two\n');
    await git(['add', 'b.txt']);
    await git(['commit', '-qm', 'two']);
    const bare = path.join(work, 'served', 'repo.git');
    await git(['clone', '-q', '--bare', repo, bare], work);
    await git(['update-server-info'], bare);
    const { server, base } = await serveDumbHttp(path.join(work, 'served'));
    const url = `${base}/repo.git`;
    try {
      const ctx = context('gitctx', { Dockerfile: ['FROM busybox', `ADD ${url}#v1 /v1/`, `ADD --keep-git-dir=true ${url} /main/`, `ADD ${url}#main:sub /sub/`].join('\n') });
      const r = await g(['build', '-t', 'gitadd:1', ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      const f = await files('gitadd:1');
      const pick = (prefix: string) => Object.keys(f).filter((n) => n.startsWith(prefix) && !n.startsWith(`${prefix}.git/`)).sort();
      expect(pick('v1/')).toEqual(['v1/', 'v1/a.txt', 'v1/run.sh', 'v1/sub/', 'v1/sub/s.txt']);
      expect(pick('main/')).toEqual(['main/', 'main/a.txt', 'main/b.txt', 'main/run.sh', 'main/sub/', 'main/sub/s.txt']);
      expect(f['main/.git/HEAD']).toBeDefined(); // --keep-git-dir
      expect(Object.keys(f).some((n) => n.startsWith('v1/.git'))).toBe(false);
      expect(pick('sub/')).toEqual(['sub/', 'sub/s.txt']);
      expect(f['v1/run.sh']).toMatch(/^-rwxr-xr-x (root\/root|0\/0)$/);
      expect(f['v1/a.txt']).toMatch(/^-rw-r--r-- (root\/root|0\/0)$/);
      const info = await inspect('gitadd:1');
      expect(info.History.at(-2).created_by).toBe(`ADD ${url} /main/ # buildkit`);
      // A ref that is not there: an error naming the repository.
      const bad = context('gitbad', { Dockerfile: `FROM busybox\nADD ${url}#nope /x/\n` });
      const rb = await g(['build', bad]);
      expect(rb.exitCode).toBe(1);
      expect(rb.stderr).toContain(`${url}: repository does not contain ref nope`);
    } finally {
      server.close();
    }
  });

  test('ADD of a git repository whose submodules point at the host (a path, file://, or nested): refused, nothing of the host read', async () => {
    haveTool('git');
    const served = path.join(work, 'served-hostile');
    const { server, base } = await serveDumbHttp(served);
    // The host's "secret": a repository a submodule URL names by its path.
    const secret = path.join(work, 'host-secret');
    writeTree(secret, { 's.txt': 'HOST-SECRET\n' });
    await hostGit(['init', '-q', '-b', 'main'], secret);
    await hostGit(['add', '.'], secret);
    await hostGit(['commit', '-qm', 'secret'], secret);
    /** A served repository with one submodule `sm` at `url` (its commit taken from the repository at `from`). */
    const withSubmodule = async (name: string, url: string, from = secret): Promise<string> => {
      const repo = path.join(work, `hostile-${name}`);
      writeTree(repo, { 'a.txt': 'a\n' });
      await hostGit(['init', '-q', '-b', 'main'], repo);
      await hostGit(['-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', from, 'sm'], repo);
      await hostGit(['config', '--file', '.gitmodules', 'submodule.sm.url', url], repo);
      await hostGit(['add', '.'], repo);
      await hostGit(['commit', '-qm', name], repo);
      await hostGit(['clone', '-q', '--bare', repo, path.join(served, `${name}.git`)], work);
      await hostGit(['update-server-info'], path.join(served, `${name}.git`));
      return `${base}/${name}.git`;
    };
    try {
      const byPath = await withSubmodule('bypath', secret);
      const byFile = await withSubmodule('byfile', `file://${secret}`);
      // Nested: an http submodule whose own submodule names the host's path (refused by git's allowed protocols).
      const nested = await withSubmodule('nested', `${base}/bypath.git`, path.join(work, 'hostile-bypath'));
      for (const [url, message] of [
        [byPath, `refusing submodule URL ${secret}`],
        [byFile, `refusing submodule URL file://${secret}`],
        [nested, `failed to update submodules for ${nested}: fatal: clone of '${secret}' into submodule path`],
      ] as const) {
        const ctx = context('gitsubmod', { Dockerfile: `FROM busybox\nADD ${url} /h/\n` });
        const r = await g(['build', '-t', 'gitsubmod:1', ctx]);
        expect(r.exitCode, r.stderr).toBe(1);
        expect(r.stderr).toContain(message);
        expect(r.stderr).not.toContain('HOST-SECRET');
      }
      // Without submodules the repository is added, its submodule an empty directory.
      const ctx = context('gitsubmod', { Dockerfile: `FROM busybox\nADD ${byPath}?submodules=false /h/\n` });
      const r = await g(['build', '-t', 'gitsubmod:2', ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      const f = await files('gitsubmod:2');
      expect(Object.keys(f).filter((n) => n.startsWith('h/')).sort()).toEqual(['h/', 'h/.gitmodules', 'h/a.txt', 'h/sm/']);
    } finally {
      server.close();
    }
  });

  test('the image runs: umoci unpack, then crun, printing from CMD as the USER', async () => {
    haveTool('umoci');
    haveTool('crun');
    const ctx = context('runctx', {
      Dockerfile: [
        'FROM busybox',
        'RUN echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group',
        'USER app',
        'CMD ["sh", "-c", "echo running as $(id -u):$(id -g)"]',
      ].join('\n'),
    });
    expect((await g(['build', '-t', 'runme:1', ctx])).exitCode).toBe(0);
    const r = await runUnderCrun(root, 'docker.io/library/runme:1', path.join(work, 'bundle'));
    expect(r.config.process.user).toMatchObject({ uid: 1000, gid: 1000 });
    expect(r.stdout.trim(), r.stderr).toBe('running as 1000:1000');
  });

  test('a rebuild that changes nothing is the same image, dated by when its steps ran (as with BuildKit)', async () => {
    const ctx = context('sameimg', { Dockerfile: 'FROM busybox\nRUN echo one > /one\nENV A=1\nRUN echo two > /two\nCMD ["sh"]\n' });
    const first = await g(['build', '-t', 'same:1', ctx]);
    expect(first.exitCode, first.stderr).toBe(0);
    await new Promise((r) => setTimeout(r, 1100)); // a new second, so a fresh date would show
    const again = await g(['build', '-t', 'same:1', ctx]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout.trim()).toBe(first.stdout.trim());
    const before = await inspect('same:1');
    // A config-only change: a new image, whose cached steps keep their dates.
    writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nRUN echo one > /one\nENV A=1\nRUN echo two > /two\nCMD ["sh", "-c", "true"]\n');
    const changed = await g(['build', '-t', 'same:2', ctx]);
    expect(changed.stdout.trim()).not.toBe(first.stdout.trim());
    const after = await inspect('same:2');
    const dates = (i: { Created: string; History?: { created?: string }[] }) => [i.Created, ...(i.History ?? []).map((h) => h.created)];
    expect(dates(after)).toEqual(dates(before));
    // Without the cache the steps run again, and are dated now.
    const fresh = await g(['build', '--no-cache', '-t', 'same:3', ctx]);
    expect(fresh.stdout.trim()).not.toBe(changed.stdout.trim());
    expect(Date.parse((await inspect('same:3')).Created)).toBeGreaterThan(Date.parse(before.Created));
  });

  test("a build's scratch rootfs goes to the store's trash, sized by what was written there; a budget of 0 removes it at once", async () => {
    const ctx = context('trashctx', { Dockerfile: 'FROM busybox\nRUN head -c 300000 /dev/zero > /big && echo one > /one\n' });
    const trash = path.join(root, 'trash');
    rmSync(trash, { recursive: true, force: true });
    const r = await g(['build', '--no-cache', '-t', 'trash:1', ctx], { GANTRY_TRASH_BUDGET: '1G' });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readdirSync(path.join(root, 'tmp')).filter((n) => n.startsWith('rootfs-'))).toEqual([]);
    const entries = readdirSync(trash);
    expect(entries).toHaveLength(1);
    const bytes = Number((entries[0] as string).split('-')[1]);
    if (testUser) {
      // A rootless build has no overlay (none in a user namespace): its scratch tree holds the
      // busybox base (1.9 MB) and the layer written.
      expect(bytes).toBeGreaterThan(300_000);
      expect(bytes).toBeLessThan(2_600_000);
    } else {
      // On an overlay the RUN's upper directory is kept as its snapshot, not thrown away: the
      // trash gets the empty work and mount directories, the snapshot what the RUN wrote.
      expect(bytes).toBe(0);
      const kept = readdirSync(path.join(root, 'snapshots')).filter((id) => existsSync(path.join(root, 'snapshots', id, 'fs', 'big')));
      expect(kept).toHaveLength(1);
      expect(JSON.parse(readFileSync(path.join(root, 'snapshots', kept[0] as string, 'meta.json'), 'utf8')).bytes).toBeGreaterThan(300_000);
    }
    const again = await g(['build', '--no-cache', '-t', 'trash:1', ctx], { GANTRY_TRASH_BUDGET: '0' });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(readdirSync(trash)).toEqual([]);
    expect((await g(['fsck'])).exitCode).toBe(0);
    // A budget that is not a size stops the build before it starts, naming the variable.
    const bad = await g(['build', '--no-cache', ctx], { GANTRY_TRASH_BUDGET: 'lots' });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('GANTRY_TRASH_BUDGET=lots: expected a size');
    expect(bad.stderr).not.toContain('#1');
  });

  test('an AbortSignal stops a running build and leaves the store consistent', async () => {
    const { build } = await import('../../src/index.js');
    // A sleep of its own length: the other project's run of this test (root and rootless run
    // side by side) has a sleep too, and ps sees every process of the host.
    const seconds = 100_000 + Math.floor(Math.random() * 900_000);
    const ctx = context('abortctx', { Dockerfile: `FROM busybox\nRUN echo started && sleep ${seconds}\n` });
    const controller = new AbortController();
    const started = Date.now();
    // Aborted once the RUN is running (its first output); aborts during the sandbox's own
    // start-up are tested in test/integration/sandbox.test.ts.
    const onProgress = (e: { type: string; text?: string }) => {
      if (e.type === 'output' && e.text?.includes('started')) setTimeout(() => controller.abort(), 100);
    };
    await expect(build({ root: apiRoot, context: ctx, signal: controller.signal, onProgress })).rejects.toThrow(/abort/i);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(readdirSync(path.join(apiRoot, 'tmp')).filter((n) => n.startsWith('rootfs-') || n.startsWith('lease-'))).toEqual([]);
    const ps = await execa('sh', ['-c', `ps -eo args | grep -c "[s]leep ${seconds}" || true`]);
    expect(ps.stdout.trim()).toBe('0');
  });

  /**
   * A RUN that leaves its mark in the cache mount `meet` and waits (up to 30 s) for `other`'s:
   * two stages of these finish only when they run side by side.
   */
  const meeting = (meet: string, me: string, other: string) =>
    `RUN --mount=type=cache,id=${meet},target=/meet,sharing=shared sh -c 'touch /meet/${me}; i=0; while [ ! -e /meet/${other} ]; do i=$((i+1)); [ $i -lt 300 ] || exit 7; sleep 0.1; done; echo ${me} > /${me}.txt'`;

  /** Stages a and b that meet (each waits for the other), and a final stage that copies from both. */
  const meetingStages = (name: string): string => {
    const meet = `meet-${Math.random().toString(16).slice(2)}`;
    return context(name, {
      Dockerfile: ['FROM busybox AS a', meeting(meet, 'a', 'b'), 'FROM busybox AS b', meeting(meet, 'b', 'a'), 'FROM busybox', 'COPY --from=a /a.txt /a.txt', 'COPY --from=b /b.txt /b.txt', ''].join('\n'),
    });
  };

  /** The trimmed contents of files of image `ref`, as exported. */
  const exportedFiles = async (ref: string, names: string[]): Promise<string[]> => {
    const out = path.join(work, `export-${Math.random().toString(16).slice(2)}.tar`);
    const r = await g(['export', ref, '-o', out]);
    expect(r.exitCode, r.stderr).toBe(0);
    return Promise.all(names.map(async (n) => (await execa('tar', ['xOf', out, n])).stdout.trim()));
  };

  test('independent stages run side by side (each waits for the other); the image is the same at every build', async () => {
    const ctx = meetingStages('parallel');
    const r = await g(['build', '--progress', 'plain', '-t', 'parallel:1', ctx], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(r.exitCode, r.stderr).toBe(0);
    // Both RUNs started before either was done.
    const lines = r.stderr.split('\n');
    const startOf = (stage: string) => lines.findIndex((l) => new RegExp(`^#(\\d+) \\[${stage} 2/2\\] RUN`).test(l));
    const idOf = (stage: string) => (new RegExp(`^#(\\d+) \\[${stage} 2/2\\]`).exec(lines[startOf(stage)] ?? '') ?? [])[1];
    const doneOf = (stage: string) => lines.findIndex((l) => l.startsWith(`#${idOf(stage)} DONE`));
    expect(startOf('a')).toBeGreaterThan(-1);
    expect(startOf('b')).toBeGreaterThan(-1);
    expect(Math.max(startOf('a'), startOf('b'))).toBeLessThan(Math.min(doneOf('a'), doneOf('b')));
    const f = await files('parallel:1');
    expect(Object.keys(f)).toEqual(expect.arrayContaining(['a.txt', 'b.txt']));
    // Run again (the cache mount holds both marks now: each RUN runs at once): the same image.
    const again = await g(['build', '--no-cache', '-q', '-t', 'parallel:2', ctx], { SOURCE_DATE_EPOCH: '1700000000' });
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await inspect('parallel:2')).Id).toBe((await inspect('parallel:1')).Id);
  });

  test('RUNs of stages side by side each get a network namespace (a loopback) of their own; RUNs one after the other share one', async () => {
    const meet = `meet-${Math.random().toString(16).slice(2)}`;
    const netOf = (me: string, other: string) => meeting(meet, me, other).replace(/'$/, ` && readlink /proc/self/ns/net > /${me}.net'`);
    const ctx = context('parallel-net', {
      Dockerfile: [
        'FROM busybox AS a',
        netOf('a', 'b'),
        'FROM busybox AS b',
        netOf('b', 'a'),
        'FROM busybox',
        'COPY --from=a /a.net /a.net',
        'COPY --from=b /b.net /b.net',
        'RUN readlink /proc/self/ns/net > /c.net',
        'RUN readlink /proc/self/ns/net > /d.net',
        '',
      ].join('\n'),
    });
    const r = await g(['build', '-t', 'parallel:net', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const [a, b, c, d] = await exportedFiles('parallel:net', ['a.net', 'b.net', 'c.net', 'd.net']);
    expect(a).toMatch(/^net:\[\d+\]$/);
    expect(a).not.toBe(b);
    expect(c).toBe(d);
  });

  test('on a terminal, the steps of stages running side by side each get their line under one spinner', async () => {
    haveTool('script');
    const ctx = meetingStages('parallel-tty');
    const command = gantryArgv(['--root', root, 'build', '--progress', 'tty', ctx]).map((a) => `'${a}'`).join(' ');
    // A terminal as a user has one (this process's TERM may be CI's "dumb", which gets lines).
    const tty = await execa('script', ['-qfec', `stty cols 200; ${command}`, '/dev/null'], { reject: false, timeout: 90_000, env: { TERM: 'xterm' } });
    expect(tty.exitCode, tty.stdout).toBe(0);
    expect(tty.stdout).toMatch(/✔.* #\d+ \[a 2\/2\] RUN .* [\d.]+s/);
    expect(tty.stdout).toMatch(/✔.* #\d+ \[b 2\/2\] RUN .* [\d.]+s/);
    // Both lines turned under the one spinner at once.
    expect(tty.stdout).toMatch(/#\d+ \[a 2\/2\] RUN [^\n]*\n {2}#\d+ \[b 2\/2\] RUN|#\d+ \[b 2\/2\] RUN [^\n]*\n {2}#\d+ \[a 2\/2\] RUN/);
    expect(tty.stdout).toMatch(/\[\+\] Building [\d.]+s \(4\/4\) FINISHED/);
  });

  test('a stage read by a stage FROM it and by a COPY --from side by side: both see all its files, at every run', async () => {
    const ctx = context('parallel-readers', {
      Dockerfile: [
        'FROM busybox AS base',
        "RUN mkdir /d && i=0 && while [ $i -lt 300 ]; do i=$((i+1)); echo $i > /d/f$i; done",
        'FROM base AS x',
        'RUN ls /d | wc -l > /x-count',
        'FROM busybox AS y',
        'COPY --from=base /d /d',
        'RUN ls /d | wc -l > /y-count',
        'FROM busybox',
        'COPY --from=x /x-count /x',
        'COPY --from=y /y-count /y',
        'COPY --from=x /d /d',
        '',
      ].join('\n'),
    });
    for (const n of [1, 2, 3]) {
      const r = await g(['build', ...(n > 1 ? ['--no-cache'] : []), '-t', `readers:${n}`, ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await exportedFiles(`readers:${n}`, ['x', 'y'])).toEqual(['300', '300']);
      expect(Object.keys(await files(`readers:${n}`)).filter((l) => /^d\/f\d+$/.test(l))).toHaveLength(300);
    }
  });

  test('a cache mount seeded from a stage, first used by two stages side by side: both find it whole', async () => {
    for (const n of [1, 2]) {
      const id = `seeded-${Math.random().toString(16).slice(2)}`;
      const use = (out: string) => `RUN --mount=type=cache,id=${id},target=/c,from=seed,source=/s sh -c 'ls /c | wc -l > /${out}'`;
      const ctx = context(`parallel-seeded-${n}`, {
        Dockerfile: [
          'FROM busybox AS seed',
          "RUN mkdir /s && i=0 && while [ $i -lt 200 ]; do i=$((i+1)); echo $i > /s/f$i; mkdir /s/d$i; echo $i > /s/d$i/g; done",
          'FROM busybox AS a',
          use('a'),
          'FROM busybox AS b',
          use('b'),
          'FROM busybox',
          'COPY --from=a /a /a',
          'COPY --from=b /b /b',
          '',
        ].join('\n'),
      });
      const r = await g(['build', '-t', `seeded:${n}`, ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(await exportedFiles(`seeded:${n}`, ['a', 'b'])).toEqual(['400', '400']);
    }
  });

  test('a stage that fails stops the stage running beside it: the failing step is the error, the other RUN is killed, nothing is left', async () => {
    const seconds = 100_000 + Math.floor(Math.random() * 900_000);
    const meet = `meet-${Math.random().toString(16).slice(2)}`;
    const ctx = context('parallel-fail', {
      Dockerfile: [
        'FROM busybox AS slow',
        `RUN --mount=type=cache,id=${meet},target=/meet,sharing=shared sh -c 'touch /meet/slow; sleep ${seconds}'`,
        'FROM busybox AS bad',
        `RUN --mount=type=cache,id=${meet},target=/meet,sharing=shared sh -c 'i=0; while [ ! -e /meet/slow ]; do i=$((i+1)); [ $i -lt 600 ] || exit 7; sleep 0.1; done; exit 3'`,
        'FROM busybox',
        'COPY --from=slow /etc/passwd /a',
        'COPY --from=bad /etc/passwd /b',
        '',
      ].join('\n'),
    });
    const r = await g(['build', '--progress', 'plain', ctx]);
    expect(r.exitCode).toBe(1);
    // The failing step's own error, not one the stopped stage wrapped.
    expect(r.stderr).toMatch(/^error: \S*Dockerfile:4: step \[bad 2\/2\] RUN .* failed with exit code 3$/m);
    expect(await waitForNoProcesses(`sleep ${seconds}`, 10_000)).toEqual([]);
    expect(readdirSync(path.join(root, 'tmp')).filter((n) => n.startsWith('rootfs-') || n.startsWith('lease-'))).toEqual([]);
    if (!testUser) expect(mountsUnder(root)).toEqual([]);
  });

  test('COPY keeps hard links between the files it copies (one file, the other a link to it)', async () => {
    const ctx = context('hardctx', { Dockerfile: 'FROM busybox\nCOPY tree/ /tree/\n', 'tree/a/original': 'shared body\n', 'tree/b/other': 'not linked\n' });
    linkSync(path.join(ctx, 'tree/a/original'), path.join(ctx, 'tree/b/alias'));
    linkSync(path.join(ctx, 'tree/a/original'), path.join(ctx, 'tree/z-alias'));
    const r = await g(['build', '-t', 'hard:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const f = await files('hard:1');
    const entry = (n: string) => Object.entries(f).find(([k]) => k === n || k.startsWith(`${n} link to `))?.[1] ?? '';
    const kinds = ['tree/a/original', 'tree/b/alias', 'tree/z-alias'].map((n) => entry(n).slice(0, 1)).sort();
    expect(kinds).toEqual(['-', 'h', 'h']); // one regular file, two hard links to it
    expect((f['tree/b/other'] ?? '').slice(0, 1)).toBe('-');
  });

  test("a context file's capability is copied on every build, from the stat cache when the file is unchanged, read again when it changes", async () => {
    haveTool('setcap');
    haveTool('getcap');
    const ctx = context('capctx', { Dockerfile: 'FROM scratch\nCOPY tool /tool\n' });
    writeFileSync(path.join(ctx, 'tool'), readFileSync('/bin/true'), { mode: 0o755 });
    await execa('setcap', ['cap_net_raw+ep', path.join(ctx, 'tool')]);
    // Older than a second: not racy, so the stat cache keeps its row (and the capability with it).
    await new Promise((r) => setTimeout(r, 1100));
    const capsOfBuild = async (): Promise<string> => {
      const out = path.join(work, `capout-${Math.random().toString(16).slice(2)}`);
      const r = await g(['build', '--no-cache', '-o', `type=local,dest=${out}`, ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      return (await execa('getcap', [path.join(out, 'tool')])).stdout.replace(/^\S+\s*/, '').trim();
    };
    expect(await capsOfBuild()).toBe('cap_net_raw=ep'); // read with getfattr, then kept
    const statFile = path.join(root, 'cache', `stat-${createHash('sha256').update(path.resolve(ctx)).digest('hex')}.json`);
    const rows = JSON.parse(readFileSync(statFile, 'utf8')).rows as Record<string, unknown[]>;
    expect(Object.keys(rows['tool']?.[5] as object)).toEqual(['security.capability']);
    expect(await capsOfBuild()).toBe('cap_net_raw=ep'); // from the stat cache
    await execa('setcap', ['cap_chown+ep', path.join(ctx, 'tool')]);
    expect(await capsOfBuild()).toBe('cap_chown=ep');
    await execa('setcap', ['-r', path.join(ctx, 'tool')]);
    expect(await capsOfBuild()).toBe('');
  });

  test('COPY through a symlink in the image lands where the link points, inside the rootfs', async () => {
    const ctx = context('linkctx', {
      Dockerfile: 'FROM busybox\nRUN mkdir -p /run && ln -s /run /var-run\nCOPY f.txt /var-run/f.txt\n',
      'f.txt': 'through the link',
    });
    expect((await g(['build', '-t', 'link:1', ctx])).exitCode).toBe(0);
    const f = await files('link:1');
    expect(f['run/f.txt']).toBeDefined();
  });

  test('progress on a terminal: an ora spinner per step; a pty without a width falls back to lines (it used to redraw forever)', async () => {
    haveTool('script');
    const ctx = example('hello');
    const command = gantryArgv(['--root', root, 'build', '--no-cache', '--progress', 'tty', ctx]).map((a) => `'${a}'`).join(' ');
    const cmd = (cols: string) => `stty cols ${cols}; ${command}`;
    // A terminal as a user has one (this process's TERM may be CI's "dumb", which gets lines).
    const wide = await execa('script', ['-qfec', cmd('100'), '/dev/null'], { reject: false, timeout: 30_000, env: { TERM: 'xterm' } });
    expect(wide.exitCode).toBe(0);
    expect(wide.stdout).toMatch(/✔.*#\d+ \[build 3\/3\] RUN/);
    const narrow = await execa('script', ['-qfec', cmd('0'), '/dev/null'], { reject: false, timeout: 30_000, env: { TERM: 'xterm' } });
    expect(narrow.exitCode).toBe(0);
    expect(narrow.stdout).toMatch(/#\d+ DONE|#\d+ \[build 3\/3\] RUN/);
  });

  test('COPY ../x is an error', async () => {
    const ctx = context('escctx', { Dockerfile: 'FROM busybox\nCOPY ../x /x\n' });
    const r = await g(['build', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('"../x" is outside the build context');
  });

  test('outputs: OCI tar and directory, docker tar, local directory; --iidfile and --metadata-file', async () => {
    haveTool('skopeo');
    const ctx = example('hello');
    const o = (n: string) => path.join(work, n);
    const r = await g([
      'build', '-t', 'out:1', ctx,
      '-o', `type=oci,dest=${o('img.oci.tar')}`,
      '-o', `type=oci,dest=${o('ocidir')},tar=false`,
      '-o', `type=docker,dest=${o('img.docker.tar')}`,
      '-o', `type=local,dest=${o('rootfs-out')}`,
      '--iidfile', o('iid'),
      '--metadata-file', o('meta.json'),
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const info = await inspect('out:1');
    expect(readFileSync(o('iid'), 'utf8')).toBe(info.Id);
    expect(JSON.parse(readFileSync(o('meta.json'), 'utf8'))['containerimage.digest']).toBe(info.Descriptor.digest);
    const sk = async (ref: string) => JSON.parse((await execa('skopeo', ['inspect', ref])).stdout).Digest as string;
    const raw = async (ref: string) => JSON.parse((await execa('skopeo', ['inspect', '--raw', ref])).stdout) as { config: { digest: string }; layers: { mediaType: string }[] };
    // The store keeps built layers uncompressed; an OCI output gets them gzip-compressed, under
    // a manifest of its own (the same for both outputs: compression is deterministic), with
    // the same config: the same image ID.
    // An OCI layout names the image as docker save and BuildKit do: ref.name is the tag.
    const ociTar = `oci-archive:${o('img.oci.tar')}:1`;
    const ociDir = `oci:${o('ocidir')}:1`;
    expect(await sk(ociTar)).toBe(await sk(ociDir));
    expect(await sk(ociTar)).not.toBe(info.Descriptor.digest);
    for (const ref of [ociTar, ociDir]) {
      const m = await raw(ref);
      expect(m.config.digest).toBe(info.Id);
      expect(m.layers.map((l) => l.mediaType)).toEqual(m.layers.map(() => 'application/vnd.oci.image.layer.v1.tar+gzip'));
    }
    const local = JSON.parse(readFileSync(path.join(root, 'blobs', 'sha256', info.Descriptor.digest.slice(7)), 'utf8')) as { layers: { mediaType: string }[] };
    expect(local.layers.at(-1)?.mediaType).toBe('application/vnd.oci.image.layer.v1.tar');
    expect(await sk(`docker-archive:${o('img.docker.tar')}`)).toMatch(/^sha256:/);
    expect(readFileSync(o('rootfs-out/greeting.txt'), 'utf8')).toBe('hello from gantry\n');
  });

  test('the API: build() resolves to the digests', async () => {
    const { build } = await import('../../src/index.js');
    const events: string[] = [];
    const r = await build({ root: apiRoot, context: example('hello'), tags: ['api:1'], onProgress: (e) => events.push(e.type) });
    expect(r.digest).toMatch(/^sha256:/);
    const info = JSON.parse((await execa(path.join(projectRoot, 'bin', 'gantry'), ['--root', apiRoot, 'inspect', 'api:1'])).stdout)[0];
    expect(r.configDigest).toBe(info.Id);
    expect(events).toContain('image');
    expect(readFileSync(path.join(apiRoot, 'index.json'), 'utf8')).toContain('docker.io/library/api:1');
  });
});
