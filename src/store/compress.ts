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
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import type { ZlibOptions } from 'node:zlib';
import { PassThrough, Transform, type Readable } from 'node:stream';
import pLimit from 'p-limit';
import { zlib } from '../errors/index.js';
import type { Image, Layer } from '../image/image.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import type { Manifest } from '../oci/types.js';
import { LayerCache } from './cache.js';
import type { BlobInfo, Store } from './store.js';

/** At most this many layers are compressed at once (zlib runs in libuv's thread pool). */
const PARALLEL = 2;

let gzipAsync: ((data: Buffer, options: ZlibOptions) => Promise<Buffer>) | undefined;
const gzip = (data: Buffer, options: ZlibOptions): Promise<Buffer> => (gzipAsync ??= promisify(zlib().gzip))(data, options);

export interface DistributableOptions {
  /**
   * Also given each gzip blob made now, as it is made: a push uploads it meanwhile
   * (`uploadWhileMade`). `stored` settles when the blob is in the store. If the consumer fails,
   * it is detached and the blob is still stored whole; it is then uploaded the usual way.
   */
  alongside?: (gzip: Readable, stored: Promise<BlobInfo>) => Promise<void>;
}

/**
 * The image as it is pushed or exported: every uncompressed layer replaced by its gzip blob
 * (made now, or found from an earlier push), under a new manifest that is written to the store.
 * An image with no uncompressed layer is returned as it is.
 */
export async function distributable(store: Store, image: Image, options: DistributableOptions = {}): Promise<Image> {
  if (!image.layers.some((l) => layerCompression(l.mediaType) === 'none')) return image;
  const cache = new LayerCache(store);
  const limit = pLimit(PARALLEL);
  const layers = await Promise.all(image.layers.map((l) => (layerCompression(l.mediaType) === 'none' ? limit(() => gzipOf(store, cache, l, options)) : l)));
  const manifest: Manifest = {
    ...image.manifest,
    layers: layers.map((l, i) => ({ ...(image.manifest.layers[i] ?? {}), mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const written = await store.writeJSON(manifest);
  return { ...image, digest: written.digest, rawManifest: written.bytes, manifest, layers };
}

async function gzipOf(store: Store, cache: LayerCache, l: Layer, options: DistributableOptions): Promise<Layer> {
  // The level is in the key: a blob deflated at another level (by an earlier gantry) is not
  // this gantry's gzip of the layer, so it is made again rather than pushed.
  const key = createHash('sha256').update(`gzip:${GZIP_LEVEL}:${l.digest}`).digest('hex');
  const known = await cache.get(key); // leases the blob when it is there
  let blob = known?.layer ?? undefined;
  if (!blob) {
    const info = await compressInto(store, l, options.alongside);
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

/** The layer's gzip blob written to the store, and handed to `alongside` as it is made. */
async function compressInto(store: Store, l: Layer, alongside: DistributableOptions['alongside']): Promise<BlobInfo> {
  const gzip = parallelGzip();
  if (!alongside) return store.writeFrom([store.openBlob(l.digest, l.size), gzip]);
  // gzip's output goes to the store (through writeFrom's pipeline) and to the consumer: pipe
  // to two destinations, which waits for the slower. A consumer that fails is cut off.
  const copy = new PassThrough();
  copy.on('error', () => undefined); // reported through the consumer's promise
  gzip.pipe(copy);
  const detach = (): void => {
    gzip.unpipe(copy);
    copy.resume(); // what was already in it drains away
  };
  const stored = store.writeFrom([store.openBlob(l.digest, l.size), gzip]);
  stored.catch(() => copy.destroy(new Error('the layer could not be stored')));
  const consumed = alongside(copy, stored).catch(() => detach());
  const info = await stored;
  await consumed;
  return info;
}

/** Bytes per gzip member: big enough that the ratio barely changes, small enough to spread. */
const MEMBER = 4 * 1024 * 1024;

/** Samples a piece is probed with, and their size. */
const PROBES = 4;
const PROBE = 16 * 1024;

/**
 * Whether deflate would gain nothing on `piece`: samples spread over it, compressed at the
 * fastest level, shrink by less than 2%. Already-compressed files (archives, images, packed
 * binaries) look like that; deflate spends as long on them as on text for no gain
 * (40 MB of random bytes: 0.8 s, against 0.06 s stored), and emits them as stored blocks anyway.
 * klauspost's Go gzip, which buildah uses, skips such input in the same spirit.
 */
export function incompressible(piece: Buffer): boolean {
  if (piece.length < PROBES * PROBE * 2) return false;
  for (let i = 0; i < PROBES; i++) {
    const at = Math.floor((piece.length * i) / PROBES);
    const sample = piece.subarray(at, at + PROBE);
    if (zlib().deflateRawSync(sample, { level: 1 }).length < sample.length * 0.98) return false;
  }
  return true;
}

/**
 * The deflate level of the layers gantry compresses. zlib's 4 rather than its default 6: on
 * bigrun's 156 MB layer (a copy of Debian's /usr, and 40 MB of random bytes that are stored),
 * level 6 took 1.58 s, 5 took 1.30 s and 4 took 1.09 s on two cores, for 93.5, 93.6 and
 * 94.4 MB (level 1: 0.9 s, 96.8 MB). Levels 1 to 3 are zlib's fast strategy, 4 and above its
 * lazy one. What matters is the same level every time: a layer's gzip bytes, and so its
 * digest, depend on it (the level is in the key a gzip blob is remembered by).
 */
export const GZIP_LEVEL = 4;

/**
 * gzip on every core: the input is cut into 4 MiB pieces, each compressed as a gzip member of
 * its own in libuv's thread pool, and the members are written in order. A gzip file may hold
 * many members (RFC 1952, 2.2); every reader of layers takes them as one stream (Go's
 * gzip.Reader, zlib, pigz). A piece deflate cannot shrink (`incompressible`) is stored, not
 * compressed. Same input, same output: the pieces and levels do not depend on timing.
 */
export function parallelGzip(level = GZIP_LEVEL): Transform {
  const inFlight: Promise<Buffer>[] = [];
  const limit = Math.max(2, availableParallelism());
  let pending: Buffer[] = [];
  let pendingSize = 0;
  const cut = (): void => {
    const piece = Buffer.concat(pending, pendingSize);
    pending = [];
    pendingSize = 0;
    // One pass in the thread pool, no round trips per 16 KiB.
    inFlight.push(gzip(piece, { level: incompressible(piece) ? 0 : level, chunkSize: MEMBER + 65536 }));
  };
  return new Transform({
    async transform(chunk: Buffer, _enc, done) {
      try {
        let rest = chunk;
        while (pendingSize + rest.length >= MEMBER) {
          const take = MEMBER - pendingSize;
          pending.push(rest.subarray(0, take));
          pendingSize += take;
          rest = rest.subarray(take);
          cut();
          while (inFlight.length >= limit) this.push(await (inFlight.shift() as Promise<Buffer>));
        }
        if (rest.length > 0) {
          pending.push(rest);
          pendingSize += rest.length;
        }
        done();
      } catch (err) {
        done(err as Error);
      }
    },
    async flush(done) {
      try {
        if (pendingSize > 0 || inFlight.length === 0) cut(); // an empty input is one empty member
        while (inFlight.length > 0) this.push(await (inFlight.shift() as Promise<Buffer>));
        done();
      } catch (err) {
        done(err as Error);
      }
    },
  });
}
