import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { writeTree } from '../helpers/files.js';
import { expectStoreConsistent, makeVictim, type Victim } from '../helpers/hostile.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// The build context, the RUN sandbox and RUN mounts under attack (issue 6, points 9-12):
// context symlinks that point out, images whose /etc, /dev or /etc/passwd lead to the host or
// would block, a WORKDIR in /proc/self/fd, mount ids and sources that climb out. After each
// case the victim beside the context and store is untouched, none of its bytes are in the
// store, and the store invariant holds.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-ctx-'));
const store = path.join(work, 'store');
let victim: Victim;
let busyboxDir = '';
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => {
  victim?.unchanged();
  expectStoreConsistent(store, victim?.marker);
});

const g = (args: string[]) => execa(bin, ['--root', store, ...args], { reject: false, timeout: 60_000 });

/** An image: the busybox rootfs with `twist` applied, imported as `ref`. */
async function image(ref: string, twist: (dir: string) => void): Promise<void> {
  const dir = path.join(work, `img-${ref.replace(/\W+/g, '-')}`);
  cpSync(busyboxDir, dir, { recursive: true, verbatimSymlinks: true });
  twist(dir);
  const r = await g(['import', tarDir(dir, `${dir}.tgz`), ref]);
  expect(r.exitCode, r.stderr).toBe(0);
}

let n = 0;
function context(dockerfile: string, files: Record<string, string> = {}, links: Record<string, string> = {}): string {
  return writeTree(path.join(work, 'ctx', String(++n)), { Dockerfile: dockerfile, ...files }, links);
}

/** Build to a local directory. */
async function build(ctx: string) {
  const out = path.join(work, 'out', path.basename(ctx));
  const r = await g(['build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx]);
  return { r, out };
}

beforeAll(async () => {
  haveTool('runc');
  // The victim also holds a passwd and group naming "evil": an image that reads them from the
  // host would resolve USER evil.
  victim = makeVictim(path.join(work, 'victim'), { passwd: 'evil:x:4242:4242::/:/bin/sh\n', group: 'evil:x:4242:\n' });
  busyboxDir = makeBusyboxRootfs(path.join(work, 'busybox'));
  for (const applet of ['pwd', 'touch', 'tr', 'readlink']) symlinkSync('busybox', path.join(busyboxDir, 'bin', applet));
  await image('bb:1', () => undefined);
  await image('etc-link:1', (d) => {
    rmSync(path.join(d, 'etc'), { recursive: true });
    symlinkSync(victim.dir, path.join(d, 'etc'));
  });
  await image('passwd-stdin:1', (d) => {
    rmSync(path.join(d, 'etc', 'passwd'));
    symlinkSync('/dev/stdin', path.join(d, 'etc', 'passwd'));
  });
  await image('passwd-fifo:1', (d) => {
    rmSync(path.join(d, 'etc', 'passwd'));
    execFileSync('/usr/bin/mkfifo', [path.join(d, 'etc', 'passwd')]);
  });
  await image('dev-link:1', (d) => symlinkSync(path.join(victim.dir, 'sub'), path.join(d, 'dev')));
  await image('dev-missing-link:1', (d) => symlinkSync(path.join(victim.dir, 'newdev'), path.join(d, 'dev')));
  await image('proc-link:1', (d) => symlinkSync(path.join(victim.dir, 'newproc'), path.join(d, 'proc')));
  await image('work-link:1', (d) => symlinkSync(victim.dir, path.join(d, 'work')));
}, 120_000);

describe('context symlinks (9)', () => {
  test('links that point out of the context are copied as links, never followed to the host', async () => {
    const ctx = context('FROM bb:1\nCOPY . /ctx/\n', { 'plain.txt': 'p' }, { foo: path.join(victim.dir, 'secret'), 'sub/bar': '../../../etc', up: '..' });
    const { r, out } = await build(ctx);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readlinkSync(path.join(out, 'ctx/foo'))).toBe(path.join(victim.dir, 'secret'));
    expect(readlinkSync(path.join(out, 'ctx/sub/bar'))).toBe('../../../etc');
    expect(readlinkSync(path.join(out, 'ctx/up'))).toBe('..');
  });

  test('a source that is a link out of the context resolves inside the context: not found', async () => {
    const ctx = context('FROM bb:1\nCOPY foo /x\n', {}, { foo: path.join(victim.dir, 'secret') });
    const { r } = await build(ctx);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:2/);
    expect(r.stderr).toMatch(/not found|does not exist|no such/i);
  });

  test('COPY ../x and COPY through a linked directory that climbs out are errors', async () => {
    const up = await build(context('FROM bb:1\nCOPY ../victim/secret /x\n'));
    expect(up.r.exitCode).not.toBe(0);
    expect(up.r.stderr).toMatch(/Dockerfile:2/);
    const through = await build(context('FROM bb:1\nCOPY out/secret /x\n', {}, { out: victim.dir }));
    expect(through.r.exitCode).not.toBe(0);
  });
});

describe('the image and the sandbox (10)', () => {
  test('USER by name in an image whose /etc links to a host directory: looked up inside the root, not on the host', async () => {
    const { r } = await build(context('FROM etc-link:1\nUSER evil\nRUN id -u > /tmp/uid\n'));
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/unable to find user evil/);
  });

  test('/etc/passwd a link to /dev/stdin, USER by name: an error, no hang', async () => {
    const { r } = await build(context('FROM passwd-stdin:1\nUSER someone\nRUN true\n'));
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/unable to find user someone|not a regular file/);
  });

  test('/etc/passwd a FIFO, USER by name: an error, no hang', async () => {
    const { r } = await build(context('FROM passwd-fifo:1\nUSER someone\nRUN true\n'));
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/\/etc\/passwd in the image is not a regular file/);
  });

  test('an image whose /dev links to a host directory: an error or in-root behaviour, nothing written to the host', async () => {
    const { r, out } = await build(context('FROM dev-link:1\nRUN ls /dev > /tmp/devs; echo x > /dev/null\n'));
    expect(r.timedOut).toBe(false);
    if (r.exitCode === 0) expect(readFileSync(path.join(out, 'tmp/devs'), 'utf8')).toMatch(/null/);
    else expect(r.stderr).toMatch(/Dockerfile:2/);
  });

  test.each([
    ['etc-link:1', 'its /etc links to a host directory', ''],
    ['dev-missing-link:1', 'its /dev links to a host path that does not exist', ''],
    ['proc-link:1', 'its /proc links to a host path that does not exist', ''],
    ['work-link:1', 'a WORKDIR under a link to a host directory', 'WORKDIR /work/newdir\n'],
  ].flatMap(([ref, what, pre]) => ['oci', 'chroot'].map((iso) => [ref as string, what as string, pre as string, iso] as const)))(
    'an image where %s (%s), RUN %s in the %s sandbox: an error or in-root behaviour, never a host write',
    async (ref, _, pre, isolation) => {
      const ctx = context(`FROM ${ref}\n${pre}RUN echo ran > /tmp/ran\n`);
      const out = path.join(work, 'out', `${path.basename(ctx)}`);
      const r = await g(['build', '--isolation', isolation, '-o', `type=local,dest=${out}`, ctx]);
      expect(r.timedOut).toBe(false);
      if (r.exitCode !== 0) expect(r.stderr).toMatch(/Dockerfile:\d/);
      // afterEach: the victim is unchanged (nothing made in it) and the store consistent.
    },
  );

  test('WORKDIR /proc/self/fd/N: made inside the rootfs; RUN there writes nowhere on the host', async () => {
    const { r, out } = await build(context('FROM bb:1\nWORKDIR /proc/self/fd/3\nRUN pwd > /tmp/where; touch here-$$ 2>/dev/null; true\n'));
    expect(r.timedOut).toBe(false);
    if (r.exitCode === 0) {
      // /proc is the sandbox's own, so nothing the RUN did there reaches the image or the host.
      expect(existsSync(path.join(out, 'tmp/where'))).toBe(true);
      expect(lstatSync(path.join(out, 'proc')).isDirectory()).toBe(true);
    } else {
      expect(r.stderr).toMatch(/Dockerfile:\d/);
    }
  });

  test('no descriptor beyond stdio reaches RUN, in either sandbox', async () => {
    for (const isolation of ['oci', 'chroot']) {
      // Without /proc (the chroot isolation has none) the shell tries each descriptor: stdout
      // (1) is the positive control, 99 and 100 are the ones handed to gantry.
      const ctx = context(`FROM bb:1\nRUN for f in 1 99 100; do if { true >&$f; } 2>/dev/null; then printf "$f "; fi; done > /fds-${isolation}\n`);
      const out = path.join(work, 'out', `fds-${isolation}`);
      const r = await execa('bash', ['-c', 'exec "$@" 99</dev/null 100>/dev/null', 'fds', bin, '--root', store, 'build', '--isolation', isolation, '-o', `type=local,dest=${out}`, ctx], { reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(readFileSync(path.join(out, `fds-${isolation}`), 'utf8').trim()).toBe('1');
    }
  });
});

describe("the host's mounts", () => {
  test('a RUN leaves the mounts below a shared mount of the host mounted (slirp4netns once unmounted them on the host)', async () => {
    // As `ip netns add` leaves them: /run/netns a shared mount, each namespace's file a mount below it.
    const dir = path.join(work, 'shared-mount');
    const child = path.join(dir, 'child');
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['--bind', dir, dir]);
    try {
      execFileSync('mount', ['--make-shared', dir]);
      mkdirSync(child, { recursive: true });
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'gantry-test', child]);
      const mounted = () => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === child);
      expect(mounted()).toBe(true);
      const { r } = await build(context('FROM bb:1\nRUN echo networked > /n\nRUN --network=none echo alone > /a\n'));
      expect(r.exitCode, r.stderr).toBe(0);
      expect(mounted()).toBe(true);
    } finally {
      execFileSync('umount', ['-R', '-l', dir]);
    }
  });
});

describe('RUN mounts (11)', () => {
  test.each([
    ['a cache id that climbs out', 'RUN --mount=type=cache,id=../../../victim,target=/c touch /c/x'],
    ['a cache id with a nested climb', 'RUN --mount=type=cache,id=a/../../x,target=/c touch /c/x'],
    ['a bind source that climbs out of the context', 'RUN --mount=type=bind,source=../victim,target=/b cat /b/secret'],
    ['a bind source through a context link to the host', 'RUN --mount=type=bind,source=out,target=/b cat /b/secret'],
  ])('%s is an error', async (_, run) => {
    const ctx = context(`FROM bb:1\n${run}\n`, {}, { out: victim.dir });
    const { r } = await build(ctx);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:2/);
  });
});

describe('positive controls (12)', () => {
  test('/var/run -> /run with writes through it, relative links with many .., bin/sh -> a sibling', async () => {
    await image('controls:1', (d) => {
      mkdirSync(path.join(d, 'run'));
      mkdirSync(path.join(d, 'var'));
      symlinkSync('/run', path.join(d, 'var', 'run'));
      mkdirSync(path.join(d, 'usr/share/deep'), { recursive: true });
      symlinkSync('../../../../../../../../etc/passwd', path.join(d, 'usr/share/deep/passwd'));
    });
    const ctx = context('FROM controls:1\nCOPY pid /var/run/app/\nRUN echo ran > /var/run/ran && cat /usr/share/deep/passwd > /copied\n', { pid: '42' });
    const { r, out } = await build(ctx);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'run/app/pid'), 'utf8')).toBe('42');
    expect(readFileSync(path.join(out, 'run/ran'), 'utf8')).toBe('ran\n');
    expect(readFileSync(path.join(out, 'copied'), 'utf8')).toMatch(/^root:x:0:0/);
    expect(readlinkSync(path.join(out, 'var/run'))).toBe('/run');
  });
});
