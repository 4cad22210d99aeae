/**
 * Path resolution confined to a root directory: every component is looked at with lstat,
 * symlinks are followed as the container would see them (absolute targets start at the
 * root, `..` stops at the root), and the result is always a host path inside the root.
 * This is what makes writing through `l -> ../../victim` or `abs -> /etc` land inside.
 */
import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { GantryError } from '../errors/index.js';

const MAX_LINKS = 40;

export class RootfsError extends GantryError {}

/** Split a container path into its components, dropping empty ones and `.`. */
export function components(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolve `containerPath` inside `root`. With `followLast` false the last component is
 * not followed when it is a symlink (for operations on the link itself: unlink, lchown,
 * replace). Missing components are fine: the rest is appended as it is (after `..` folding).
 * Returns the host path, and the container path it stands for.
 */
export async function resolveInRoot(root: string, containerPath: string, followLast = true): Promise<{ host: string; inner: string }> {
  let resolved: string[] = [];
  let pending = components(containerPath);
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const host = path.join(root, ...candidate);
    const isLast = pending.length === 0;
    let st;
    try {
      st = lstatSync(host); // synchronous: microseconds, where a thread-pool round trip costs hundreds
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        resolved = candidate;
        continue;
      }
      throw err;
    }
    if (st.isSymbolicLink() && (!isLast || followLast)) {
      if (++links > MAX_LINKS) throw new RootfsError('ROOTFS_LOOP', `too many levels of symbolic links resolving ${containerPath}`);
      const target = readlinkSync(host);
      pending = [...components(target), ...pending];
      if (target.startsWith('/')) resolved = [];
      continue;
    }
    resolved = candidate;
  }
  return { host: path.join(root, ...resolved), inner: '/' + resolved.join('/') };
}
