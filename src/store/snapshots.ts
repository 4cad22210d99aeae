/**
 * Step snapshots: the result of each filesystem step kept as a directory that later steps and
 * later builds mount as an overlay lower directory, as BuildKit keeps its snapshots. A cache hit
 * then mounts what the step left; it never unpacks the step's layer again.
 *
 *   <root>/snapshots/<id>/fs          the step's overlay upper directory, renamed here
 *   <root>/snapshots/<id>/index.bin   the stat index of the view (snapshot/persist.ts): what
 *                                     the directory changes in its parent's, or the whole view
 *   <root>/snapshots/<id>/meta.json   what it is: the step key, the layers it shows, its parents
 *
 * A snapshot shows the extracted base chain `rootfs/<base>` with its parents' directories and its
 * own stacked on top; `id` is a sum of the step's cache key and the chain of layer diff IDs
 * the view shows, so a hit finds it without a lookup table, and a snapshot made by another run
 * of the same step that made other layers (`--no-cache`, a RUN whose output varies) is never
 * used for layers it does not hold; `meta.json` names both in full.
 *
 * A snapshot is staged in a temp entry of the store (its owner's pid in the name, so a killed
 * process's is removed by the next command) and renamed into place whole; its parents exist
 * before it does. Builds lease what they mount (`snapshot:<id>`), and collection (`collect`)
 * keeps leased snapshots and removes the least recently used ones over the budget, children
 * with their parents.
 *
 * The overlays gantry mounts are `volatile` (nothing syncs the upper directory): a snapshot
 * committed during an earlier boot may have lost data in a crash, so it is used only in the
 * boot that made it.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statfsSync, utimesSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../support/process.js';
import { loadIndexFile, loadSnapshot, saveSnapshot } from '../snapshot/persist.js';
import type { Snapshot } from '../snapshot/diff.js';
import type { Store } from './store.js';
import { settings } from '../support/settings.js';

/** The most snapshots one overlay stacks; a step over that many keeps no snapshot. */
export const SNAPSHOT_DEPTH = 64;

/** Lower directories showing a prefix of a state's layers: snapshots (topmost first) over the base chain. */
export interface View {
  snapshots: string[];
  /** How many of the state's layers the view shows. */
  covered: number;
}

export interface SnapshotMeta {
  version: 1;
  key: string;
  /** chainName of every layer the view shows, base included. */
  chain: string;
  /** The extracted base chain at the bottom (rootfs/<base>). */
  base: string;
  /** The snapshots below, nearest first. */
  parents: string[];
  /** How many layers the view shows. */
  layers: number;
  /** What the directory is estimated to hold (the step's layer size). */
  bytes: number;
  /** /proc/sys/kernel/random/boot_id when it was committed. */
  boot: string;
}

/**
 * A snapshot's name: the step's key and the layers its view shows. A step run again with
 * `--no-cache` (or a RUN whose output differs from run to run) makes other layers under the same
 * key: its snapshot is another one, and the old one is left to collection.
 */
export const snapshotId = (key: string, chain: string): string => createHash('sha256').update(`${key}\n${chain}`).digest('hex').slice(0, 24);

let bootId: string | undefined;
function boot(): string {
  if (bootId === undefined) {
    try {
      bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      bootId = 'unknown';
    }
  }
  return bootId;
}

/** GANTRY_STORE_BUDGET in bytes when set (a value that is not a size is an error naming it); else 10% of the file system. */
export function storeBudget(root: string): number {
  const set = settings.storeBudget;
  if (set !== undefined) return set;
  const fs = statfsSync(root);
  return fs.blocks * fs.bsize * 0.1;
}

export class Snapshots {
  constructor(private readonly store: Store) {}

  get dir(): string {
    return path.join(this.store.root, 'snapshots');
  }

  /** The lower directories of `view` over the base chain `base`, relative to the store's root (the mount runs there). */
  lowers(view: View, base: string): string[] {
    return [...view.snapshots.map((id) => `snapshots/${id}/fs`), `rootfs/${base}`];
  }

  private meta(id: string): SnapshotMeta | undefined {
    try {
      const m = JSON.parse(readFileSync(path.join(this.dir, id, 'meta.json'), 'utf8')) as SnapshotMeta;
      return m.version === 1 && typeof m.key === 'string' && Array.isArray(m.parents) ? m : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The snapshot step `key` left, when one is kept that shows exactly the layers `chain` over
   * the base chain `base`, made in this boot, with all its parents: leased for this process and
   * marked used. Undefined otherwise (the caller unpacks the layer instead).
   */
  async open(key: string, chain: string, base: string, layers: number): Promise<View | undefined> {
    const id = snapshotId(key, chain);
    const m = this.meta(id);
    if (!m || m.key !== key || m.chain !== chain || m.base !== base || m.layers !== layers || m.boot !== boot()) return undefined;
    if (m.parents.length >= SNAPSHOT_DEPTH) return undefined;
    // Leased first, then checked: a collection that ran before the lease has removed it (a miss),
    // one after it keeps it.
    await this.store.lease(...[id, ...m.parents].map((s) => `snapshot:${s}`), `rootfs:${base}`);
    for (const s of [id, ...m.parents]) if (!lstatSync(path.join(this.dir, s, 'fs'), { throwIfNoEntry: false })?.isDirectory()) return undefined;
    if (!lstatSync(path.join(this.store.rootfsDir, base), { throwIfNoEntry: false })?.isDirectory()) return undefined;
    this.touchIds([id, ...m.parents]);
    return { snapshots: [id, ...m.parents], covered: m.layers };
  }

  /**
   * Mark the snapshot of step `key` showing `chain` used now, with the parents it stacks on (a
   * parent that aged out would take it along when collected). None kept: nothing.
   */
  touch(key: string, chain: string): void {
    const id = snapshotId(key, chain);
    this.touchIds([id, ...(this.meta(id)?.parents ?? [])]);
  }

  private touchIds(ids: string[]): void {
    const now = new Date();
    for (const s of ids) {
      try {
        utimesSync(path.join(this.dir, s, 'meta.json'), now, now);
      } catch {
        // collected meanwhile, or never kept: the next open misses
      }
    }
  }

  /**
   * The stat index of the view whose top is snapshot `id`, when it is kept and still true: its
   * own file, which (as commit writes it) holds what its directory changes in its parent's view,
   * applied over the parent's index, down to the base chain's.
   */
  async index(id: string): Promise<Snapshot | undefined> {
    const file = await loadIndexFile(path.join(this.dir, id, 'index.bin'), path.join(this.dir, id, 'fs'));
    if (!file?.removed) return file?.entries;
    const m = this.meta(id);
    if (!m) return undefined;
    const parent = m.parents[0];
    // Loaded for this call alone: changed in place.
    const below = parent !== undefined ? await this.index(parent) : await loadSnapshot(this.store.layout.chainSnapshotPath(m.base), path.join(this.store.rootfsDir, m.base));
    if (!below) return undefined;
    for (const p of file.removed) below.delete(p);
    for (const [p, e] of file.entries) below.set(p, e);
    return below;
  }

  /** Replace snapshot `id`'s index file with `index`, the whole view's. */
  async saveIndex(id: string, index: Snapshot): Promise<void> {
    await saveSnapshot(path.join(this.dir, id, 'index.bin'), this.store.tempPath('snapshot'), path.join(this.dir, id, 'fs'), index);
  }

  /**
   * Keep `upper` (unmounted) as the snapshot of step `key`: its view is `parents` over `base`
   * and shows the layers of `chain`. Returns the snapshot's id, or undefined when it was not
   * kept: one is there already (another build's run of the step; its directory is used), or
   * the stack is at its depth. `upper` is moved either way only when kept.
   */
  async commit(c: {
    key: string;
    chain: string;
    base: string;
    parents: string[];
    layers: number;
    upper: string;
    /** The view's whole index; or `delta`, what the upper directory changes in its parents' view. */
    index: Snapshot;
    delta?: { entries: Snapshot; removed: string[] };
    bytes: number;
  }): Promise<string | undefined> {
    if (c.parents.length >= SNAPSHOT_DEPTH - 1) return undefined;
    const id = snapshotId(c.key, c.chain);
    const target = path.join(this.dir, id);
    if (lstatSync(target, { throwIfNoEntry: false })) return undefined;
    const staged = this.store.tempPath('snapshot');
    await mkdir(staged, { mode: 0o700 });
    try {
      await rename(c.upper, path.join(staged, 'fs'));
      const index = path.join(staged, 'index.bin');
      if (c.delta) await saveSnapshot(index, this.store.tempPath('snapshot'), path.join(staged, 'fs'), c.delta.entries, c.delta.removed);
      else await saveSnapshot(index, this.store.tempPath('snapshot'), path.join(staged, 'fs'), c.index);
      const meta: SnapshotMeta = { version: 1, key: c.key, chain: c.chain, base: c.base, parents: c.parents, layers: c.layers, bytes: c.bytes, boot: boot() };
      await writeFile(path.join(staged, 'meta.json'), JSON.stringify(meta), { flag: 'wx' });
      crashPoint?.('snapshot-staged');
      await this.store.lease(`snapshot:${id}`);
      await this.store.privateDir('snapshots');
      await rename(staged, target);
      crashPoint?.('snapshot-committed');
      return id;
    } catch (err) {
      // Another build committed the same step first (ENOTEMPTY/EEXIST), or the store failed: no snapshot, never a wrong one.
      await rm(staged, { recursive: true, force: true }).catch(() => undefined);
      if ((err as NodeJS.ErrnoException).code === 'ENOTEMPTY' || (err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
      throw err;
    }
  }

  /** Every kept snapshot: id, meta (undefined when unreadable), last use. */
  list(): { id: string; meta: SnapshotMeta | undefined; used: number }[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    return names.map((id) => {
      let used = 0;
      try {
        used = lstatSync(path.join(this.dir, id, 'meta.json')).mtimeMs;
      } catch {
        // no meta: broken, goes first
      }
      return { id, meta: this.meta(id), used };
    });
  }

  /** Bytes the kept snapshots are estimated to hold. */
  bytes(): number {
    return this.list().reduce((n, s) => n + (s.meta?.bytes ?? 0), 0);
  }

  /**
   * Remove snapshots, the least recently used first, until they hold at most `budget` bytes
   * (with `all`, every one): never one a live process has leased, nor the parent of one that
   * stays. A snapshot whose meta is unreadable, from another boot, whose parent or base chain
   * is gone is removed first. Takes the store's lock, as prune does (`collectLocked` when the
   * caller holds it). Returns the ids removed.
   */
  async collect(options: { budget?: number; all?: boolean }): Promise<{ ids: string[]; bytes: number }> {
    const entries = this.list();
    if (entries.length === 0) return { ids: [], bytes: 0 };
    const budget = options.all ? -1 : (options.budget ?? Infinity);
    const broken = this.brokenTest(entries);
    // Nothing over the budget and nothing broken: no lock taken (every build ends here).
    if (entries.reduce((n, e) => n + (e.meta?.bytes ?? 0), 0) <= budget && !entries.some(broken)) return { ids: [], bytes: 0 };
    return this.store.withLock(async () => this.collectLocked(options, await this.store.liveLeases()));
  }

  private brokenTest(entries: { id: string; meta: SnapshotMeta | undefined }[]): (e: { meta: SnapshotMeta | undefined }) => boolean {
    const byId = new Map(entries.map((e) => [e.id, e]));
    return (e) =>
      !e.meta ||
      e.meta.boot !== boot() ||
      e.meta.parents.some((p) => !byId.get(p)?.meta) ||
      !lstatSync(path.join(this.store.rootfsDir, e.meta.base), { throwIfNoEntry: false });
  }

  /** `collect`, with the store's lock held by the caller and its live leases given. */
  async collectLocked(options: { budget?: number; all?: boolean }, leased: Set<string>): Promise<{ ids: string[]; bytes: number }> {
    const entries = this.list();
    const broken = this.brokenTest(entries);
    let held = entries.reduce((n, e) => n + (e.meta?.bytes ?? 0), 0);
    const budget = options.all ? -1 : (options.budget ?? Infinity);
    const out = { ids: [] as string[], bytes: 0 };
    const order = [...entries].sort((a, b) => Number(broken(b)) - Number(broken(a)) || a.used - b.used);
    for (const e of order) {
      if (!broken(e) && held <= budget) break;
      const gone = await this.removeLocked(e.id, leased);
      out.ids.push(...gone.ids);
      out.bytes += gone.bytes;
      held -= gone.bytes;
    }
    return out;
  }

  /**
   * Remove snapshot `id` with every snapshot stacked on it, unless one of them is leased by a
   * live process or is below a leased one (the store's lock held by the caller). Returns the ids
   * removed and their bytes.
   */
  async removeLocked(id: string, leased: Set<string>): Promise<{ ids: string[]; bytes: number }> {
    const entries = this.list();
    const target = entries.find((e) => e.id === id);
    if (!target) return { ids: [], bytes: 0 };
    // Pinned: leased, or below a leased one.
    const pinned = new Set<string>();
    for (const e of entries) if (leased.has(`snapshot:${e.id}`)) for (const p of [e.id, ...(e.meta?.parents ?? [])]) pinned.add(p);
    const group = [target, ...entries.filter((c) => c.meta?.parents.includes(id))];
    if (group.some((g) => pinned.has(g.id))) return { ids: [], bytes: 0 };
    let bytes = 0;
    for (const g of group) {
      bytes += g.meta?.bytes ?? 0;
      // meta.json first: a snapshot half removed is one `open` no longer takes.
      await rm(path.join(this.dir, g.id, 'meta.json'), { force: true });
      await rm(path.join(this.dir, g.id), { recursive: true, force: true, maxRetries: 3 });
    }
    return { ids: group.map((g) => g.id), bytes };
  }
}
