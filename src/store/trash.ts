/**
 * The store's trash: trees a command no longer needs (a build's rootfs, its overlay's upper
 * and work directories) are moved here with one rename instead of being removed while the
 * user waits, and removed in bulk later, the oldest first, once they hold more than a budget.
 *
 *   <root>/trash/<ms since epoch>-<estimated bytes>-<random>
 *
 * Removing a tree of thousands of files takes time of its own, and on an ext4 file system
 * without a journal it also makes every file created in the next 30 seconds slower: the
 * allocator skips the inodes it freed that recently, scanning past each of them. BuildKit
 * keeps its snapshots until its garbage collection finds the cache over budget; this is the
 * same trade for gantry's scratch trees. The budget is 10% of the store's file system (as
 * BuildKit's default), or GANTRY_TRASH_BUDGET; 0 removes everything at once. When the file
 * system is nearly full (under 5% available) the whole trash goes. `gantry prune` empties it.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, statfsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { execFileAsync } from '../support/process.js';
import { settings } from '../support/settings.js';
import type { Store } from './store.js';

const ENTRY = /^(\d+)-(\d+)-[0-9a-f]{16}$/;

/**
 * The most entries the trash keeps, whatever their bytes: a build on overlays sets aside only
 * its empty work and mount directories (its upper directories are kept as snapshots), entries
 * of next to no bytes that a byte budget alone would never collect. Past it, the oldest go down
 * to half of it.
 */
const MAX_ENTRIES = 100;

/** Share of the file system the trash may hold, and the share that must stay available. */
const DEFAULT_SHARE = 0.1;
const RESERVE_SHARE = 0.05;

export function trashDir(store: Store): string {
  return path.join(store.root, 'trash');
}

/** Whether `name` is a trash entry's name. */
export const isTrashEntry = (name: string): boolean => ENTRY.test(name);

/**
 * Move `dir` (inside the store) to the trash; `bytes` is what it is estimated to hold. Where the
 * rename cannot be done, the tree is removed at once.
 */
export async function discard(store: Store, dir: string, bytes: number): Promise<void> {
  const trash = trashDir(store);
  const name = `${Date.now()}-${Math.max(0, Math.round(bytes))}-${randomBytes(8).toString('hex')}`;
  try {
    // 0700: a build's rootfs may hold set-user-ID programs a RUN made; nobody else reaches them.
    await store.privateDir('trash');
    await rename(dir, path.join(trash, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    await removeTree(dir);
  }
}

export interface TrashReport {
  /** Entries removed. */
  entries: number;
  /** Their estimated bytes. */
  bytes: number;
}

/**
 * Remove trash entries, the oldest first: all of them with `all` or when the file system is
 * nearly full, else, when the trash holds more than its budget, down to half the budget, and
 * when it holds more than MAX_ENTRIES entries, down to half of those (so that collecting is
 * rare, not a cost of every build).
 */
export async function collectTrash(store: Store, options: { all?: boolean } = {}): Promise<TrashReport> {
  const trash = trashDir(store);
  // Synchronous listing and statfs: every build ends here, and each call takes microseconds.
  let names: string[];
  try {
    names = readdirSync(trash);
  } catch {
    names = [];
  }
  const report: TrashReport = { entries: 0, bytes: 0 };
  if (names.length === 0) return report;
  const entries = names
    .map((name) => {
      const m = ENTRY.exec(name);
      // A name gantry did not give: nothing to keep it for, it goes first.
      return { name, time: m ? Number(m[1]) : 0, bytes: m ? Number(m[2]) : 0 };
    })
    .sort((a, b) => a.time - b.time || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)); // not localeCompare: setting up a collator costs ms
  let held = entries.reduce((n, e) => n + e.bytes, 0);
  /** How many must go for the count alone. */
  let excess = entries.length > MAX_ENTRIES ? entries.length - MAX_ENTRIES / 2 : 0;
  /** What may stay; below zero, nothing. Entries gantry did not name go whatever it is. */
  let target = -1;
  if (!options.all) {
    const fs = statfsSync(store.root);
    const size = fs.blocks * fs.bsize;
    const budget = settings.trashBudget ?? size * DEFAULT_SHARE;
    if (fs.bavail * fs.bsize >= size * RESERVE_SHARE && budget > 0) {
      target = held > budget ? budget / 2 : held;
      if (target === held && excess === 0 && !entries.some((e) => e.time === 0)) return report;
    }
  }
  // A tree is never removed through a mount (an overlay a crash left mounted): released first,
  // or, by a store that cannot, left (store/trees.ts).
  const release = treeReleaser();
  if (!release) return report;
  for (const e of entries) {
    if (e.time !== 0 && held <= target && excess <= 0) break;
    excess--;
    const dir = path.join(trash, e.name);
    await release(dir);
    // Another process may be removing it too; what is left is removed next time.
    await removeTree(dir);
    held -= e.bytes;
    report.entries++;
    report.bytes += e.bytes;
  }
  return report;
}

// --- releasing and removing a build's trees ----------------------------------------------------

/**
 * The trees a build makes in the store (its rootfs and overlay directories in `tmp/`, set aside
 * in `trash/`, the sandbox's work directories) can still have a mount below them, or a process
 * whose root is inside them, when the process that made them was killed. Removing such a tree
 * through its mount would remove what the mount shows (a step snapshot, a base chain).
 *
 * The store knows neither mounts nor processes. The module that makes those trees
 * (builder/workspace.ts) gives it the way to release one when it loads; a store used without it
 * leaves those trees for the next command that has it (every gantry command and the API load it).
 */

export type TreeReleaser = (dir: string) => Promise<void>;

let releaser: TreeReleaser | undefined;

export function setTreeReleaser(r: TreeReleaser | undefined): void {
  releaser = r;
}

/** The way to make a build's tree safe to remove, when one was given. */
export function treeReleaser(): TreeReleaser | undefined {
  return releaser;
}

const RM = ['/usr/bin/rm', '/bin/rm'].find((p) => existsSync(p));

/**
 * Remove a tree (already released): with coreutils' `rm -rf --one-file-system`, which crosses
 * into no mount. Node's recursive rm of a 50,000-file tree took 1.4 s and 120 MB more memory
 * (its peak RSS 163 MB), `rm` 0.5 s and next to none. Node's only where there is no `rm`; what
 * `rm` leaves (a mount it would not cross, a file it could not remove) stays for next time.
 */
export async function removeTree(dir: string): Promise<void> {
  if (RM) {
    await execFileAsync(RM, ['-rf', '--one-file-system', '--', dir]).catch(() => undefined);
    return;
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => undefined);
}
