/**
 * Layers gantry builds are stored uncompressed (a build step writes its tar once, and its
 * digest is its diff ID), as BuildKit and buildah keep uncompressed snapshots. They are
 * compressed when they leave: a push, an OCI layout output. The gzip blob is kept in the store
 * and remembered in the build cache (key: the uncompressed digest), so the next push of the
 * same layer reuses it; `prune --all` forgets it with the rest of the cache.
 *
 * gzip output is deterministic (same bytes in, same level, no timestamp in the header), so
 * the distributable image of a reproducible build is reproducible too.
 */
import { createHash } from 'node:crypto';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import type { Image, Layer } from '../image/image.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import type { Manifest } from '../oci/types.js';
import { LayerCache } from './cache.js';
import { storeFailure, type Store } from './store.js';

/** At most this many layers are compressed at once (zlib runs in libuv's thread pool). */
const PARALLEL = 2;

/**
 * The image as it is pushed or exported: every uncompressed layer replaced by its gzip blob
 * (made now, or found from an earlier push), under a new manifest that is written to the store.
 * An image with no uncompressed layer is returned as it is.
 */
export async function distributable(store: Store, image: Image): Promise<Image> {
  if (!image.layers.some((l) => layerCompression(l.mediaType) === 'none')) return image;
  const cache = new LayerCache(store);
  const layers: Layer[] = new Array<Layer>(image.layers.length);
  const queue = image.layers.map((l, i) => ({ l, i }));
  const workers = Array.from({ length: PARALLEL }, async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const { l, i } = job;
      layers[i] = layerCompression(l.mediaType) === 'none' ? await gzipOf(store, cache, l) : l;
    }
  });
  await Promise.all(workers);
  const manifest: Manifest = {
    ...image.manifest,
    layers: layers.map((l, i) => ({ ...(image.manifest.layers[i] ?? {}), mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const written = await store.writeJSON(manifest);
  return { ...image, digest: written.digest, rawManifest: written.bytes, manifest, layers };
}

async function gzipOf(store: Store, cache: LayerCache, l: Layer): Promise<Layer> {
  const key = createHash('sha256').update(`gzip:${l.digest}`).digest('hex');
  const known = await cache.get(key); // leases the blob when it is there
  let blob = known?.layer ?? undefined;
  if (!blob) {
    const gz = createGzip({ level: 6, chunkSize: 1 << 20 });
    const out = new PassThrough();
    const writing = store.writeBlob(out);
    try {
      await Promise.all([pipeline(store.openBlob(l.digest, l.size), gz, out), writing]);
    } catch (err) {
      out.destroy();
      throw await storeFailure(err, writing);
    }
    const info = await writing;
    blob = { digest: info.digest, size: info.size, diffId: l.diffId, mediaType: MediaType.ociLayerGzip };
    await cache.put(key, { layer: blob, created: new Date().toISOString() });
  }
  return {
    digest: blob.digest,
    size: blob.size,
    mediaType: blob.mediaType,
    diffId: l.diffId,
    open: () => store.openBlob(blob.digest, blob.size),
  };
}
