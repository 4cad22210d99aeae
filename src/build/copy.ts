/**
 * COPY and ADD into a rootfs: Docker's destination rules, directory contents copied,
 * symlinks kept as symlinks, hard links kept, modes and times preserved, owners set
 * (0:0 from the context, kept from another stage, or --chown), every destination path
 * resolved inside the rootfs (so `/var/run -> /run` lands in /run, never on the host).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, chown, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { GantryError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import type { IgnoreFilter, SourceItem } from './context.js';

export interface CopyOptions {
  /** Owner for everything copied; undefined keeps the source's (used for --from). */
  owner?: { uid: number; gid: number };
  /** An octal mode for every file and directory copied. */
  mode?: number;
  ignore: IgnoreFilter;
  what: string;
}

async function ensureDir(rootfs: string, containerDir: string, owner?: { uid: number; gid: number }): Promise<string> {
  const { host } = await resolveInRoot(rootfs, containerDir);
  const st = await lstat(host).catch(() => undefined);
  if (st && !st.isDirectory()) throw new GantryError('COPY_NOT_DIR', `cannot copy into ${containerDir}: it is not a directory`);
  if (!st) {
    await mkdir(host, { recursive: true, mode: 0o755 });
    if (owner) await chown(host, owner.uid, owner.gid).catch(() => undefined);
  }
  return host;
}

/** Copy `items` to `dest` (absolute container path; a trailing `/` means a directory). */
export async function copyInto(rootfs: string, items: SourceItem[], dest: string, options: CopyOptions): Promise<void> {
  const destIsDir = dest.endsWith('/') || items.length > 1 || items.some((i) => i.isDir);
  const inodes = new Map<string, string>();
  const copyEntry = async (srcHost: string, destHost: string, rel: string): Promise<void> => {
    const st = await lstat(srcHost);
    const existing = await lstat(destHost).catch(() => undefined);
    const owner = options.owner ?? { uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      if (existing && !existing.isDirectory()) await rm(destHost, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(destHost);
      for (const n of (await readdir(srcHost)).sort()) {
        const childRel = rel ? `${rel}/${n}` : n;
        if (options.ignore(childRel)) continue;
        await copyEntry(path.join(srcHost, n), path.join(destHost, n), childRel);
      }
      await chown(destHost, owner.uid, owner.gid).catch(() => undefined);
      await chmod(destHost, options.mode ?? st.mode & 0o7777);
      await lutimes(destHost, st.atime, st.mtime);
      return;
    }
    if (existing) await rm(destHost, { recursive: true, force: true });
    if (st.isSymbolicLink()) {
      await symlink(await readlink(srcHost), destHost);
      await lchown(destHost, owner.uid, owner.gid).catch(() => undefined);
      await lutimes(destHost, st.atime, st.mtime);
      return;
    }
    if (!st.isFile()) return; // devices, fifos, sockets are not copied from a context
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? inodes.get(key) : undefined;
    if (first) {
      await link(first, destHost);
      return;
    }
    await pipeline(createReadStream(srcHost), createWriteStream(destHost, { flags: 'wx', mode: 0o600 }));
    await chown(destHost, owner.uid, owner.gid).catch(() => undefined);
    await chmod(destHost, options.mode ?? st.mode & 0o7777);
    await lutimes(destHost, st.atime, st.mtime);
    if (st.nlink > 1) inodes.set(key, destHost);
  };

  if (destIsDir) {
    const dirHost = await ensureDir(rootfs, dest, options.owner);
    for (const item of items) {
      if (item.isDir) {
        // A directory's contents are copied, not the directory itself.
        for (const n of (await readdir(item.host)).sort()) {
          const childRel = item.rel ? `${item.rel}/${n}` : n;
          if (options.ignore(childRel)) continue;
          await copyEntry(path.join(item.host, n), path.join(dirHost, n), childRel);
        }
      } else {
        await copyEntry(item.host, path.join(dirHost, item.name), item.rel);
      }
    }
    return;
  }
  const item = items[0];
  if (!item) throw new GantryError('COPY_NO_SOURCE', `${options.what}: nothing to copy`);
  // One file to a path: into it when it is an existing directory, else to that name.
  const { host } = await resolveInRoot(rootfs, dest);
  const st = await lstat(host).catch(() => undefined);
  if (st?.isDirectory()) {
    await copyEntry(item.host, path.join(host, item.name), item.rel);
    return;
  }
  await ensureDir(rootfs, path.posix.dirname(dest), options.owner);
  const parent = await resolveInRoot(rootfs, path.posix.dirname(dest));
  await copyEntry(item.host, path.join(parent.host, path.posix.basename(dest)), item.rel);
}
