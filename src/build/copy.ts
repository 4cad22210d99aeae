/**
 * COPY and ADD into a rootfs: Docker's destination rules, directory contents copied,
 * symlinks kept as symlinks, hard links kept, modes and times preserved, owners set
 * (0:0 from the context, kept from another stage, or --chown), every destination path
 * resolved inside the rootfs (so `/var/run -> /run` lands in /run, never on the host).
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, chown, copyFile, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { GantryError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import { readXattrs, writeXattrs } from '../rootfs/xattr.js';
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

/** File operations in flight at once: enough to keep the disk and the thread pool busy. */
const FILE_CONCURRENCY = 16;

/**
 * Copy `items` to `dest` (absolute container path; a trailing `/` means a directory). A
 * file's capabilities (security.capability) come along, as with BuildKit's copy.
 */
export async function copyInto(rootfs: string, items: SourceItem[], dest: string, options: CopyOptions): Promise<void> {
  const copied = new Map<string, string>();
  await copyItems(rootfs, items, dest, options, copied);
  const caps = await readXattrs([...copied.keys()]);
  await writeXattrs(new Map([...caps].map(([src, x]) => [copied.get(src) as string, x])));
}

/** The copy itself; `copied` gets source → destination of every regular file written. */
async function copyItems(rootfs: string, items: SourceItem[], dest: string, options: CopyOptions, copied: Map<string, string>): Promise<void> {
  const destIsDir = dest.endsWith('/') || items.length > 1 || items.some((i) => i.isDir);
  /** The first copy of each multiply-linked source inode: later names become hard links to it. */
  const inodes = new Map<string, Promise<string>>();
  const limit = pLimit(FILE_CONCURRENCY);
  const copyChildren = async (srcDir: string, destDir: string, rel: string): Promise<void> => {
    const names = (await readdir(srcDir)).sort();
    await Promise.all(
      names.map((n) => {
        const childRel = rel ? `${rel}/${n}` : n;
        return options.ignore(childRel) ? undefined : copyEntry(path.join(srcDir, n), path.join(destDir, n), childRel);
      }),
    );
  };
  const copyEntry = async (srcHost: string, destHost: string, rel: string): Promise<void> => {
    const st = await lstat(srcHost);
    const owner = options.owner ?? { uid: st.uid, gid: st.gid };
    if (st.isDirectory()) {
      const existing = await lstat(destHost).catch(() => undefined);
      if (existing && !existing.isDirectory()) await rm(destHost, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) await mkdir(destHost);
      await copyChildren(srcHost, destHost, rel);
      await chown(destHost, owner.uid, owner.gid).catch(() => undefined);
      await chmod(destHost, options.mode ?? st.mode & 0o7777);
      await lutimes(destHost, st.atime, st.mtime);
      return;
    }
    if (!st.isFile() && !st.isSymbolicLink()) return; // devices, fifos, sockets are not copied from a context
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 && st.isFile() ? inodes.get(key) : undefined;
    let done: (p: string) => void = () => undefined;
    if (st.nlink > 1 && st.isFile() && !first) inodes.set(key, new Promise<string>((resolve) => (done = resolve)));
    await limit(async () => {
      const existing = await lstat(destHost).catch(() => undefined);
      if (existing) await rm(destHost, { recursive: true, force: true });
      if (first) {
        await link(await first, destHost);
        return;
      }
      if (st.isSymbolicLink()) {
        await symlink(await readlink(srcHost), destHost);
        await lchown(destHost, owner.uid, owner.gid).catch(() => undefined);
        await lutimes(destHost, st.atime, st.mtime);
        return;
      }
      // copyFile lets the kernel copy (copy_file_range, reflinks where the filesystem has them).
      await copyFile(srcHost, destHost, fsConstants.COPYFILE_EXCL);
      copied.set(path.resolve(srcHost), destHost);
      await chown(destHost, owner.uid, owner.gid).catch(() => undefined);
      await chmod(destHost, options.mode ?? st.mode & 0o7777); // after chown, which clears setuid bits
      await lutimes(destHost, st.atime, st.mtime);
    }).finally(() => done(destHost));
  };

  if (destIsDir) {
    const dirHost = await ensureDir(rootfs, dest, options.owner);
    for (const item of items) {
      if (item.isDir) {
        // A directory's contents are copied, not the directory itself.
        await copyChildren(item.host, dirHost, item.rel);
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
