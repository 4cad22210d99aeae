import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { writeTree } from '../helpers/files.js';
import { oracleEnv } from '../helpers/oracle.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// gantry inside an unprivileged container (issue 19, point 4), kaniko's case: the image of
// examples/gantry-image, built by gantry, run by Docker 28.5 (buildkit-oracle.sh) without
// --privileged, with Docker's default seccomp profile. As root it builds FROM scratch, FROM
// busybox with RUN, USER and chown, and FROM Debian with apt-get, in the chroot isolation, owners
// kept; as --user 1000 (no user namespace can be made there) it says why it cannot build.

const bin = path.join(projectRoot, 'bin', 'gantry');
const script = path.join(projectRoot, '..', 'shared', 'tools', 'buildkit-oracle.sh');
const work = mkdtempSync('/tmp/gantry-unpriv-');
const store = path.join(work, 'store');
// The engine runs in a chroot with a /tmp of its own: what containers mount must be inside the
// chroot (host path), where the engine sees it under another name (engine path).
const chroot = path.join(process.env.ORACLE_MODERN_DIR ?? '/var/tmp/oracle-modern', 'root');
const engineDir = `/var/tmp/gantry-unpriv-${process.pid}-${Date.now()}`;
const hostDir = path.join(chroot, engineDir);
const image = 'gantry-image:test';
let env: NodeJS.ProcessEnv | undefined;
let debian: string | undefined;
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(hostDir, { recursive: true, force: true });
});

const g = (args: string[]) => execa(bin, ['--root', store, ...args], { reject: false, timeout: 900_000 });

beforeAll(async () => {
  if (!existsSync(script)) {
    if (process.env.CI === 'true') throw new Error(`${script} is missing: the unprivileged-container tests need it`);
    return;
  }
  debian = debianBaseTarball();
  if (!debian) return;
  const e = oracleEnv(script);
  // The gantry image, built by gantry (as root, with RUN in its OCI sandbox), then loaded into the engine.
  const imp = await g(['import', debian, 'debian:unpriv', '-c', `ENV ${DEBIAN_PATH}`]);
  expect(imp.exitCode, imp.stderr).toBe(0);
  const ctx = execFileSync(path.join(projectRoot, 'examples', 'gantry-image', 'make-context.sh'), [path.join(work, 'image-ctx')], { encoding: 'utf8' }).trim();
  const built = await g(['build', '--progress', 'plain', '--build-arg', 'BASE=debian:unpriv', '-t', image, ctx]);
  expect(built.exitCode, built.stderr).toBe(0);
  const tar = path.join(work, 'gantry-image.tar');
  expect((await g(['save', image, '-o', tar])).exitCode).toBe(0);
  const load = await execa('docker', ['load', '-i', tar], { env: e, reject: false });
  expect(load.exitCode, load.stderr).toBe(0);
  env = e;
  // What the containers read: the bases and the contexts.
  const shared = path.join(hostDir, 'shared');
  mkdirSync(shared, { recursive: true });
  tarDir(makeBusyboxRootfs(path.join(work, 'bb-rootfs')), path.join(shared, 'bb.tgz'));
  execFileSync('cp', [debian, path.join(shared, 'debian.tar')]);
  writeTree(path.join(shared, 'scratch'), { Dockerfile: 'FROM scratch\nCOPY --chown=1000:1000 mine /mine\nCOPY rootfile /rootfile\n', mine: 'mine\n', rootfile: 'root\n' });
  writeTree(path.join(shared, 'busybox'), {
    Dockerfile: [
      'FROM bb:1',
      'RUN echo hi > /root-file && busybox mkdir -p /app && busybox chown 1000:1000 /app',
      'USER 1000:1000',
      'RUN echo mine > /app/mine && busybox id -u > /app/uid',
    ].join('\n'),
  });
  writeTree(path.join(shared, 'debian'), { Dockerfile: 'FROM debian:x\nRUN apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello > /hello.out\n' });
  execFileSync('chmod', ['-R', 'a+rX', hostDir]);
}, 30 * 60_000);

/** Run a shell script in the gantry image, without privileges; /shared read-only, /out writable. */
async function inContainer(scriptText: string, user?: string) {
  const name = `out-${Math.random().toString(36).slice(2)}`;
  const out = path.join(hostDir, name);
  mkdirSync(out);
  chmodSync(out, 0o777);
  const r = await execa(
    'docker',
    ['run', '--rm', '--network', 'host', ...(user ? ['--user', user] : []), '-v', `${engineDir}/shared:/shared:ro`, '-v', `${engineDir}/${name}:/out`, '--entrypoint', 'sh', image, '-c', scriptText],
    { env, reject: false, timeout: 900_000 },
  );
  return { ...r, out };
}

/** `tar tv` lines (numeric owners) of every layer of a docker-archive. */
function layers(archive: string): string[] {
  const dir = `${archive}.d`;
  mkdirSync(dir);
  execFileSync('tar', ['xf', archive, '-C', dir]);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))[0] as { Layers: string[] };
  return manifest.Layers.flatMap((l) => execFileSync('tar', ['--numeric-owner', '-tvf', path.join(dir, l)], { encoding: 'utf8' }).trim().split('\n'));
}

const entry = (lines: string[], name: string) => lines.find((l) => l.endsWith(` ${name}`)) ?? `(no ${name})`;

describe('gantry in docker run without --privileged', () => {
  test('as root: FROM scratch with COPY --chown', async () => {
    if (!env) return;
    const r = await inContainer('gantry build -o type=docker,dest=/out/img.tar /shared/scratch');
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = layers(path.join(r.out, 'img.tar'));
    expect(entry(lines, 'mine')).toMatch(/^-rw-r--r-- 1000\/1000 /);
    expect(entry(lines, 'rootfile')).toMatch(/^-rw-r--r-- 0\/0 /);
  });

  test('as root: FROM busybox with RUN, USER and chown, in the chroot isolation (said so), owners kept', async () => {
    if (!env) return;
    const r = await inContainer('gantry import /shared/bb.tgz bb:1 -c "ENV PATH=/bin" && gantry build --progress plain -o type=docker,dest=/out/img.tar /shared/busybox');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('notice: RUN uses the chroot isolation (namespaces cannot be made here');
    const lines = layers(path.join(r.out, 'img.tar'));
    expect(entry(lines, 'root-file')).toMatch(/^-rw-r--r-- 0\/0 /);
    expect(entry(lines, 'app/')).toMatch(/^drwxr-xr-x 1000\/1000 /);
    expect(entry(lines, 'app/mine')).toMatch(/^-rw-r--r-- 1000\/1000 /);
    // What the chroot isolation leaves is what a container runtime leaves in BuildKit 28: the
    // empty /dev, /proc and /sys of a base that had none; no device node and no /etc file it made.
    const systemDirs = lines.filter((l) => / (dev|proc|sys)\/$/.test(l));
    expect(new Set(systemDirs.map((l) => l.split(/\s+/).at(-1)))).toEqual(new Set(['dev/', 'proc/', 'sys/']));
    for (const l of systemDirs) expect(l).toMatch(/^drwxr-xr-x 0\/0 /);
    expect(lines.filter((l) => / (dev|proc|sys)\/.+$/.test(l) || / etc\/(hosts|resolv\.conf)$/.test(l))).toEqual([]);
  });

  test('as root: FROM Debian with apt-get install', async () => {
    if (!env) return;
    const r = await inContainer('gantry import /shared/debian.tar debian:x -c "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" && gantry build --progress plain -t hello:1 /shared/debian && gantry save hello:1 -o /out/img.tar');
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = layers(path.join(r.out, 'img.tar'));
    expect(entry(lines, 'usr/bin/hello')).toMatch(/^-rwxr-xr-x 0\/0 /);
    const dir = `${path.join(r.out, 'img.tar')}.d`;
    const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))[0] as { Layers: string[] };
    const last = manifest.Layers[manifest.Layers.length - 1] as string;
    expect(execFileSync('tar', ['xOf', path.join(dir, last), 'hello.out'], { encoding: 'utf8' })).toBe('Hello, world!\n');
  }, 600_000);

  test('as --user 1000: no user namespace can be made there, and gantry says so (exit 1, no image, no stack trace)', async () => {
    if (!env) return;
    const r = await inContainer('gantry --root /tmp/store build /shared/scratch', '1000');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/subordinate|user namespace/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
  });
});
