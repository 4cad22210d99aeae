/**
 * Snapshots of a root filesystem and the diff between two of them as a layer tar.
 *
 * A snapshot is a stat index (path → type, mode, owner, size, times, inode, link target).
 * Comparing two gives the layer: added and changed entries (content, mode or owner: a
 * chmod or chown alone changes ctime, so it is caught), `.wh.<name>` for deletions, and
 * an opaque marker for a directory that was replaced. Entries are sorted and times can be
 * clamped, so the same change gives the same bytes.
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { crashPoint } from '../support/process.js';
import { paxOf } from '../tar/pax.js';
import type { EntryHeader } from '../tar/tar.js';
import { tarStream, type TarWriter } from '../tar/writer.js';

export interface Entry {
  type: 'file' | 'directory' | 'symlink' | 'fifo' | 'character-device' | 'block-device' | 'socket';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  ino: number;
  /** Creation time: a directory removed and made again may get its old inode number back. */
  birthtimeMs: number;
  nlink: number;
  rdev: number;
  linkname?: string;
}

/** Relative path (no leading slash, `/`-separated) → entry. */
export type Snapshot = Map<string, Entry>;

export interface SnapshotOptions {
  /** Relative paths not to look into or report (e.g. mount points of the sandbox). */
  exclude?: ReadonlySet<string>;
}

function typeOf(st: import('node:fs').Stats): Entry['type'] {
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'character-device';
  if (st.isBlockDevice()) return 'block-device';
  if (st.isSocket()) return 'socket';
  return 'file';
}

export async function snapshot(root: string, options: SnapshotOptions = {}): Promise<Snapshot> {
  const out: Snapshot = new Map();
  walkInto(out, root, '', options.exclude);
  return out;
}

/**
 * Add everything below `rel` (a directory of `root`) to `out`. Synchronous calls: a stat is
 * microseconds, a thread-pool round trip per stat is not.
 */
function walkInto(out: Snapshot, root: string, rel: string, exclude?: ReadonlySet<string>, touched?: Set<string>): void {
  const names = readdirSync(under(root, rel)).sort();
  crashPoint?.('snapshot-dir');
  for (const name of names) {
    const child = rel ? `${rel}/${name}` : name;
    if (exclude?.has(child)) continue;
    const entry = entryOf(under(root, child));
    out.set(child, entry);
    touched?.add(child);
    if (entry.type === 'directory') walkInto(out, root, child, exclude, touched);
  }
}

/**
 * `rel` (a snapshot's relative path: names from readdir joined by `/`, nothing to normalise)
 * below `root`: path.join's normalisation was a tenth of a snapshot walk's time.
 */
function under(root: string, rel: string): string {
  if (!rel) return root;
  return root.endsWith('/') ? root + rel : `${root}/${rel}`;
}

function entryOf(host: string): Entry {
  const st = lstatSync(host);
  const entry: Entry = {
    type: typeOf(st),
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    size: st.isFile() ? st.size : 0,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
    ino: st.ino,
    birthtimeMs: st.birthtimeMs,
    nlink: st.nlink,
    rdev: st.rdev,
  };
  if (entry.type === 'symlink') entry.linkname = readlinkSync(host);
  return entry;
}

/**
 * The snapshot of an overlay's merged directory after a step, from the snapshot before it:
 * only what the upper directory holds is looked at again, since everything else is the
 * read-only lower directory, unchanged. Gives the same map as `snapshot(merged)`
 * (test/e2e/overlay.test.ts checks this), without walking the whole base each step.
 *
 * A directory present in the upper directory is listed through the merged view: names
 * `before` had there and the merged view no longer shows were deleted (whether a whiteout
 * hides a lower file or a file an earlier step made is simply gone), names only the lower
 * directory supplies are unchanged, and names the upper directory holds are stat'ed again.
 * `touched`, when given, gets every path that was stat'ed again or removed: everything else is
 * `before`'s entry, unchanged, so `diff` need look at nothing else.
 *
 * `fresh`: the upper directory was mounted empty for this step (a step snapshot's overlay), so
 * a removal shows as a whiteout there and a directory made again as a new inode number, and
 * `before` need not be listed by directory (a tenth of the step's time on a 20,000-entry view).
 */
export function snapshotUpper(merged: string, upper: string, before: Snapshot, touched?: Set<string>, options: { fresh?: boolean } = {}): Snapshot {
  const out: Snapshot = new Map(before);
  // `before`'s paths by parent directory: made when first needed (a directory removed or
  // replaced; and for each directory the walk visits unless the upper directory is fresh).
  let children: Map<string, string[]> | undefined;
  const childrenOf = (p: string): string[] => {
    if (!children) {
      children = new Map();
      for (const q of before.keys()) {
        const parent = q.includes('/') ? q.slice(0, q.lastIndexOf('/')) : '';
        let list = children.get(parent);
        if (!list) children.set(parent, (list = []));
        list.push(q);
      }
    }
    return children.get(p) ?? [];
  };
  const removeTree = (p: string): void => {
    out.delete(p);
    touched?.add(p);
    for (const c of childrenOf(p)) removeTree(c);
  };
  const walk = (rel: string): void => {
    const names = readdirSync(under(merged, rel));
    crashPoint?.('snapshot-dir');
    const upperNames = new Set(readdirSync(under(upper, rel)));
    const present = new Set(names);
    if (options.fresh) {
      // The upper directory holds this step alone: what it removed of `before` is a whiteout
      // there, which the merged view does not show.
      for (const name of upperNames) {
        const child = rel ? `${rel}/${name}` : name;
        if (!present.has(name) && before.has(child)) removeTree(child);
      }
    } else {
      for (const old of childrenOf(rel)) {
        if (!present.has(old.slice(rel ? rel.length + 1 : 0))) removeTree(old);
      }
    }
    for (const name of names) {
      const child = rel ? `${rel}/${name}` : name;
      if (!upperNames.has(name) && out.has(child)) continue; // the lower directory's, as it was
      const was = before.get(child);
      const entry = entryOf(under(merged, child));
      out.set(child, entry);
      touched?.add(child);
      if (was?.type === 'directory' && (entry.type !== 'directory' || (options.fresh && entry.ino !== was.ino))) {
        // Replaced (made again: opaque, its lower contents hidden; or not a directory now): what
        // it held is gone, and what it holds now is read whole below.
        for (const c of childrenOf(child)) removeTree(c);
        if (entry.type === 'directory') walkInto(out, merged, child, undefined, touched);
        continue;
      }
      if (entry.type !== 'directory') continue;
      // A directory new here (or a file before) has nothing in `before`: all of it is read.
      if (upperNames.has(name) && was?.type === 'directory') walk(child);
      else walkInto(out, merged, child, undefined, touched);
    }
  };
  walk('');
  return out;
}

/**
 * The stat index of a view after its upper directory `upper` (unmounted) becomes a lower
 * directory of the next overlay, from `after`, the merged view's index while it was mounted.
 * In the merged view a copied-up entry keeps the inode number of the lower one it came from;
 * once its directory is a lower directory, the view shows the real entry's number (and every
 * other field). Whiteouts (0/0 character devices) are not entries: `after` lacks what they hide.
 * `inPlace` changes `after` itself rather than a copy, when nothing else holds it; `below`,
 * the index of the view under the upper directory, spares a stat of the entries new there that
 * are no copy-up.
 */
export function lowerIndex(after: Snapshot, upper: string, options: { inPlace?: boolean; below?: Snapshot } = {}): Snapshot {
  const out: Snapshot = options.inPlace ? after : new Map(after);
  const { below } = options;
  // Inode numbers of the view below: a copy-up (a file renamed or hard-linked, a directory
  // renamed through redirect_dir) shows its origin's number while mounted, which is one of these.
  let origins: Set<number> | undefined;
  const walk = (rel: string): void => {
    for (const name of readdirSync(under(upper, rel))) {
      const child = rel ? `${rel}/${name}` : name;
      // An entry new in the upper directory that is no copy-up showed its own inode number and
      // fields in the merged view, so `after` has it already: no stat.
      let entry: Entry | undefined;
      if (below && !below.has(child)) {
        const seen = after.get(child);
        if (seen) {
          origins ??= new Set([...below.values()].map((e) => e.ino));
          if (!origins.has(seen.ino)) entry = seen;
        }
      }
      entry ??= entryOf(under(upper, child));
      if (entry.type === 'character-device' && entry.rdev === 0) continue;
      if (!out.has(child)) continue; // hidden by an opaque directory above it (never from an overlay's own upper)
      out.set(child, entry);
      if (entry.type === 'directory') walk(child);
    }
  };
  walk('');
  return out;
}

/**
 * What `index` changes in `below` (the view its upper directory was mounted on): the entries it
 * sets and the paths it removes. An entry `snapshotUpper` left as it was is the same object in
 * both; anything else counts as set (at worst an entry that did not change is written again).
 * `paths`, when known, are the only ones that may differ.
 */
export function indexChange(below: Snapshot, index: Snapshot, paths?: Iterable<string>): { entries: Snapshot; removed: string[] } {
  const entries: Snapshot = new Map();
  const removed: string[] = [];
  if (paths) {
    // Only these may differ (what `snapshotUpper` touched on a fresh upper directory over `below`,
    // which holds every entry `lowerIndex` sets): no walk of the whole index.
    for (const p of paths) {
      const e = index.get(p);
      if (e) {
        if (below.get(p) !== e) entries.set(p, e);
      } else if (below.has(p)) {
        removed.push(p);
      }
    }
    return { entries, removed };
  }
  for (const [p, e] of index) if (below.get(p) !== e) entries.set(p, e);
  for (const p of below.keys()) if (!index.has(p)) removed.push(p);
  return { entries, removed };
}

function changed(a: Entry, b: Entry): boolean {
  return (
    a.type !== b.type ||
    a.mode !== b.mode ||
    a.uid !== b.uid ||
    a.gid !== b.gid ||
    a.size !== b.size ||
    a.mtimeMs !== b.mtimeMs ||
    a.ctimeMs !== b.ctimeMs ||
    a.ino !== b.ino ||
    a.birthtimeMs !== b.birthtimeMs ||
    a.rdev !== b.rdev ||
    a.linkname !== b.linkname
  );
}

export interface DiffEntry {
  path: string;
  kind: 'add' | 'whiteout' | 'opaque';
}

export interface DiffOptions {
  /**
   * The rootfs is an overlay mount: a directory copied up keeps its inode number but gets the
   * upper directory's birth time, so only a new inode number means it was removed and made again.
   */
  overlay?: boolean;
  /** The only paths that may differ (from `snapshotUpper`); without it, every path is compared. */
  touched?: ReadonlySet<string>;
}

/** What changed from `before` to `after`, sorted by path (parents before children). */
export function diff(before: Snapshot, after: Snapshot, options: DiffOptions = {}): DiffEntry[] {
  const out: DiffEntry[] = [];
  const replacedDirs = new Set<string>();
  const { touched } = options;
  for (const p of touched ?? after.keys()) {
    const a = after.get(p);
    if (!a) continue; // removed: the loop below
    const b = before.get(p);
    if (!b) {
      out.push({ path: p, kind: 'add' });
      continue;
    }
    if (b.type === 'directory' && a.type === 'directory' && (b.ino !== a.ino || (!options.overlay && b.birthtimeMs !== a.birthtimeMs))) {
      // Removed and made again: the lower contents must not show through.
      replacedDirs.add(p);
      out.push({ path: p, kind: 'add' }, { path: `${p}/.wh..wh..opq`, kind: 'opaque' });
      continue;
    }
    if (a.type === 'directory' && b.type === 'directory') {
      // A directory counts as changed for its own metadata, not for what happened inside it.
      if (a.mode !== b.mode || a.uid !== b.uid || a.gid !== b.gid) out.push({ path: p, kind: 'add' });
      continue;
    }
    if (changed(a, b)) out.push({ path: p, kind: 'add' });
  }
  for (const p of touched ?? before.keys()) {
    if (after.has(p) || !before.has(p)) continue; // still there (a type change is an add), or never was
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (parent && !after.has(parent)) continue; // the parent's own whiteout covers it
    if (parent && after.get(parent)?.type !== 'directory') continue; // the parent is a file now: that entry replaces the whole directory
    if (parent && (replacedDirs.has(parent) || isUnderReplaced(parent, replacedDirs))) continue; // the opaque marker does
    const name = p.slice(p.lastIndexOf('/') + 1);
    out.push({ path: parent ? `${parent}/.wh.${name}` : `.wh.${name}`, kind: 'whiteout' });
  }
  return out.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

function isUnderReplaced(p: string, replaced: Set<string>): boolean {
  for (let q = p; q.includes('/'); ) {
    q = q.slice(0, q.lastIndexOf('/'));
    if (replaced.has(q)) return true;
  }
  return false;
}

export interface LayerTarOptions {
  /** Clamp every mtime to at most this time (seconds since the epoch). */
  sourceDateEpoch?: number;
  /** Extended attributes to record (relative path → name → value), as PAX `SCHILY.xattr.*`. */
  xattrs?: ReadonlyMap<string, ReadonlyMap<string, Buffer>>;
}

/** The changes as a layer tar stream (the build writes them into the store with `writeLayer`). */
export function layerTar(root: string, after: Snapshot, changes: DiffEntry[], options: LayerTarOptions = {}): Readable {
  return tarStream((t) => writeLayer(t, root, after, changes, options));
}

/**
 * Write the changes as a layer tar: sorted, hard links kept within the layer, times clamped.
 * File bodies are read with synchronous reads straight into the writer's chunks (see
 * src/tar/writer.ts); a file whose size no longer matches its snapshot is an error.
 */
export async function writeLayer(t: TarWriter, root: string, after: Snapshot, changes: DiffEntry[], options: LayerTarOptions = {}): Promise<void> {
  const clamp = (ms: number): Date => {
    const c = options.sourceDateEpoch !== undefined ? Math.min(ms, options.sourceDateEpoch * 1000) : ms;
    return new Date(Math.floor(c / 1000) * 1000);
  };
  const seenInodes = new Map<number, string>();
  for (const c of changes) {
    if (c.kind !== 'add') {
      const whiteout: EntryHeader = { name: c.path, mode: 0o644, mtime: clamp(0), uid: 0, gid: 0, type: 'file', size: 0 };
      if (!t.entryNow(whiteout)) await t.entry(whiteout);
      continue;
    }
    const e = after.get(c.path) as Entry;
    if (e.type === 'socket') continue; // sockets cannot be stored in a layer
    const header: EntryHeader = {
      name: e.type === 'directory' ? `${c.path}/` : c.path,
      mode: e.mode,
      uid: e.uid,
      gid: e.gid,
      mtime: clamp(e.mtimeMs),
      type: e.type,
      uname: '',
      gname: '',
    };
    if (e.type === 'symlink') header.linkname = e.linkname ?? '';
    const x = options.xattrs?.get(c.path);
    if (x && x.size > 0 && (e.type === 'file' || e.type === 'directory')) header.pax = paxOf(x);
    if (e.type === 'character-device' || e.type === 'block-device') {
      header.devmajor = Math.floor(e.rdev / 256) & 0xfff;
      header.devminor = (e.rdev & 0xff) | ((e.rdev >> 12) & 0xfff00);
    }
    if (e.type === 'file' && e.nlink > 1) {
      const first = seenInodes.get(e.ino);
      if (first) {
        const link: EntryHeader = { ...header, type: 'link', linkname: first };
        if (!t.entryNow(link)) await t.entry(link);
        continue;
      }
      seenInodes.set(e.ino, c.path);
    }
    if (e.type !== 'file') {
      if (!t.entryNow(header)) await t.entry(header);
      continue;
    }
    const host = under(root, c.path);
    const fd = openSync(host, 'r');
    try {
      // A file whose size is no longer the snapshot's is an error (TarWriter.file sees it).
      header.size = e.size;
      const entry = header as EntryHeader & { size: number };
      if (!t.fileNow(entry, fd, host)) await t.file(entry, fd, host);
    } finally {
      closeSync(fd);
    }
  }
}
