/**
 * The isolation for where no namespace and no mount can be made: an unprivileged container
 * (docker run or a Kubernetes pod with the default seccomp profile, no --privileged), kaniko's
 * case. The RUN is chroot(2)ed into the rootfs as root (nsenter --root, entering no namespace),
 * with the capability bounding set cut to
 * Docker's default (setpriv), the container's network and processes shared. Nothing is mounted:
 * resolv.conf and hosts are copied in where the image has none, and removed after; the default
 * devices are made with mknod in /dev and removed after. Processes the RUN leaves behind are
 * found by their root directory and killed when it ends, as a PID namespace would.
 *
 * What it does not give (docs/security.md): its own PID, network, IPC or UTS namespace, a
 * seccomp filter of its own (the container's applies), /proc and /sys inside the RUN.
 */
import { existsSync } from 'node:fs';
import { copyFile, lstat, rm, utimes } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { childProcess } from '../support/process.js';
import { attachWith, launch } from './launch.js';
import { killRootedIn } from '../rootfs/processes.js';
import { ensureSystemDirs, makeWorkdir, prepareEtcPoints, writePipes } from './prepare.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import type { RunSpec } from './types.js';
import { DEFAULT_CAPABILITIES } from './spec.js';

const SETPRIV = '/usr/bin/setpriv';
const NSENTER = '/usr/bin/nsenter';
const PRLIMIT = '/usr/bin/prlimit';
const MKNOD = ['/usr/bin/mknod', '/bin/mknod'];

/** The devices of a container's /dev (name, major, minor). */
const DEVICES: [string, number, number][] = [
  ['null', 1, 3],
  ['zero', 1, 5],
  ['full', 1, 7],
  ['random', 1, 8],
  ['urandom', 1, 9],
  ['tty', 5, 0],
];

export interface ChrootRun extends RunSpec {
  cwd: string;
  /** rootfs path → the file to put there for the run (etc/hosts, etc/resolv.conf). */
  etc: Map<string, string>;
}

export async function runChroot(run: ChrootRun): Promise<number> {
  if (!existsSync(SETPRIV) || !existsSync(NSENTER)) throw new SandboxError('SANDBOX_MISSING', 'the chroot isolation needs setpriv and nsenter from util-linux');
  if ((run.mounts ?? []).length > 0) {
    throw new SandboxError('SANDBOX_MOUNT', 'RUN --mount needs mounts, which the chroot isolation cannot make (it is for containers without privileges); use --isolation oci where namespaces are allowed');
  }
  if (run.shmSize !== undefined) {
    throw new SandboxError('SANDBOX_MOUNT', '--shm-size sizes the /dev/shm a RUN mounts, which the chroot isolation cannot mount; use --isolation oci where namespaces are allowed');
  }
  if (run.ulimits?.length && !existsSync(PRLIMIT)) throw new SandboxError('SANDBOX_MISSING', '--ulimit in the chroot isolation needs prlimit from util-linux');
  const undo: (() => Promise<void>)[] = [];
  try {
    await placeEtcFiles(run, undo);
    await makeDevices(run.rootfs, undo);
    if (run.pipes?.length) await placePipes(run, undo);
    await makeWorkdir(run.rootfs, run.cwd);
    // The working directory as a host path, resolved inside the root (nsenter enters it before the chroot).
    const hostCwd = (await resolveInRoot(run.rootfs, run.cwd).catch(() => undefined))?.host ?? run.rootfs;
    return await runChrooted(run, hostCwd);
  } finally {
    killRootedIn(run.rootfs);
    for (const u of undo.reverse()) await u().catch(() => undefined);
  }
}

/**
 * Copy the run's resolv.conf and hosts in where the image has none; removed after. The image's
 * own are used as they are: replacing one would change it (its ctime at least), and the layer
 * would carry it.
 */
async function placeEtcFiles(run: ChrootRun, undo: (() => Promise<void>)[]): Promise<void> {
  const points = await prepareEtcPoints(run.rootfs, [...run.etc.keys()]);
  for (const p of points.created) undo.push(() => rm(p, { recursive: true, force: true }));
  for (const target of points.made) await copyFile(run.etc.get(target) as string, path.join(run.rootfs, target));
}

/** The run's /dev/pipes files, in the rootfs's /dev (made by makeDevices), removed after. */
async function placePipes(run: ChrootRun, undo: (() => Promise<void>)[]): Promise<void> {
  // /dev is a directory of the rootfs here (makeDevices made it, or the image has it): a symlink would lead out of it.
  const dev = await lstat(path.join(run.rootfs, 'dev')).catch(() => undefined);
  if (!dev?.isDirectory()) throw new SandboxError('SANDBOX_PIPE', "the image's /dev is not a directory: a here-document run as a program cannot be put there");
  const dir = path.join(run.rootfs, 'dev', 'pipes');
  const st = await lstat(dir).catch(() => undefined);
  if (st) throw new SandboxError('SANDBOX_PIPE', 'the image has a /dev/pipes of its own: a here-document run as a program cannot be put there by the chroot isolation');
  undo.push(() => rm(dir, { recursive: true, force: true }));
  await writePipes(run.pipes ?? [], dir);
}

/**
 * The default devices, made in the rootfs's /dev for the run and removed after (with /dev's times
 * put back). /dev, /proc and /sys are made where missing and stay, as a container runtime leaves
 * its mount points in BuildKit 28: both isolations give the same layer.
 */
async function makeDevices(rootfs: string, undo: (() => Promise<void>)[]): Promise<void> {
  await ensureSystemDirs(rootfs);
  const dev = path.join(rootfs, 'dev');
  const times = await lstat(dev);
  undo.push(() => utimes(dev, times.atime, times.mtime));
  const mknod = MKNOD.find((m) => existsSync(m));
  if (!mknod) return;
  for (const [name, major, minor] of DEVICES) {
    const p = path.join(dev, name);
    if (await lstat(p).catch(() => undefined)) continue;
    const ok = await new Promise<boolean>((resolve) => {
      const c = childProcess().spawn(mknod, ['-m', '666', p, 'c', String(major), String(minor)], { stdio: 'ignore' });
      c.on('error', () => resolve(false));
      c.on('close', (code) => resolve(code === 0));
    });
    if (ok) undo.push(() => rm(p, { force: true }));
  }
}

function runChrooted(run: ChrootRun, hostCwd: string): Promise<number> {
  const bounding = ['-all', ...DEFAULT_CAPABILITIES.map((c) => `+${c.slice(4).toLowerCase()}`)].join(',');
  const env: NodeJS.ProcessEnv = {};
  for (const kv of run.env) {
    const eq = kv.indexOf('=');
    env[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? '' : kv.slice(eq + 1);
  }
  // Limits set on the way in (prlimit, then exec), inherited by everything the RUN starts.
  const limits = (run.ulimits ?? []).map((u) => `--${u.name}=${u.soft < 0 ? 'unlimited' : u.soft}:${u.hard < 0 ? 'unlimited' : u.hard}`);
  return launch({
    argv: [
      ...(limits.length ? [PRLIMIT, ...limits, '--'] : []),
      SETPRIV,
      '--pdeathsig', 'KILL',
      '--bounding-set', bounding,
      '--inh-caps', '-all',
      '--',
      // nsenter with no namespace to enter: chroot(2) and chdir, then the user (util-linux's
      // unshare would call unshare(2) even with no namespace, which Docker's seccomp refuses).
      NSENTER, `--root=${run.rootfs}`, `--wd=${hostCwd}`,
      ...(run.uid !== 0 || run.gid !== 0 ? ['--setgid', String(run.gid), '--setuid', String(run.uid)] : []),
      '--',
      ...run.argv,
    ],
    env,
    ...(run.onStdout ? { onStdout: run.onStdout } : {}),
    ...(run.onStderr ? { onStderr: run.onStderr } : {}),
    // With -t, script(1) makes the command a terminal (no runtime here to make one).
    ...(run.attach ? { attach: attachWith(run.attach, 'script') } : {}),
    ...(run.signal ? { signal: run.signal } : {}),
    onAbort: () => killRootedIn(run.rootfs),
  });
}
