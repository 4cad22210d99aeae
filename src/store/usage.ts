/**
 * `gantry system df`: what the store holds, by kind, and how much of it `gantry prune --all`
 * would free. Every size is bytes on disk in the store (a blob's file, a tree's files), not the
 * unpacked size `gantry images` shows: pulled layers are kept compressed.
 *
 * - Images: the blobs (manifests, configs, layers) of the images index.json lists, each blob
 *   counted once however many images share it. Active: images with a name (prune keeps them).
 *   Reclaimable: the blobs only untagged images use.
 * - Build cache: the layer cache's entries (cache/<key>.json: a step's layer, or a gzip copy of
 *   a built layer made for a push) with the blobs only they keep, and the context stat caches
 *   and base snapshots beside them. prune --all clears it all.
 * - Base extracts: base images extracted once for builds' overlays (rootfs/<chain>). Active: an
 *   image in the store starts from it (plain prune keeps those); prune --all removes them all.
 * - Step snapshots: each build step's result kept for later steps and builds to mount
 *   (snapshots/<id>, snapshots.ts). Active: leased by a running build. prune --all removes
 *   the others; the store budget collects the least recently used.
 * - Cache mounts: RUN --mount=type=cache directories (cache-mounts/). No gantry command removes
 *   them, so nothing is reclaimable.
 * - Trash: builds' scratch trees set aside (trash/), with the sizes estimated when they were set
 *   aside; prune empties it.
 * - Containers: working containers' trees (containers/<id>, containers.ts). Active: a command
 *   uses it. No prune removes a container (gantry rm does); the blobs of the image it was made
 *   from are the Images row's, or this row's when no name lists that image any more.
 * - Unused blobs: blobs nothing above references (an rmi'd image's, a killed command's). Active:
 *   leased by a running gantry process. prune removes the others.
 */
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { INDEX_TYPES, MANIFEST_TYPES, layerCompression } from '../oci/media-types.js';
import { familiarName, parseReference } from '../oci/reference.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
// The layer cache's files are read here directly: LayerCache.get would lease what it reads.
import type { CacheEntry } from './cache.js';
import { isSizeRecord } from './sizes.js';
import { chainName, withStore } from './store.js';
import { isTrashEntry, trashDir } from './trash.js';
import { Snapshots } from './snapshots.js';
import { imageBlobs as imageBlobsOf } from './cache.js';
import { containerBusy, containerManifests, containersDir, listContainers } from './containers.js';
import { cacheFileKind } from './layout.js';

export type UsageKind = 'Images' | 'Containers' | 'Build Cache' | 'Base extracts' | 'Step snapshots' | 'Cache mounts' | 'Trash' | 'Unused blobs';

export interface UsageRow {
  type: UsageKind;
  total: number;
  active: number;
  /** Bytes. */
  size: number;
  /** Bytes `gantry prune --all` would free. */
  reclaimable: number;
}

export interface ImageUsage {
  repository: string;
  tag: string;
  /** Config digest (docker's image ID). */
  id: string;
  /** Manifest digest. */
  digest: string;
  created?: string;
  /** Bytes of the image's blobs in the store. */
  size: number;
  /** Of those, bytes of blobs other images use too. */
  sharedSize: number;
  uniqueSize: number;
}

export interface CacheUsage {
  /** The entry's key, or the file's name for the stat caches and snapshots. */
  id: string;
  type: 'layer' | 'empty step' | 'compressed copy' | 'stat cache' | 'snapshot' | 'other';
  size: number;
  created?: string;
  /** Its layer is also an image's. */
  shared: boolean;
}

export interface TreeUsage {
  /** The directory's name: a chain ID, a cache mount's key, a trash entry. */
  id: string;
  size: number;
  active: boolean;
  created?: string;
}

export interface DiskUsage {
  root: string;
  rows: UsageRow[];
  images: ImageUsage[];
  buildCache: CacheUsage[];
  baseExtracts: TreeUsage[];
  cacheMounts: TreeUsage[];
  stepSnapshots: TreeUsage[];
  trash: TreeUsage[];
  /** Working containers' trees (containers/<id>): `id` the container's, active while a command uses it. */
  containers: (TreeUsage & { name: string; image: string })[];
}

/** Apparent bytes of the files under `dir` (not directories), a hard-linked file once. */
export function treeSize(dir: string): number {
  const seen = new Set<string>();
  let total = 0;
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = path.join(d, name);
      let st;
      try {
        st = lstatSync(p, { bigint: false });
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        walk(p);
        continue;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        if (seen.has(key)) continue;
        seen.add(key);
      }
      total += st.size;
    }
  };
  walk(dir);
  return total;
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

export async function diskUsage(root: string, options: { trees?: boolean } = {}): Promise<DiskUsage> {
  return withStore(root, async (store) => {
    const trees = options.trees !== false;
    // Every blob and its size.
    const blobs = new Map<string, number>();
    for (const algorithm of list(path.join(store.root, 'blobs'))) {
      for (const hex of list(path.join(store.root, 'blobs', algorithm))) blobs.set(`${algorithm}:${hex}`, fileSize(path.join(store.root, 'blobs', algorithm, hex)));
    }
    const sizeOf = (digests: Iterable<string>) => {
      let n = 0;
      for (const d of digests) n += blobs.get(d) ?? 0;
      return n;
    };

    // Images: each manifest once, with its names.
    const index = await store.readIndex();
    const byDigest = new Map<string, { descriptor: Descriptor; names: string[] }>();
    for (const d of index.manifests) {
      const e = byDigest.get(d.digest) ?? { descriptor: d, names: [] };
      const name = d.annotations?.[REF_NAME_ANNOTATION];
      if (name) e.names.push(name);
      byDigest.set(d.digest, e);
    }
    const imageBlobs = new Map<string, { blobs: Set<string>; config?: ImageConfig; configDigest?: string }>();
    const collect = async (d: Descriptor, into: Set<string>, info: { config?: ImageConfig; configDigest?: string }): Promise<void> => {
      into.add(d.digest);
      if (!blobs.has(d.digest)) return;
      try {
        if (MANIFEST_TYPES.has(d.mediaType)) {
          const m = await store.readJSON<Manifest>(d.digest);
          into.add(m.config.digest);
          for (const l of m.layers) into.add(l.digest);
          info.configDigest ??= m.config.digest;
          if (!info.config && blobs.has(m.config.digest)) info.config = await store.readJSON<ImageConfig>(m.config.digest);
        } else if (INDEX_TYPES.has(d.mediaType)) {
          const ix = await store.readJSON<Index>(d.digest);
          for (const c of ix.manifests) await collect(c, into, info);
        }
      } catch {
        // a damaged image: its readable blobs are counted (gantry fsck says what is wrong)
      }
    };
    for (const [digest, e] of byDigest) {
      const set = new Set<string>();
      const info: { config?: ImageConfig; configDigest?: string } = {};
      await collect(e.descriptor, set, info);
      imageBlobs.set(digest, { blobs: set, ...info });
    }
    const users = new Map<string, number>();
    for (const { blobs: set } of imageBlobs.values()) for (const b of set) users.set(b, (users.get(b) ?? 0) + 1);
    const allImageBlobs = new Set(users.keys());
    const namedBlobs = new Set<string>();
    for (const [digest, e] of byDigest) if (e.names.length > 0) for (const b of imageBlobs.get(digest)?.blobs ?? []) namedBlobs.add(b);

    const images: ImageUsage[] = [];
    for (const [digest, e] of byDigest) {
      const u = imageBlobs.get(digest) as { blobs: Set<string>; config?: ImageConfig; configDigest?: string };
      const size = sizeOf(u.blobs);
      const sharedSize = sizeOf([...u.blobs].filter((b) => (users.get(b) ?? 0) > 1));
      const base = {
        id: u.configDigest ?? '',
        digest,
        ...(u.config?.created ? { created: u.config.created } : {}),
        size,
        sharedSize,
        uniqueSize: size - sharedSize,
      };
      if (e.names.length === 0) images.push({ repository: '<none>', tag: '<none>', ...base });
      for (const name of e.names) {
        const ref = parseReference(name);
        images.push({ repository: familiarName(ref), tag: ref.tag ?? '<none>', ...base });
      }
    }

    // The build cache.
    const cacheDir = store.layout.cacheDir;
    const buildCache: CacheUsage[] = [];
    const cacheBlobs = new Set<string>();
    for (const name of list(cacheDir)) {
      const file = path.join(cacheDir, name);
      if (isSizeRecord(name)) continue; // a layer's content size (sizes.ts): the images' bookkeeping, a few bytes
      const f = cacheFileKind(name);
      const key = f?.kind === 'entry' ? f.id : undefined;
      if (key) {
        let entry: CacheEntry | undefined;
        try {
          entry = JSON.parse(readFileSync(file, 'utf8')) as CacheEntry;
        } catch {
          entry = undefined;
        }
        const layer = entry?.layer ?? undefined;
        if (layer) cacheBlobs.add(layer.digest);
        const shared = layer ? allImageBlobs.has(layer.digest) : false;
        buildCache.push({
          id: key,
          type: !entry ? 'other' : !layer ? 'empty step' : layerCompression(layer.mediaType) === 'none' ? 'layer' : 'compressed copy',
          size: (layer && !shared ? (blobs.get(layer.digest) ?? 0) : 0) + fileSize(file),
          ...(entry?.created ? { created: entry.created } : {}),
          shared,
        });
        continue;
      }
      const type = name.startsWith('stat-') ? 'stat cache' : name.startsWith('snapshot-') ? 'snapshot' : 'other';
      buildCache.push({ id: name, type, size: fileSize(file), shared: false });
    }
    // A blob two cache entries name is counted once, with every file in cache/ but the size records (the images').
    const cacheOnly = [...cacheBlobs].filter((b) => !allImageBlobs.has(b));
    const buildCacheSize = sizeOf(cacheOnly) + list(cacheDir).filter((f) => !isSizeRecord(f)).reduce((n, f) => n + fileSize(path.join(cacheDir, f)), 0);

    // Base extracts: the chains images in the store start from are in use.
    const chains = new Set<string>();
    for (const u of imageBlobs.values()) if (u.config?.rootfs?.diff_ids) chains.add(chainName(u.config.rootfs.diff_ids));
    const baseExtracts: TreeUsage[] = list(store.rootfsDir)
      .filter((n) => /^[0-9a-f]{64}$/.test(n))
      .map((id) => ({ id, size: trees ? treeSize(path.join(store.rootfsDir, id)) : 0, active: chains.has(id) }));

    const snapshots = new Snapshots(store);
    const stepSnapshots: TreeUsage[] = snapshots.list().map(({ id, meta }) => ({
      id,
      size: trees ? treeSize(path.join(snapshots.dir, id)) : (meta?.bytes ?? 0),
      active: false,
    }));

    const mountsDir = path.join(store.root, 'cache-mounts');
    const cacheMounts: TreeUsage[] = list(mountsDir)
      .filter((n) => !n.endsWith('.lock'))
      .map((id) => ({ id, size: trees ? treeSize(path.join(mountsDir, id)) : 0, active: false }));

    const trash: TreeUsage[] = list(trashDir(store))
      .filter(isTrashEntry)
      .map((id) => {
        const [ms, bytes] = id.split('-') as [string, string];
        return { id, size: Number(bytes), active: false, created: new Date(Number(ms)).toISOString() };
      });

    // Unused blobs: neither an image's nor the cache's.
    const leased = await store.liveLeases();
    for (const t of stepSnapshots) t.active = leased.has(`snapshot:${t.id}`);
    // The images working containers were made from: kept by prune, named or not.
    const heldBlobs = await imageBlobsOf(store, { manifests: containerManifests(store) });
    const containers = listContainers(store).map((c) => ({
      id: c.id,
      name: c.name,
      image: c.image.name,
      size: treeSize(path.join(containersDir(store), c.id, 'rootfs')),
      active: containerBusy(store, c.id),
      created: c.created,
    }));
    const unused = [...blobs.keys()].filter((b) => !allImageBlobs.has(b) && !cacheBlobs.has(b) && !heldBlobs.has(b));
    const unusedLeased = unused.filter((b) => leased.has(b));

    const sum = (xs: readonly { size: number }[]) => xs.reduce((n, x) => n + x.size, 0);
    const distinctImages = byDigest.size;
    const rows: UsageRow[] = [
      {
        type: 'Images',
        total: distinctImages,
        active: [...byDigest.values()].filter((e) => e.names.length > 0).length,
        size: sizeOf(allImageBlobs),
        reclaimable: sizeOf([...allImageBlobs].filter((b) => !namedBlobs.has(b) && !heldBlobs.has(b))),
      },
      {
        type: 'Containers',
        total: containers.length,
        active: containers.filter((c) => c.active).length,
        size: sum(containers) + sizeOf([...heldBlobs].filter((b) => !allImageBlobs.has(b))),
        reclaimable: 0,
      },
      { type: 'Build Cache', total: buildCache.length, active: 0, size: buildCacheSize, reclaimable: buildCacheSize },
      { type: 'Base extracts', total: baseExtracts.length, active: baseExtracts.filter((t) => t.active).length, size: sum(baseExtracts), reclaimable: sum(baseExtracts) },
      {
        type: 'Step snapshots',
        total: stepSnapshots.length,
        active: stepSnapshots.filter((t) => t.active).length,
        size: sum(stepSnapshots),
        reclaimable: sum(stepSnapshots.filter((t) => !t.active)),
      },
      { type: 'Cache mounts', total: cacheMounts.length, active: 0, size: sum(cacheMounts), reclaimable: 0 },
      { type: 'Trash', total: trash.length, active: 0, size: sum(trash), reclaimable: sum(trash) },
      { type: 'Unused blobs', total: unused.length, active: unusedLeased.length, size: sizeOf(unused), reclaimable: sizeOf(unused) - sizeOf(unusedLeased) },
    ];
    return { root: store.root, rows, images, buildCache, baseExtracts, stepSnapshots, cacheMounts, trash, containers };
  });
}
