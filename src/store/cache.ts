/**
 * The layer cache: step key → the layer that step produced (or none). Entries are small
 * JSON files under <root>/cache/, written atomically; the blobs they name are kept by
 * prune unless the cache is pruned too.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { crashPoint } from '../support/crash.js';
import type { Store } from './store.js';
import { touch } from './budget.js';
import type { LayerDescriptor } from '../image/image.js';

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
    touch(this.file(key)); // its last use, for the build cache's budget (budget.ts)
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
