/**
 * A snapshot kept on disk, for a tree that does not change: an extracted base chain, which a
 * build's overlay uses as its read-only lower directory. The first step of every build on that
 * base then starts from this file (about 10 ms for Debian's 6,700 entries) instead of walking
 * the base (about 100 ms).
 *
 * The file records the tree's own inode number and birth time: a tree removed and extracted
 * again (prune, fsck --repair) has other inodes and times inside, so a file written for the
 * old one is not used for it. A file that is missing, stale or unreadable only costs a walk.
 */
import { lstatSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Entry, Snapshot } from './diff.js';

const VERSION = 1;

type Row = [
  path: string,
  type: Entry['type'],
  mode: number,
  uid: number,
  gid: number,
  size: number,
  mtimeMs: number,
  ctimeMs: number,
  ino: number,
  birthtimeMs: number,
  nlink: number,
  rdev: number,
  linkname?: string,
];

interface Doc {
  version: number;
  tree: { ino: number; birthtimeMs: number };
  rows: Row[];
}

function stampOf(tree: string): Doc['tree'] | undefined {
  try {
    const st = lstatSync(tree);
    return { ino: st.ino, birthtimeMs: st.birthtimeMs };
  } catch {
    return undefined;
  }
}

/** The snapshot `file` holds for `tree`, or undefined when it has none that is still true. */
export async function loadSnapshot(file: string, tree: string): Promise<Snapshot | undefined> {
  const stamp = stampOf(tree);
  if (!stamp) return undefined;
  let doc: Doc;
  try {
    doc = JSON.parse(await readFile(file, 'utf8')) as Doc;
  } catch {
    return undefined;
  }
  if (doc.version !== VERSION || doc.tree?.ino !== stamp.ino || doc.tree.birthtimeMs !== stamp.birthtimeMs || !Array.isArray(doc.rows)) return undefined;
  const out: Snapshot = new Map();
  for (const [p, type, mode, uid, gid, size, mtimeMs, ctimeMs, ino, birthtimeMs, nlink, rdev, linkname] of doc.rows) {
    const e: Entry = { type, mode, uid, gid, size, mtimeMs, ctimeMs, ino, birthtimeMs, nlink, rdev };
    if (linkname !== undefined) e.linkname = linkname;
    out.set(p, e);
  }
  return out;
}

/** Keep `snap` (taken of `tree`) in `file`, written first to `tmp`. Failing to is not an error. */
export async function saveSnapshot(file: string, tmp: string, tree: string, snap: Snapshot): Promise<void> {
  const stamp = stampOf(tree);
  if (!stamp) return;
  const rows: Row[] = [];
  for (const [p, e] of snap) {
    const row: Row = [p, e.type, e.mode, e.uid, e.gid, e.size, e.mtimeMs, e.ctimeMs, e.ino, e.birthtimeMs, e.nlink, e.rdev];
    if (e.linkname !== undefined) row.push(e.linkname);
    rows.push(row);
  }
  const doc: Doc = { version: VERSION, tree: stamp, rows };
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, JSON.stringify(doc), { flag: 'wx' });
    await rename(tmp, file);
  } catch {
    await rm(tmp, { force: true });
  }
}
