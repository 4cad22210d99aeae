import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { ensureUser, readableCopy, TEST_SUBID_RANGE } from '../helpers/gantry.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { writeTree } from '../helpers/files.js';
import { startRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// Building as a non-root user (issue 19, point 3): gantry enters a user namespace mapped from
// /etc/subuid and /etc/subgid, and the image equals the root build's, owners included. The test
// (run as root, as CI does) makes the users it needs, and runs gantry from a copy of the bundled
// command that they can read.

const USER = 'gantry-rootless';
const NORANGE = 'gantry-norange';
const isRoot = process.getuid?.() === 0;
// Under /tmp with 0755 parents: the users must reach the copy of gantry, the contexts and the bases.
const work = mkdtempSync('/tmp/gantry-rootless-');
chmodSync(work, 0o755);
let ready = false;
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** gantry as `user`, with its own store. */
const as = (user: string, args: string[], env: Record<string, string> = {}) =>
  execa('runuser', ['-u', user, '--', 'env', `HOME=${path.join(work, `home-${user}`)}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), path.join(readableCopy(), 'bin', 'gantry'), '--root', path.join(work, `store-${user}`), ...args], {
    reject: false,
    timeout: 300_000,
  });
const bin = path.join(projectRoot, 'bin', 'gantry');
const rootStore = path.join(work, 'store-root');
const asRoot = (args: string[], env: Record<string, string> = {}) => execa(bin, ['--root', rootStore, ...args], { reject: false, timeout: 300_000, env });

beforeAll(async () => {
  if (!isRoot) return;
  haveTool('newuidmap');
  haveTool('runuser');
  ensureUser(USER, TEST_SUBID_RANGE);
  ensureUser(NORANGE);
  mkdirSync(path.join(work, 'out-root'));
  for (const u of [USER, NORANGE]) {
    for (const d of [`home-${u}`, `store-${u}`, `out-${u}`]) {
      mkdirSync(path.join(work, d), { recursive: true });
      execFileSync('chown', [u, path.join(work, d)]);
    }
  }
  // The default network needs the tun device (Debian makes it 0666; .ci/run restores that).
  if ((statSync('/dev/net/tun').mode & 0o006) !== 0o006) throw new Error('/dev/net/tun is not usable by other users (mode 0666, as Debian sets it, is needed for a rootless RUN network)');
  readableCopy();
  execFileSync('chmod', ['-R', 'a+rX', work]);
  // The bases, made by root and saved, so that both stores start from the very same images.
  const bb = tarDir(makeBusyboxRootfs(path.join(work, 'bb-rootfs')), path.join(work, 'bb.tgz'));
  expect((await asRoot(['import', bb, 'bb:1', '-c', 'ENV PATH=/bin'])).exitCode).toBe(0);
  const images = ['bb:1'];
  const tarball = debianBaseTarball();
  if (tarball) {
    expect((await asRoot(['import', tarball, 'debian:rootless', '-c', `ENV ${DEBIAN_PATH}`])).exitCode).toBe(0);
    images.push('debian:rootless');
  }
  const saved = path.join(work, 'bases.tar');
  expect((await asRoot(['save', ...images, '-o', saved])).exitCode).toBe(0);
  chmodSync(saved, 0o644);
  const load = await as(USER, ['load', '-i', saved]);
  expect(load.exitCode, load.stderr).toBe(0);
  ready = true;
}, 600_000);

/** Build as root and as the user; the two images' layers and configs. */
async function both(name: string, dockerfile: string, files: Record<string, string> = {}) {
  const ctx = writeTree(path.join(work, 'ctx', name), { Dockerfile: dockerfile, ...files });
  execFileSync('chmod', ['-R', 'a+rX', path.join(work, 'ctx')]);
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const r = await asRoot(['build', '--progress', 'plain', '-t', `${name}:1`, ctx], env);
  expect(r.exitCode, r.stderr).toBe(0);
  const u = await as(USER, ['build', '--progress', 'plain', '-t', `${name}:1`, ctx], env);
  expect(u.exitCode, u.stderr).toBe(0);
  const rootInfo = JSON.parse((await asRoot(['inspect', `${name}:1`])).stdout)[0];
  const userInfo = JSON.parse((await as(USER, ['inspect', `${name}:1`])).stdout)[0];
  return { root: rootInfo, user: userInfo, userOut: u.stderr };
}

/** Each layer of an image saved by `who`, as `tar tv` lines with numeric owners. */
async function listing(who: string, ref: string): Promise<string[]> {
  const file = path.join(work, `out-${who}`, `${ref.replace(/\W/g, '-')}.tar`);
  const r = who === 'root' ? await asRoot(['save', ref, '-o', file]) : await as(who, ['save', ref, '-o', `${file}`]);
  expect(r.exitCode, r.stderr).toBe(0);
  const dir = path.join(work, `listing-${who}-${ref.replace(/\W/g, '-')}`);
  mkdirSync(dir);
  execFileSync('tar', ['xf', file, '-C', dir]);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))[0] as { Layers: string[] };
  return manifest.Layers.flatMap((l) => execFileSync('tar', ['--numeric-owner', '-tvf', path.join(dir, l)], { encoding: 'utf8' }).trim().split('\n'));
}

describe.runIf(isRoot)('rootless builds', () => {
  test('busybox: RUN chown, USER switching, COPY --chown, a non-root RUN: the same layers and config as the root build', async () => {
    if (!ready) return;
    const { root, user, userOut } = await both(
      'bbrootless',
      [
        'FROM bb:1',
        'RUN busybox mkdir -p /data /home/app && busybox chown 1000:1000 /home/app && echo hi > /data/root-file && busybox id -u',
        'COPY --chown=1000:1000 file /home/app/copied',
        'USER 1000:1000',
        'RUN echo mine > /home/app/mine && busybox id',
        'USER root',
        'RUN --network=none busybox ls -ln /home/app',
      ].join('\n'),
      { file: 'copied\n' },
    );
    expect(userOut).toContain('uid=1000 gid=1000');
    expect(user.RootFS.Layers).toEqual(root.RootFS.Layers);
    expect(user.Config).toEqual(root.Config);
    const lines = await listing(USER, 'bbrootless:1');
    expect(lines.some((l) => /^-rw-r--r-- 0\/0 .* data\/root-file$/.test(l))).toBe(true);
    expect(lines.some((l) => /^-rw-r--r-- 1000\/1000 .* home\/app\/mine$/.test(l))).toBe(true);
    expect(lines.some((l) => /^-rw-r--r-- 1000\/1000 .* home\/app\/copied$/.test(l))).toBe(true);
    // On the host the user's store holds the files as the caller (root inside) and its subordinate ids.
  });

  test('Debian: useradd and chown by name, then a non-root USER: the same layers and config as the root build', async () => {
    if (!ready || !debianBaseTarball()) return;
    const { root, user } = await both(
      'debrootless',
      ['FROM debian:rootless', 'RUN useradd -u 1500 worker && install -d -o worker -g worker /data', 'USER worker', 'RUN echo hi > /data/hi && stat -c "%u:%g %a" /data/hi'].join('\n'),
    );
    expect(user.Config).toEqual(root.Config);
    // useradd opens /etc/.pwd.lock for writing and leaves it as it was: the root build's overlay
    // copies it up, and its layer has it (as BuildKit's); a rootless build's plain tree has no
    // trace of the open (docs/differences.md). Every other entry is the same, owners included.
    const strip = (lines: string[]) => lines.filter((l) => !l.endsWith(' etc/.pwd.lock'));
    expect(strip(await listing(USER, 'debrootless:1'))).toEqual(strip(await listing('root', 'debrootless:1')));
    expect(user.RootFS.Layers.slice(0, 1)).toEqual(root.RootFS.Layers.slice(0, 1));
    expect(user.RootFS.Layers.slice(2)).toEqual(root.RootFS.Layers.slice(2));
  });

  test('the same owners and modes as buildah gives as that user (rootless, vfs, chroot isolation)', async () => {
    if (!ready) return;
    haveTool('buildah');
    const steps = ['RUN echo hi > /root-file && busybox mkdir -p /app && busybox chown 1000:1000 /app && busybox chmod 750 /app', 'USER 1000:1000', 'RUN echo mine > /app/mine && busybox chmod 640 /app/mine'];
    const archive = path.join(work, 'bb-docker.tar');
    expect((await asRoot(['save', 'bb:1', '-o', archive])).exitCode).toBe(0);
    chmodSync(archive, 0o644);
    const gctx = writeTree(path.join(work, 'ctx', 'vs-buildah-g'), { Dockerfile: ['FROM bb:1', ...steps].join('\n') + '\n' });
    const bctx = writeTree(path.join(work, 'ctx', 'vs-buildah-b'), { Dockerfile: [`FROM docker-archive:${archive}`, ...steps].join('\n') + '\n' });
    execFileSync('chmod', ['-R', 'a+rX', path.join(work, 'ctx')]);
    const built = await as(USER, ['build', '-t', 'vsb:1', gctx]);
    expect(built.exitCode, built.stderr).toBe(0);
    const ours = await listing(USER, 'vsb:1');
    const home = path.join(work, `home-${USER}`);
    const buildah = (args: string[]) =>
      execa('runuser', ['-u', USER, '--', 'env', `HOME=${home}`, 'buildah', '--storage-driver', 'vfs', ...args], { reject: false, timeout: 300_000, cwd: home });
    const b = await buildah(['bud', '--layers', '--isolation', 'chroot', '-t', 'vsb:1', bctx]);
    expect(b.exitCode, b.stderr).toBe(0);
    const out = path.join(work, `out-${USER}`, 'buildah.tar');
    const p = await buildah(['push', 'vsb:1', `docker-archive:${out}`]);
    expect(p.exitCode, p.stderr).toBe(0);
    const dir = path.join(work, 'listing-buildah');
    mkdirSync(dir);
    execFileSync('tar', ['xf', out, '-C', dir]);
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))[0] as { Layers: string[] };
    const theirs = manifest.Layers.flatMap((l) => execFileSync('tar', ['--numeric-owner', '-tvf', path.join(dir, l)], { encoding: 'utf8' }).trim().split('\n'));
    // Mode, owner and size of what the steps made (times and buildah's own leftovers aside).
    const pick = (lines: string[], name: string) => {
      const l = lines.filter((x) => x.endsWith(` ${name}`)).pop() ?? `(no ${name})`;
      return l.split(/\s+/).slice(0, 3).join(' ');
    };
    for (const name of ['root-file', 'app/', 'app/mine']) expect(pick(ours, name), name).toBe(pick(theirs, name));
    expect(pick(ours, 'app/mine')).toBe('-rw-r----- 1000/1000 5');
  }, 300_000);

  test('apt-get install works rootless, through the default network', async () => {
    if (!ready || !debianBaseTarball()) return;
    const ctx = writeTree(path.join(work, 'ctx', 'apt'), { Dockerfile: 'FROM debian:rootless\nRUN apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello\n' });
    execFileSync('chmod', ['-R', 'a+rX', path.join(work, 'ctx')]);
    const r = await as(USER, ['build', '--progress', 'plain', '-t', 'apt:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('Hello, world!');
  }, 300_000);

  test('a user without a subordinate range gets an error that says how to add one, and no image', async () => {
    if (!ready) return;
    const ctx = writeTree(path.join(work, 'ctx', 'norange'), { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    execFileSync('chmod', ['-R', 'a+rX', path.join(work, 'ctx')]);
    const r = await as(NORANGE, ['build', '-t', 'x:1', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('/etc/subuid');
    expect(r.stderr).toContain('usermod --add-subuids');
    // The positive control: the same build as the user with a range works.
    const ok = await as(USER, ['build', '-t', 'x:1', ctx]);
    expect(ok.exitCode, ok.stderr).toBe(0);
  });

  test('the Node API as the user: build() runs in the user namespace, relays progress and credential look-ups, gives the root build\'s image and its errors\' classes', async () => {
    if (!ready) return;
    const ctx = writeTree(path.join(work, 'ctx', 'api'), {
      Dockerfile: 'FROM bb:1\nRUN busybox mkdir /app && busybox chown 1000:1000 /app && echo api-run-output\nCOPY --chown=1000:1000 f /app/f\n',
      f: 'x\n',
    });
    const abortCtx = writeTree(path.join(work, 'ctx', 'api-abort'), { Dockerfile: 'FROM bb:1\nRUN echo started && sleep 31\n' });
    execFileSync('chmod', ['-R', 'a+rX', path.join(work, 'ctx')]);
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const reg = await startRegistry({ tls: true, basic: { username: 'alice', password: 's3cret' } });
    if (!reg?.tls) throw new Error('docker-registry is not installed');
    onTestFinished(() => reg.stop());
    const ca = path.join(work, 'api-ca.pem');
    cpSync(reg.tls.ca, ca);
    chmodSync(ca, 0o644);
    const r = await asRoot(['build', '-t', 'api:1', ctx], env);
    expect(r.exitCode, r.stderr).toBe(0);
    // A program of the user's: build() with progress, an abort signal and a credentials callback.
    const script = path.join(work, 'api-script.mjs');
    writeFileSync(
      script,
      [
        `import { build, GantryError } from ${JSON.stringify(path.join(readableCopy(), 'dist', 'index.js'))};`,
        'const events = [];',
        `const root = ${JSON.stringify(path.join(work, `store-${USER}`))};`,
        `const result = await build({ root, context: ${JSON.stringify(ctx)}, tags: ['api:1'], onProgress: (e) => events.push(e), signal: new AbortController().signal, credentials: () => undefined });`,
        // A push through a registry that wants a password: build() asks this program for it.
        'const asked = [];',
        `const pushed = await build({ root, context: ${JSON.stringify(ctx)}, tags: [${JSON.stringify(`${reg.host}/api/app:1`)}], push: true, caCertFile: ${JSON.stringify(ca)}, credentials: (r) => { asked.push(r); return { username: 'alice', password: 's3cret' }; } });`,
        // An abort while a RUN runs stops the worker's build, and the RUN with it.
        'const controller = new AbortController();',
        'let aborted;',
        `try { await build({ root, context: ${JSON.stringify(abortCtx)}, noCache: true, signal: controller.signal, onProgress: (e) => { if (e.type === 'output' && e.text.includes('started')) controller.abort(); } }); } catch (e) { aborted = { code: e.code, name: e.name }; }`,
        'let failure;',
        `try { await build({ root, context: ${JSON.stringify(ctx)}, dockerfile: '/nonexistent/Dockerfile' }); } catch (e) { failure = { gantry: e instanceof GantryError, name: e.name, code: e.code, message: e.message }; }`,
        'console.log(JSON.stringify({ uid: process.getuid(), result, pushed: pushed.digest, asked, aborted, kinds: [...new Set(events.map((e) => e.type))], output: events.filter((e) => e.type === "output").map((e) => e.text).join(""), failure }));',
      ].join('\n'),
    );
    chmodSync(script, 0o644);
    const run = await execa('runuser', ['-u', USER, '--', 'env', `HOME=${path.join(work, `home-${USER}`)}`, ...Object.entries(env).map(([k, v]) => `${k}=${v}`), process.execPath, script], { reject: false, timeout: 300_000 });
    expect(run.exitCode, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout) as { uid: number; pushed: string; asked: string[]; aborted: { code: string; name: string }; result: { digest: string; configDigest: string }; kinds: string[]; output: string; failure: { gantry: boolean; name: string; code: string; message: string } };
    expect(out.uid).not.toBe(0); // the program itself runs as the user
    expect(out.kinds).toEqual(expect.arrayContaining(['plan', 'step', 'output', 'image']));
    expect(out.output).toContain('api-run-output');
    const rootInfo = JSON.parse((await asRoot(['inspect', 'api:1'])).stdout)[0];
    expect(out.result.configDigest).toBe(rootInfo.Id);
    expect(out.result.digest).toBe(rootInfo.Descriptor.digest);
    expect(out.asked).toContain(reg.host);
    expect(out.aborted).toEqual({ code: 'SANDBOX_ABORTED', name: 'SandboxError' });
    const left = await execa('sh', ['-c', 'ps -eo args | grep -c "[s]leep 31" || true']);
    expect(left.stdout.trim()).toBe('0');
    expect(out.pushed).toBe(out.result.digest);
    // An error keeps its class and code across the process boundary.
    expect(out.failure).toMatchObject({ gantry: true, code: expect.any(String) });
    expect(out.failure.message).toContain('/nonexistent/Dockerfile');
  });

  test('prune as the user removes the trees a build left, owned by its subordinate ids', async () => {
    if (!ready) return;
    const r = await as(USER, ['prune', '--all']);
    expect(r.exitCode, r.stderr).toBe(0);
    const dirs = ['trash', 'rootfs', 'tmp'].map((d) => path.join(work, `store-${USER}`, d)).filter((d) => existsSync(d));
    expect(dirs.length).toBeGreaterThan(0);
    const left = execFileSync('find', [...dirs, '-mindepth', '1', '-maxdepth', '1'], { encoding: 'utf8' }).trim();
    expect(left).toBe('');
  });
});
