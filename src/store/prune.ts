/**
 * `gantry prune`: remove dangling images (those that lost their last name; with `all`,
 * every untagged image) and every blob nothing references. It holds the index lock while
 * it decides and deletes, and keeps what running gantry processes have leased, so a
 * concurrent build, pull or import never loses a blob it is about to reference, nor a working
 * container the image it was made from (store/containers.ts). It also
 * empties the trash (builds' scratch trees, store/trash.ts).
 */
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { REF_NAME_ANNOTATION, type ImageConfig, type Manifest } from '../oci/types.js';
import { chainName, DANGLING_ANNOTATION, withStore } from './store.js';
import { LayerCache } from './cache.js';
import { isSizeRecord, sizeRecordDiffId } from './sizes.js';
import { collectTrash, type TrashReport } from './trash.js';
import { Snapshots } from './snapshots.js';
import { imageBlobs } from './cache.js';
import { containerManifests } from './containers.js';

export interface PruneOptions {
  /** Remove every untagged image, not only dangling ones, and the build cache. */
  all?: boolean;
}

export interface PruneResult {
  /** Manifest digests of the images removed from the index. */
  images: string[];
  /** Digests of the blobs deleted. */
  blobs: string[];
  /** Bytes freed. */
  bytes: number;
  /** Temp files of dead processes that were removed. */
  temp: string[];
  /** Extracted base chains (rootfs/) removed: no image starts from them any more (with --all: every one not in use). */
  rootfs: string[];
  /** Step snapshots removed: those on a base chain removed above; with --all, every one not in use. */
  snapshots: string[];
  /** The trash emptied: builds' scratch trees, and their estimated bytes. */
  trash: TrashReport;
}

export async function pruneStore(root: string, options: PruneOptions = {}): Promise<PruneResult> {
  return withStore(root, async (store) => {
    const temp = store.cleaned; // opening the store removed them
    const result = await store.withLock(async () => {
      const index = await store.readIndex();
      const removed: string[] = [];
      index.manifests = index.manifests.filter((d) => {
        const untagged = d.annotations?.[REF_NAME_ANNOTATION] === undefined;
        const drop = untagged && (options.all || d.annotations?.[DANGLING_ANNOTATION] === 'true');
        if (drop) removed.push(d.digest);
        return !drop;
      });
      await store.writeIndex(index);

      const cache = new LayerCache(store);
      if (options.all) await cache.clear();
      const keep = await store.liveLeases();
      // The build cache keeps its layers, unless --all cleared it above.
      for (const d of await cache.referenced()) keep.add(d);
      // Without --all, an image's extracted chain and its layers' size records stay too.
      const keepExtracts = async (m: Manifest): Promise<void> => {
        if (!(await store.hasBlob(m.config.digest))) return;
        const config = await store.readJSON<ImageConfig>(m.config.digest);
        keep.add(`rootfs:${chainName(config.rootfs?.diff_ids ?? [])}`);
        for (const id of config.rootfs?.diff_ids ?? []) keep.add(`size:${id}`);
      };
      await imageBlobs(store, { manifests: index.manifests, into: keep, ...(options.all ? {} : { onManifest: keepExtracts }) });
      // The images working containers were made from stay, named or not: a commit needs them.
      await imageBlobs(store, { manifests: containerManifests(store), into: keep });
      if (!options.all) keep.add(`rootfs:${chainName([])}`); // an empty directory: what FROM scratch stages stack their snapshots on

      const blobs: string[] = [];
      let bytes = 0;
      for (const algorithm of await readdir(path.join(store.root, 'blobs'))) {
        const dir = path.join(store.root, 'blobs', algorithm);
        for (const hex of await readdir(dir)) {
          const digest = `${algorithm}:${hex}`;
          if (keep.has(digest)) continue;
          const file = path.join(dir, hex);
          bytes += (await stat(file)).size;
          await rm(file, { force: true });
          blobs.push(digest);
        }
      }
      // Extracted chains: kept while an image starts from one (unless --all) or a build uses it.
      const rootfs: string[] = [];
      for (const chain of await readdir(store.rootfsDir).catch(() => [] as string[])) {
        if (keep.has(`rootfs:${chain}`)) continue;
        await rm(path.join(store.rootfsDir, chain), { recursive: true, force: true });
        await rm(store.layout.chainSnapshotPath(chain), { force: true });
        await rm(store.layout.cachePath('old-chain-snapshot', chain), { force: true }); // a snapshot kept in the JSON format of earlier versions
        rootfs.push(chain);
      }
      // Step snapshots are build cache: --all removes them; a snapshot on a chain removed above goes.
      const snapshots = (await new Snapshots(store).collectLocked({ ...(options.all ? { all: true } : {}) }, keep)).ids;
      // Layer size records (sizes.ts) of layers no image has any more; --all cleared them with the cache.
      if (!options.all) {
        const cacheDir = store.layout.cacheDir;
        for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
          if (isSizeRecord(name) && !keep.has(`size:${sizeRecordDiffId(name) ?? ''}`)) await rm(path.join(cacheDir, name), { force: true });
        }
      }
      return { images: removed, blobs, bytes, temp, rootfs, snapshots };
    });
    // The trash is nobody's: it is emptied without holding the lock other commands wait for.
    return { ...result, trash: await collectTrash(store, { all: true }) };
  });
}
