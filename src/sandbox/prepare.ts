/** What the rootfs needs before a RUN: mount points and the working directory, made inside the root. */
import { chmod, lstat, mkdir, readdir, rm, rmdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import type { RunSpec, SandboxMount } from './types.js';

export interface EtcPoints {
  /** Everything made in the rootfs (files, an /etc directory), to remove after the run, deepest last. */
  created: string[];
  /** The targets made for the run (empty files). */
  made: string[];
  /** The targets the image has as plain files. */
  existing: string[];
}

/**
 * The places of the run's /etc files (etc/hosts, etc/resolv.conf) in the rootfs: a plain file
 * of the image is used where it is; a missing one is made (with /etc when that is missing); a
 * link or anything else, or an /etc that is not a directory, is left alone, never written
 * through. Both isolations start from this: oci mounts over made and existing ones, chroot
 * copies into the made ones.
 */
export async function prepareEtcPoints(rootfs: string, files: string[]): Promise<EtcPoints> {
  const out: EtcPoints = { created: [], made: [], existing: [] };
  for (const f of files) {
    const target = path.join(rootfs, f);
    const st = await lstat(target).catch(() => undefined);
    if (st) {
      if (st.isFile()) out.existing.push(f);
      continue;
    }
    const dir = path.dirname(target);
    const dst = await lstat(dir).catch(() => undefined);
    if (!dst) {
      await mkdir(dir, { recursive: true, mode: 0o755 });
      out.created.push(dir);
    } else if (!dst.isDirectory()) continue;
    await writeFile(target, '', { flag: 'wx', mode: 0o644 });
    out.created.push(target);
    out.made.push(f);
  }
  return out;
}

/**
 * Make the mount point of an extra mount (a directory, or an empty file for a file bind) and the
 * parents it lacks. Returns what was made, outermost first, for removeStubs after the run.
 */
export async function prepareTarget(rootfs: string, m: SandboxMount): Promise<string[]> {
  const parts = m.target.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} climbs out of the root`);
  // /proc is the kernel's view of the RUN's processes: runc refuses mounts inside it (BuildKit's
  // RUN fails there), and so does gantry, whatever the runtime.
  if (parts[0] === 'proc') throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} is inside /proc, where nothing may be mounted`);
  let cur = rootfs;
  const made: string[] = [];
  // A file, a socket (an ssh agent's): mounted on an empty file; a directory on a directory.
  const fileTarget = m.type === 'bind' && !(await lstat(m.source)).isDirectory();
  for (const [i, part] of parts.entries()) {
    cur = path.join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} goes through a symbolic link`);
    if (st) continue;
    if (i === parts.length - 1 && fileTarget) {
      await writeFile(cur, '', { flag: 'wx' });
      made.push(cur);
      break;
    }
    await mkdir(cur);
    await chmod(cur, 0o755); // whatever the umask: runc makes them 0755
    made.push(cur);
  }
  return made;
}

/**
 * After the run, remove the mount points made for it, deepest first, as BuildKit 28 removes its
 * mount stubs: each only while it is still an empty directory or an empty file, and the times of
 * its parent kept as they are when it goes.
 */
export async function removeStubs(made: string[]): Promise<void> {
  for (const p of [...made].reverse()) {
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.isDirectory() ? (await readdir(p)).length > 0 : !st.isFile() || st.size > 0) continue;
    const parent = await stat(path.dirname(p)).catch(() => undefined);
    await (st.isDirectory() ? rmdir(p) : rm(p)).catch(() => undefined);
    if (parent) await utimes(path.dirname(p), parent.atime, parent.mtime).catch(() => undefined);
  }
}

/**
 * Make the working directory when it is missing, resolved inside the rootfs: a link in the
 * image (`/work -> /home/someone`) must lead to the rootfs's /home/someone, never the host's.
 */
export async function makeWorkdir(rootfs: string, cwd: string): Promise<void> {
  const resolved = await resolveInRoot(rootfs, cwd).catch(() => undefined);
  if (resolved) await mkdir(resolved.host, { recursive: true }).catch(() => undefined);
}

/**
 * The directories the runtime mounts over (/proc, /dev, /sys) must be plain directories of the
 * rootfs: the runtime makes files under /dev (fd, stdin, ptmx links) through the path, and an
 * image whose /dev is a link to a host path would have them made on the host. Missing ones are
 * made (0755) and stay, in the layer too, as they stay in BuildKit 28's.
 */
export async function ensureSystemDirs(rootfs: string): Promise<void> {
  for (const dir of ['proc', 'dev', 'sys']) {
    const p = path.join(rootfs, dir);
    const st = await lstat(p).catch(() => undefined);
    if (!st) {
      await mkdir(p, { mode: 0o755 });
      await chmod(p, 0o755);
    } else if (!st.isDirectory()) {
      throw new SandboxError('SANDBOX_ROOTFS', `the image's /${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}: RUN cannot mount its /${dir} there`);
    }
  }
}

/** The run's /dev/pipes files, written in `dir` (made here). */
export async function writePipes(pipes: NonNullable<RunSpec['pipes']>, dir: string): Promise<string> {
  await mkdir(dir, { mode: 0o755 });
  await chmod(dir, 0o755);
  for (const p of pipes) {
    if (!/^[^/\0]+$/.test(p.name) || p.name === '.' || p.name === '..') throw new SandboxError('SANDBOX_PIPE', `invalid here-document name ${JSON.stringify(p.name)}`);
    const file = path.join(dir, p.name);
    await writeFile(file, p.content, { mode: p.mode, flag: 'wx' });
    await chmod(file, p.mode);
  }
  return dir;
}
