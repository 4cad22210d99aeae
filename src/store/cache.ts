/**
 * The layer cache: step key → the layer that step produced (or none). Entries are small
 * JSON files under <root>/cache/, written atomically; the blobs they name are kept by
 * prune unless the cache is pruned too. The cache's budget (below) keeps it, with the step
 * snapshots, within the bytes a store gives them.
 */
import { lstatSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LayerDescriptor } from '../image/image.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../oci/media-types.js';
import type { Descriptor, Index, Manifest } from '../oci/types.js';
import { crashPoint } from '../support/process.js';
import { cacheFileKind } from './layout.js';
import { containerManifests } from './containers.js';
import { Snapshots } from './snapshots.js';
import type { Store } from './store.js';

export interface CacheEntry {
  /** The layer, or null when the step changed nothing or its change is `kept` only as a snapshot. */
  layer: LayerDescriptor | null;
  /**
   * A step of a stage whose layers never leave the build made no layer: its change is kept only
   * as its step snapshot, named by this stand-in (`kept:<hex>`, builder/state.ts). A hit needs
   * that snapshot; without it the step runs again.
   */
  kept?: string;
  /**
   * The key the steps after this one chain on, and its snapshot is named by, when it is not this
   * entry's own: a COPY from another stage's content key (builder/execute.ts).
   */
  next?: string;
  created: string;
}

export class LayerCache {
  private readonly dir: string;
  constructor(private readonly store: Store) {
    this.dir = store.layout.cacheDir;
  }

  private file(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new Error(`invalid cache key ${key}`);
    return this.store.layout.cachePath('entry', key);
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    let entry: CacheEntry;
    try {
      // Synchronous: a small file read for every step of a build, where a thread-pool round trip costs more than the read.
      entry = JSON.parse(readFileSync(this.file(key), 'utf8')) as CacheEntry;
    } catch {
      return undefined;
    }
    touch(this.file(key)); // its last use, for the build cache's budget (below)
    if (entry.kept !== undefined && !/^kept:[0-9a-f]{64}$/.test(entry.kept)) return undefined;
    if (entry.next !== undefined && !/^[0-9a-f]{64}$/.test(entry.next)) return undefined;
    if (entry.layer) {
      await this.store.lease(entry.layer.digest);
      if (!(await this.store.hasBlob(entry.layer.digest))) return undefined; // pruned since
    }
    return entry;
  }

  async put(key: string, entry: CacheEntry): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = this.store.tempPath('cache');
    try {
      await writeFile(tmp, JSON.stringify(entry), { flag: 'wx' });
      await rename(tmp, this.file(key));
    } catch (err) {
      await rm(tmp, { force: true });
      throw this.store.ioError(err, `writing the build cache entry ${key}`);
    }
    crashPoint?.('cache-put');
  }

  /** Digests the cache keeps alive. */
  async referenced(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      try {
        const e = JSON.parse(await readFile(path.join(this.dir, name), 'utf8')) as CacheEntry;
        if (e.layer) out.add(e.layer.digest);
      } catch {
        // a broken entry keeps nothing
      }
    }
    return out;
  }

  /**
   * Remove every entry. One file at a time, leaving the directory: a build running meanwhile
   * may be writing an entry there (removing the directory would race it and fail).
   */
  async clear(): Promise<number> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const n of names) await rm(path.join(this.dir, n), { recursive: true, force: true });
    return names.length;
  }
}

// --- the build cache's budget ------------------------------------------------------------------

/**
 * One budget for the build cache (BuildKit's keep-storage): the step snapshots and the layer
 * blobs that only build cache entries keep (a step's layer no image has, a compressed copy made
 * for a push). When together they hold more than the budget (10% of the store's file system, or
 * GANTRY_STORE_BUDGET), the least recently used go first, snapshots and cache entries alike,
 * down to the budget: a cache entry is used when a build hits it, a snapshot when a build mounts
 * it. Never what a running gantry process has leased (a build's own snapshots and layers), never
 * a blob an image in the store references, never the parent of a snapshot that stays.
 *
 * Every build ends here. Before taking the lock it sums an upper bound (the snapshots' sizes
 * and every blob's) and stops when that is within the budget, which is the usual case.
 */

export interface BudgetReport {
  snapshots: string[];
  entries: string[];
  blobs: string[];
  bytes: number;
}

/**
 * Every blob the images of `manifests` (default: index.json's) reference: manifests, configs,
 * layers, nested indexes, added to `into`. A digest already there is not looked into again.
 * `onManifest` is given each image manifest read (prune reads their configs).
 */
export async function imageBlobs(
  store: Store,
  options: { manifests?: readonly Descriptor[]; into?: Set<string>; onManifest?: (m: Manifest) => Promise<void> } = {},
): Promise<Set<string>> {
  const out = options.into ?? new Set<string>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (out.has(d.digest)) return;
    out.add(d.digest);
    if (!(await store.hasBlob(d.digest))) return;
    if (MANIFEST_TYPES.has(d.mediaType)) {
      const m = await store.readJSON<Manifest>(d.digest);
      out.add(m.config.digest);
      for (const l of m.layers) out.add(l.digest);
      await options.onManifest?.(m);
    } else if (INDEX_TYPES.has(d.mediaType)) {
      for (const c of (await store.readJSON<Index>(d.digest)).manifests) await visit(c);
    }
  };
  for (const d of options.manifests ?? (await store.readIndex()).manifests) await visit(d);
  return out;
}

function blobBytes(store: Store): number {
  const dir = path.join(store.root, 'blobs', 'sha256');
  let total = 0;
  for (const name of readdirSync(dir)) total += lstatSync(path.join(dir, name), { throwIfNoEntry: false })?.size ?? 0;
  return total;
}

export async function collectBuildCache(store: Store, budget: number): Promise<BudgetReport> {
  const report: BudgetReport = { snapshots: [], entries: [], blobs: [], bytes: 0 };
  const snapshots = new Snapshots(store);
  if (snapshots.bytes() + blobBytes(store) <= budget) return report;
  return store.withLock(async () => {
    const leased = await store.liveLeases();
    const images = await imageBlobs(store);
    // The images working containers were made from are kept, named or not: a commit needs them.
    await imageBlobs(store, { manifests: containerManifests(store), into: images });
    const cacheDir = store.layout.cacheDir;
    // The cache entries, their layers and when each was last used.
    const entries: { key: string; file: string; digest: string | undefined; used: number }[] = [];
    const refs = new Map<string, number>();
    const sizes = new Map<string, number>();
    for (const name of readdirSync(cacheDir)) {
      const f = cacheFileKind(name);
      const key = f?.kind === 'entry' ? f.id : undefined;
      if (!key) continue;
      const file = path.join(cacheDir, name);
      let entry: CacheEntry;
      let used: number;
      try {
        entry = JSON.parse(readFileSync(file, 'utf8')) as CacheEntry;
        used = lstatSync(file).mtimeMs;
      } catch {
        continue;
      }
      const digest = entry.layer?.digest;
      if (digest) {
        refs.set(digest, (refs.get(digest) ?? 0) + 1);
        sizes.set(digest, entry.layer?.size ?? 0);
      }
      entries.push({ key, file, digest, used });
    }
    const cacheOnly = (d: string | undefined): boolean => d !== undefined && !images.has(d);
    const kept = snapshots.list();
    let held = kept.reduce((n, k) => n + (k.meta?.bytes ?? 0), 0) + [...sizes].filter(([d]) => cacheOnly(d)).reduce((n, [, s]) => n + s, 0);
    if (held <= budget) return report;
    type Item = { kind: 'snapshot'; id: string; used: number } | { kind: 'entry'; entry: (typeof entries)[number]; used: number };
    const items: Item[] = [...kept.map((k) => ({ kind: 'snapshot' as const, id: k.id, used: k.used })), ...entries.map((e) => ({ kind: 'entry' as const, entry: e, used: e.used }))];
    items.sort((a, b) => a.used - b.used);
    for (const item of items) {
      if (held <= budget) break;
      if (item.kind === 'snapshot') {
        const gone = await snapshots.removeLocked(item.id, leased);
        for (const g of gone.ids) report.snapshots.push(g);
        held -= gone.bytes;
        report.bytes += gone.bytes;
        continue;
      }
      const { entry } = item;
      const d = entry.digest;
      // An entry whose layer an image keeps (or that has none) costs nothing: it stays.
      if (!cacheOnly(d)) continue;
      rmSync(entry.file, { force: true });
      report.entries.push(entry.key);
      if (!d) continue;
      const left = (refs.get(d) ?? 1) - 1;
      refs.set(d, left);
      if (left > 0 || leased.has(d)) continue;
      const size = sizes.get(d) ?? 0;
      rmSync(store.blobPath(d), { force: true });
      report.blobs.push(d);
      held -= size;
      report.bytes += size;
    }
    return report;
  });
}

/** Mark cache entry `file` used now (its mtime: collection removes the least recently used first). */
export function touch(file: string): void {
  const now = new Date();
  try {
    utimesSync(file, now, now);
  } catch {
    // removed meanwhile: the next lookup misses
  }
}
