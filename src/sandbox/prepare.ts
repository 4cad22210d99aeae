/** What the rootfs needs before a RUN: mount points and the working directory, made inside the root. */
import { chmod, lstat, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import type { SandboxMount } from './types.js';

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
 * Make the mount point of an extra mount (a directory, or a file for a file bind). As in
 * BuildKit, directories made for a mount target stay in the rootfs (and so in the layer: runc
 * leaves them and BuildKit keeps them); an empty file made for a file bind is removed again.
 * Returns what to remove after the run.
 */
export async function prepareTarget(rootfs: string, m: SandboxMount): Promise<string[]> {
  const parts = m.target.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} climbs out of the root`);
  let cur = rootfs;
  const fileTarget = m.type === 'bind' && (await lstat(m.source)).isFile();
  for (const [i, part] of parts.entries()) {
    cur = path.join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} goes through a symbolic link`);
    if (st) continue;
    if (i === parts.length - 1 && fileTarget) {
      await writeFile(cur, '', { flag: 'wx' });
      return [cur];
    }
    await mkdir(cur);
    await chmod(cur, 0o755); // whatever the umask: runc makes them 0755
  }
  return [];
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
 * made for the run and returned, to be removed after it, so a RUN that changes nothing adds no
 * layer (BuildKit 28 keeps them: issue 20 decides against its oracle).
 */
export async function checkSystemDirs(rootfs: string): Promise<string[]> {
  const created: string[] = [];
  for (const dir of ['proc', 'dev', 'sys']) {
    const p = path.join(rootfs, dir);
    const st = await lstat(p).catch(() => undefined);
    if (!st) {
      await mkdir(p, { mode: 0o755 });
      await chmod(p, 0o755);
      created.push(p);
    } else if (!st.isDirectory()) {
      throw new SandboxError('SANDBOX_ROOTFS', `the image's /${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}: RUN cannot mount its /${dir} there`);
    }
  }
  return created;
}
