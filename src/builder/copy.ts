/**
 * COPY and ADD into a rootfs: Docker's destination rules, directory contents copied,
 * symlinks kept as symlinks, hard links kept, modes and times preserved, owners set
 * (0:0 from the context, kept from another stage, or --chown), every destination path
 * resolved inside the rootfs (so `/var/run -> /run` lands in /run, never on the host).
 */
import {
  chmodSync,
  chownSync,
  constants as fsConstants,
  copyFileSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { chmod, chown, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ModeChange } from '../dockerfile/chmod.js';
import { GantryError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import { readXattrs, writeXattrs } from '../rootfs/xattr.js';
import type { IgnoreFilter, SourceItem } from './context.js';
import type { StatCache } from './statcache.js';

export interface CopyOptions {
  /** Owner for everything copied; undefined keeps the source's (used for --from). */
  owner?: { uid: number; gid: number };
  /** The mode of every file and directory copied, from its own (`--chmod`: src/dockerfile/chmod.ts). */
  mode?: ModeChange;
  ignore: IgnoreFilter;
  what: string;
  /** The context's stat cache, for a copy from the context: the sources' capabilities known there are not read again. */
  stats?: StatCache;
  /** A source file's capabilities where the caller knows them (an empty map: none), else undefined. */
  knownXattrs?: (src: string) => Map<string, Buffer> | undefined;
}

/**
 * The directory `containerDir` of the rootfs, made with its missing parents when absent. As in
 * BuildKit, each directory made gets the copy's owner, and its octal `--chmod` (else 0755).
 */
export async function ensureDir(rootfs: string, containerDir: string, owner?: { uid: number; gid: number }, mode = 0o755): Promise<{ host: string; made: boolean }> {
  const { host } = await resolveInRoot(rootfs, containerDir);
  const st = await lstat(host).catch(() => undefined);
  if (st && !st.isDirectory()) throw new GantryError('COPY_NOT_DIR', `${containerDir} is not a directory`);
  if (st) return { host, made: false };
  // The levels that are missing, outermost first (each resolved inside the root: a symlink on the way stays inside).
  const missing: string[] = [];
  for (let dir = path.posix.resolve('/', containerDir); dir !== '/'; dir = path.posix.dirname(dir)) {
    const level = await resolveInRoot(rootfs, dir);
    const found = await lstat(level.host).catch(() => undefined);
    if (found) {
      if (!found.isDirectory()) throw new GantryError('COPY_NOT_DIR', `${containerDir}: ${dir} is not a directory`);
      break;
    }
    missing.unshift(dir);
  }
  for (const dir of missing) {
    const level = await resolveInRoot(rootfs, dir);
    // A level can be a symlink to where nothing is yet (`/symlink -> ../tmp/target` in an
    // empty image): what it points to is made with its parents, as BuildKit's MkdirAll does.
    const first = await mkdir(level.host, { recursive: true, mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
      // A link on the way that leads to a file (`/link -> /etc/hostname/sub`).
      if (err.code === 'ENOTDIR' || err.code === 'EEXIST') throw new GantryError('COPY_NOT_DIR', `cannot make ${containerDir}: ${dir} leads through a file`);
      throw err;
    });
    if (first === undefined) continue;
    for (let made = level.host; ; made = path.dirname(made)) {
      if (owner) await chown(made, owner.uid, owner.gid).catch(() => undefined);
      await chmod(made, mode);
      if (made === first || made.length <= rootfs.length) break;
    }
  }
  return { host, made: true };
}

/**
 * Copy `items` to `dest` (absolute container path; a trailing `/` means a directory). A
 * file's capabilities (security.capability) come along, as with BuildKit's copy; how many
 * source files had any is returned (none: the copy made no file that has them, since every
 * file it writes is new and a directory cannot hold them).
 */
export async function copyInto(rootfs: string, items: SourceItem[], dest: string, options: CopyOptions): Promise<{ capabilities: number }> {
  const copied = new Map<string, Copied>();
  await copyItems(rootfs, items, dest, options, copied);
  const caps = await sourceXattrs(copied, options.stats, options.knownXattrs);
  await writeXattrs(new Map([...caps].map(([src, x]) => [(copied.get(src) as Copied).dest, x])));
  return { capabilities: caps.size };
}

/** A regular file copied: where it went, and the source's stats. */
interface Copied {
  dest: string;
  st: Stats;
}

/**
 * The layer xattrs of the copied source files that have any: from the stat cache where it
 * knows them (an unchanged context file) or from what the caller knows, the rest read with
 * getfattr and then remembered in the stat cache.
 */
async function sourceXattrs(
  copied: ReadonlyMap<string, Copied>,
  stats: StatCache | undefined,
  knownXattrs: CopyOptions['knownXattrs'],
): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  const unknown: string[] = [];
  for (const [src, { st }] of copied) {
    const known = stats?.xattrs(src, st) ?? knownXattrs?.(src);
    if (known === undefined) unknown.push(src);
    else if (known.size > 0) out.set(src, known);
  }
  const read = await readXattrs(unknown);
  for (const src of unknown) {
    const found = read.get(src);
    if (found) out.set(src, found);
    stats?.recordXattrs(src, (copied.get(src) as Copied).st, found ?? new Map());
  }
  return out;
}

/**
 * The copy itself; `copied` gets source → destination of every regular file written. The
 * per-entry calls are synchronous, like layer apply's: each is microseconds, where a
 * thread-pool round trip for each of the six calls per file is not (a 5,000-file copy: 0.33 s
 * synchronous with the disk idle; on this project's bench machine the disk, not the calls,
 * sets the time of a COPY).
 */
async function copyItems(rootfs: string, items: SourceItem[], dest: string, options: CopyOptions, copied: Map<string, Copied>): Promise<void> {
  const destIsDir = dest.endsWith('/') || items.length > 1 || items.some((i) => i.isDir);
  /** The first copy of each multiply-linked source inode: later names become hard links to it. */
  const inodes = new Map<string, string>();
  const copyChildren = (srcDir: string, destDir: string, rel: string, item: string): void => {
    for (const n of readdirSync(srcDir).sort()) {
      const childRel = rel ? `${rel}/${n}` : n;
      if (!options.ignore(childRel, item)) copyEntry(path.join(srcDir, n), path.join(destDir, n), childRel, item);
    }
  };
  const copyEntry = (srcHost: string, destHost: string, rel: string, item: string): void => {
    const st = lstatSync(srcHost);
    const owner = options.owner ?? { uid: st.uid, gid: st.gid };
    const existing = lstatSync(destHost, { throwIfNoEntry: false });
    if (st.isDirectory()) {
      if (existing && !existing.isDirectory()) rmSync(destHost, { recursive: true, force: true });
      if (!existing || !existing.isDirectory()) mkdirSync(destHost);
      copyChildren(srcHost, destHost, rel, item);
      quietly(() => chownSync(destHost, owner.uid, owner.gid));
      chmodSync(destHost, options.mode ? options.mode(st.mode & 0o7777, true) : st.mode & 0o7777);
      lutimesSync(destHost, st.atime, st.mtime);
      return;
    }
    if (st.isSocket()) {
      // BuildKit copies a socket as an empty regular file with its permission bits (dated now).
      if (existing) rmSync(destHost, { recursive: true, force: true });
      writeFileSync(destHost, '', { flag: 'wx' });
      quietly(() => chownSync(destHost, owner.uid, owner.gid));
      chmodSync(destHost, options.mode ? options.mode(st.mode & 0o7777, false) : st.mode & 0o7777);
      return;
    }
    if (!st.isFile() && !st.isSymbolicLink()) return; // devices and fifos are not copied from a context
    if (existing) rmSync(destHost, { recursive: true, force: true });
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 && st.isFile() ? inodes.get(key) : undefined;
    if (first !== undefined) {
      linkSync(first, destHost);
      return;
    }
    if (st.isSymbolicLink()) {
      symlinkSync(readlinkSync(srcHost), destHost);
      quietly(() => lchownSync(destHost, owner.uid, owner.gid));
      lutimesSync(destHost, st.atime, st.mtime);
      return;
    }
    // copyFile lets the kernel copy (copy_file_range, reflinks where the filesystem has them).
    copyFileSync(srcHost, destHost, fsConstants.COPYFILE_EXCL);
    if (st.nlink > 1) inodes.set(key, destHost);
    copied.set(path.resolve(srcHost), { dest: destHost, st });
    quietly(() => chownSync(destHost, owner.uid, owner.gid));
    chmodSync(destHost, options.mode ? options.mode(st.mode & 0o7777, false) : st.mode & 0o7777); // after chown, which clears setuid bits
    lutimesSync(destHost, st.atime, st.mtime);
  };

  if (destIsDir) {
    const { host: dirHost, made } = await ensureDir(rootfs, dest, options.owner, options.mode?.octal);
    for (const item of items) {
      if (item.isDir) {
        // A directory's contents are copied, not the directory itself.
        copyChildren(item.host, dirHost, item.rel, item.rel);
        // A destination made for it is dated as the source directory (BuildKit 28).
        if (made) {
          const st = lstatSync(item.host);
          lutimesSync(dirHost, st.atime, st.mtime);
        }
      } else {
        copyEntry(item.host, path.join(dirHost, item.name), item.rel, item.rel);
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
    copyEntry(item.host, path.join(host, item.name), item.rel, item.rel);
    return;
  }
  await ensureDir(rootfs, path.posix.dirname(dest), options.owner, options.mode?.octal);
  const parent = await resolveInRoot(rootfs, path.posix.dirname(dest));
  copyEntry(item.host, path.join(parent.host, path.posix.basename(dest)), item.rel, item.rel);
}

/** chown where the caller may not have the right (a rootless build): the copy goes on without it. */
function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // not permitted: the owner stays the caller's
  }
}
