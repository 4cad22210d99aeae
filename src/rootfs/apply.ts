/**
 * Apply a layer (a tar stream) to a root filesystem directory with full fidelity and no
 * way out: every write, link, chmod and chown goes to a path resolved inside the root at
 * the moment of the operation (resolve.ts). Whiteouts delete from lower layers; an opaque
 * marker hides the lower contents of its directory whatever its position in the layer
 * (OCI image-spec layer.md).
 */
import { chmodSync, chownSync, createWriteStream, lchownSync, lstatSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { chmod, lstat, link, lutimes, mkdir, readdir, rm, chown } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from '../tar/tar.js';
import { ownerOf, xattrsOf } from '../tar/pax.js';
import { ExtractBudget } from '../tar/limit.js';
import { GantryError } from '../errors/index.js';
import { crashPoint, execFileAsync } from '../support/process.js';
import { components, resolveInRoot, RootfsError } from './resolve.js';
import { writeXattrs } from './xattr.js';
import { settings } from '../support/settings.js';

/** Files up to this size are gathered in memory and written in one call. */
const SMALL_FILE = 1 << 20;

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export interface ApplyOptions {
  /** Set owners (needs root or a user namespace); default: when running as root. */
  chown?: boolean;
  /** Shown in errors. */
  what?: string;
  /** Most bytes of tar the layer may expand to (default: the extraction budget, GANTRY_EXTRACT_LIMIT). */
  limit?: number;
  /** Every entry's owner, instead of the archive's (`ADD --chown` of a local archive). */
  owner?: { uid: number; gid: number };
  /**
   * Whether `.wh.` entries remove what they name (a layer: the default) or are files like any
   * other (an archive that is not a layer: ADD's, a context's), as BuildKit unpacks those.
   */
  whiteouts?: boolean;
}

export interface ApplyStats {
  entries: number;
  whiteouts: number;
  /** The bytes of the entries' contents. */
  bytes: number;
}

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/** A clean relative container path of an archive member; `..` anywhere is refused. */
function memberPath(name: string, what: string): string {
  const parts = components(name);
  if (parts.includes('..')) throw new RootfsError('ROOTFS_UNSAFE_PATH', `${what}: member "${name}" climbs out of the root`);
  return parts.join('/');
}

async function removeExisting(host: string): Promise<void> {
  await rm(host, { recursive: true, force: true });
}

export async function applyLayer(root: string, tarStream: Readable, options: ApplyOptions = {}): Promise<ApplyStats> {
  const what = options.what ?? 'layer';
  const doChown = options.chown ?? isRoot();
  const extract = tar.extract();
  /** Container paths this layer created: an opaque marker must not remove them. */
  const created = new Set<string>();
  const opaque: string[] = [];
  const dirTimes: { host: string; mtime: Date }[] = [];
  /** Extended attributes of the layer's files and directories, set once everything is in place. */
  const xattrs = new Map<string, Map<string, Buffer>>();
  const stats: ApplyStats = { entries: 0, whiteouts: 0, bytes: 0 };
  /**
   * Parent directories already resolved and made in this layer (container path → host path):
   * most entries share their parent with the one before. Anything removed may have been, or
   * led through, one of them, so every removal forgets them all.
   */
  const dirs = new Map<string, string>();
  const remove = async (host: string): Promise<void> => {
    dirs.clear();
    await removeExisting(host);
  };
  const parentDir = async (dir: string): Promise<string> => {
    const known = dirs.get(dir);
    if (known !== undefined) return known;
    const { host } = await resolveInRoot(root, dir);
    await mkdir(host, { recursive: true });
    dirs.set(dir, host);
    return host;
  };

  const work = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const rel = memberPath(h.name, what);
      if (rel === '') {
        entry.resume();
        continue;
      }
      const base = path.posix.basename(rel);
      const dir = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
      const layer = options.whiteouts !== false;
      if (layer && base === OPAQUE_MARKER) {
        opaque.push(dir);
        stats.whiteouts++;
        entry.resume();
        continue;
      }
      if (layer && base.startsWith(WHITEOUT_PREFIX)) {
        const name = base.slice(WHITEOUT_PREFIX.length);
        if (name === '' || name === '.' || name === '..' || name.startsWith(WHITEOUT_PREFIX)) {
          throw new RootfsError('ROOTFS_BAD_WHITEOUT', `${what}: invalid whiteout "${h.name}"`);
        }
        // The directory is resolved inside the root; the whiteout removes the entry itself (a link, not its target).
        const parent = await resolveInRoot(root, dir);
        const target = path.join(parent.host, name);
        await remove(target);
        stats.whiteouts++;
        entry.resume();
        continue;
      }
      stats.entries++;
      stats.bytes += h.size ?? 0;
      created.add(rel);
      xattrs.delete(rel); // a later entry of the same name replaces the earlier one
      if ((h.type === 'file' || h.type === 'contiguous-file' || h.type === 'directory') && h.pax) {
        const x = xattrsOf(h.pax as Record<string, string>);
        if (x.size > 0) xattrs.set(rel, x);
      }
      // Parents are resolved (symlinks followed inside the root); the entry itself is not followed.
      const host = path.join(await parentDir(dir), base);
      // The common entries are written with synchronous calls: each is microseconds, where a
      // round trip through the thread pool per call made applying a base layer take seconds.
      const existing = lstatSync(host, { throwIfNoEntry: false });
      const mode = (h.mode ?? 0o644) & 0o7777;
      const { uid, gid } = options.owner ?? ownerOf(h); // PAX records carry the large ids
      const mtime = h.mtime ?? new Date(0);
      switch (h.type) {
        case 'directory': {
          if (existing && !existing.isDirectory()) await remove(host);
          if (!existing || !existing.isDirectory()) mkdirSync(host);
          if (doChown) chownSync(host, uid, gid);
          chmodSync(host, mode);
          dirTimes.push({ host, mtime });
          entry.resume();
          break;
        }
        case 'file':
        case 'contiguous-file': {
          if (existing) await remove(host);
          // 'wx': never follows or overwrites something that appeared in between.
          if ((h.size ?? 0) <= SMALL_FILE) {
            const chunks: Buffer[] = [];
            for await (const c of entry) chunks.push(c as Buffer);
            writeFileSync(host, Buffer.concat(chunks), { flag: 'wx', mode: 0o600 });
          } else {
            await pipeline(entry, createWriteStream(host, { flags: 'wx', mode: 0o600 }));
          }
          if (doChown) chownSync(host, uid, gid);
          chmodSync(host, mode); // after chown, which clears setuid bits
          lutimesSync(host, mtime, mtime);
          break;
        }
        case 'symlink': {
          if (existing) await remove(host);
          symlinkSync(h.linkname ?? '', host); // stored verbatim, resolved inside the root when used
          if (doChown) lchownSync(host, uid, gid);
          lutimesSync(host, mtime, mtime);
          entry.resume();
          break;
        }
        case 'link': {
          const targetRel = memberPath(h.linkname ?? '', what);
          // The link target is an entry of the image: resolve its parents inside the root, not the link itself.
          const tparent = await resolveInRoot(root, path.posix.dirname(targetRel));
          const targetHost = path.join(tparent.host, path.posix.basename(targetRel));
          const tst = await lstat(targetHost).catch(() => undefined);
          if (!tst) throw new RootfsError('ROOTFS_BAD_LINK', `${what}: hard link "${h.name}" to missing "${h.linkname}"`);
          if (tst.isDirectory()) throw new RootfsError('ROOTFS_BAD_LINK', `${what}: hard link "${h.name}" to a directory "${h.linkname}"`);
          if (existing) await remove(host);
          await link(targetHost, host);
          entry.resume();
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo': {
          if (existing) await remove(host);
          if (await makeNode(host, h.type, mode, h.devmajor ?? 0, h.devminor ?? 0, what, h.name)) {
            if (doChown) await chown(host, uid, gid);
            await chmod(host, mode);
          }
          entry.resume();
          break;
        }
        default:
          entry.resume();
      }
      crashPoint?.('apply-entry');
    }
  })();
  try {
    await Promise.all([pipeline(tarStream, new ExtractBudget(options.limit ?? settings.extractLimit, what), extract), work]);
  } catch (err) {
    if (err instanceof GantryError) throw err;
    throw new RootfsError('ROOTFS_APPLY', `${what}: ${(err as Error).message}`, { cause: err });
  }
  // Opaque directories: everything below them that this layer did not create goes, at any
  // depth (a lower o/sub/old goes even when this layer adds o/sub/new).
  if (opaque.length > 0) {
    /** Directories this layer wrote into: their lower contents are looked through, not kept whole. */
    const ancestors = new Set<string>();
    for (const c of created) {
      for (let i = c.indexOf('/'); i !== -1; i = c.indexOf('/', i + 1)) ancestors.add(c.slice(0, i));
    }
    const sweep = async (dir: string, host: string): Promise<void> => {
      for (const child of await readdir(host).catch(() => [] as string[])) {
        const rel = dir ? `${dir}/${child}` : child;
        const childHost = path.join(host, child);
        if (ancestors.has(rel)) {
          // Written into by this layer: a real directory of the rootfs (parents were resolved
          // to directories when the entries were written), swept in turn.
          if (lstatSync(childHost, { throwIfNoEntry: false })?.isDirectory()) await sweep(rel, childHost);
        } else if (!created.has(rel)) {
          await remove(childHost);
        }
      }
    };
    for (const dir of opaque) {
      const resolved = await resolveInRoot(root, dir);
      await sweep(dir, resolved.host);
    }
  }
  // Extended attributes after every chown (which clears security.capability), on what each
  // path is now, resolved inside the root again: a later entry may have replaced a parent.
  if (xattrs.size > 0) {
    const targets = new Map<string, Map<string, Buffer>>();
    for (const [rel, x] of xattrs) {
      const parent = await resolveInRoot(root, path.posix.dirname(rel)).catch(() => undefined);
      if (!parent) continue;
      const host = path.join(parent.host, path.posix.basename(rel));
      const st = lstatSync(host, { throwIfNoEntry: false });
      if (st && (st.isFile() || st.isDirectory())) targets.set(host, x);
    }
    await writeXattrs(targets);
  }
  // Directory times last: writing into a directory changes its mtime.
  for (const { host, mtime } of dirTimes.reverse()) await lutimes(host, mtime, mtime).catch(() => undefined);
  return stats;
}

const MAX_DEV = 0xfffff;

/** Make a FIFO or a device node; false when a device node is left out (in a user namespace). */
async function makeNode(host: string, type: string, mode: number, major: number, minor: number, what: string, name: string): Promise<boolean> {
  if (type === 'fifo') {
    await execFileAsync('/usr/bin/mkfifo', ['-m', (mode & 0o777).toString(8), host]);
    return true;
  }
  if (major < 0 || minor < 0 || major > 0xfff || minor > MAX_DEV) {
    throw new RootfsError('ROOTFS_BAD_DEVICE', `${what}: device "${name}" has an out-of-range number ${major}:${minor}`);
  }
  // In a user namespace (a rootless build) no device node can be made: it is left out of the
  // tree, as buildah and podman do rootless. The layer that holds it is kept as it is; a RUN
  // never sees it (its /dev is the runtime's), and the next layers do not record its absence.
  if (settings.inUserNamespace) return false;
  try {
    await execFileAsync('/bin/mknod', ['-m', (mode & 0o777).toString(8), host, type === 'block-device' ? 'b' : 'c', String(major), String(minor)]);
  } catch (err) {
    throw new RootfsError('ROOTFS_DEVICE', `${what}: cannot create device "${name}" (${(err as Error).message.trim()}); device nodes need root`);
  }
  return true;
}
