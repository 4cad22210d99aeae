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
import { existsSync } from 'node:fs';
import { GantryError } from '../errors/index.js';
import { childProcess, zlib } from '../support/process.js';
import { decompress } from '../tar/decompress.js';
import type { Image, ImageIndex, Layer } from '../image/image.js';
import { layerCompression, MediaType, type Compression } from '../oci/media-types.js';
import type { Index, Manifest } from '../oci/types.js';
import { LayerCache } from './cache.js';
import type { BlobInfo, Store } from './store.js';

/** At most this many layers are compressed at once (zlib runs in libuv's thread pool). */
const PARALLEL = 2;

let gzipAsync: ((data: Buffer, options: ZlibOptions) => Promise<Buffer>) | undefined;
const gzip = (data: Buffer, options: ZlibOptions): Promise<Buffer> => (gzipAsync ??= promisify(zlib().gzip))(data, options);

/**
 * How layers leave the store (an output's `compression=`, `compression-level=`,
 * `force-compression=`, `oci-mediatypes=`, as BuildKit's image exporters take them).
 */
export interface LayerFormat {
  /** Default gzip. */
  compression?: 'gzip' | 'zstd' | 'uncompressed';
  /** gzip 0-9 (default GZIP_LEVEL), zstd 1-22 (default 3). */
  level?: number;
  /** Recompress layers already compressed another way (pulled ones); default: they are kept. */
  force?: boolean;
  /** false: Docker's schema 2 media types (with zstd, OCI's all the same, as BuildKit); default: the image's own. */
  ociMediaTypes?: boolean;
}

export interface DistributableOptions {
  /**
   * Also given each blob compressed now, as it is made: a push uploads it meanwhile
   * (`uploadWhileMade`). `stored` settles when the blob is in the store. If the consumer fails,
   * it is detached and the blob is still stored whole; it is then uploaded the usual way.
   */
  alongside?: (blob: Readable, stored: Promise<BlobInfo>) => Promise<void>;
  format?: LayerFormat;
}

const ZSTD_LEVEL = 3;
const ZSTD = ['/usr/bin/zstd', '/bin/zstd'];

/** What a layer of compression `c` is called, in OCI's or Docker's media types. */
function layerType(c: Compression, oci: boolean): string {
  if (c === 'zstd') return MediaType.ociLayerZstd;
  if (c === 'gzip') return oci ? MediaType.ociLayerGzip : MediaType.dockerLayerGzip;
  return oci ? MediaType.ociLayer : 'application/vnd.docker.image.rootfs.diff.tar';
}

/** Refuse what BuildKit cannot write either, before any work. */
export function checkFormat(format: LayerFormat): void {
  const c = format.compression ?? 'gzip';
  if (format.level !== undefined) {
    const [lo, hi] = c === 'zstd' ? [1, 22] : c === 'gzip' ? [0, 9] : [0, 0];
    if (c === 'uncompressed') throw new GantryError('OUTPUT_INVALID', 'compression-level= has no meaning with compression=uncompressed');
    if (!Number.isInteger(format.level) || format.level < lo || format.level > hi) throw new GantryError('OUTPUT_INVALID', `compression-level=${format.level}: ${c} takes ${lo} to ${hi}`);
  }
}

/**
 * The image as it is pushed or exported: its layers in the wanted compression (gzip unless
 * told otherwise), each made now or found from an earlier push, under a new manifest that is
 * written to the store. Layers already compressed another way (pulled) are kept unless
 * `force`. An image that needs no change is returned as it is.
 */
export async function distributable(store: Store, image: Image, options: DistributableOptions = {}): Promise<Image> {
  const format = options.format ?? {};
  checkFormat(format);
  const want: Compression = format.compression === 'uncompressed' ? 'none' : (format.compression ?? 'gzip');
  // zstd has no Docker media type: BuildKit turns OCI media types on for it, and so does gantry.
  const oci = want === 'zstd' && format.ociMediaTypes === false ? true : format.ociMediaTypes;
  const changes = (l: Layer): boolean => {
    const have = layerCompression(l.mediaType);
    return have === 'none' ? want !== 'none' : format.force === true && have !== want;
  };
  const retyped = (l: Layer): Layer => (oci === undefined ? l : { ...l, mediaType: layerType(layerCompression(l.mediaType) ?? 'gzip', oci) });
  if (!image.layers.some(changes) && oci === undefined) return image;
  const cache = new LayerCache(store);
  const limit = pLimit(PARALLEL);
  const layers = await Promise.all(image.layers.map((l) => (changes(l) ? limit(() => recompressed(store, cache, l, want, format.level, oci ?? true, options)) : retyped(l))));
  const manifest: Manifest = {
    ...image.manifest,
    ...(oci === undefined ? {} : { mediaType: oci ? MediaType.ociManifest : MediaType.dockerManifest }),
    ...(oci === undefined ? {} : { config: { ...image.manifest.config, mediaType: oci ? MediaType.ociConfig : MediaType.dockerConfig } }),
    layers: layers.map((l, i) => ({ ...(image.manifest.layers[i] ?? {}), mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const written = await store.writeJSON(manifest);
  return { ...image, digest: written.digest, rawManifest: written.bytes, manifest, mediaType: manifest.mediaType ?? image.mediaType, layers };
}

/**
 * A multi-platform image with each platform image as `distributable` makes it, under an index
 * (written to the store) that names them: the same index when nothing changed. The index keeps
 * its own fields and each descriptor's (annotations, `os.version`); a manifest that changed with
 * its layers is named by its new digest; one the store does not hold (another platform of a
 * pulled index, an attestation) is left out, since it cannot go where this image goes.
 */
export async function distributableIndex(store: Store, ix: ImageIndex, options: DistributableOptions = {}): Promise<ImageIndex> {
  const images: Image[] = [];
  for (const image of ix.images) images.push(await distributable(store, image, options));
  const oci = options.format?.ociMediaTypes;
  const mediaType = oci === undefined ? ix.mediaType : oci ? MediaType.ociIndex : MediaType.dockerManifestList;
  const made = new Map(ix.images.map((im, i) => [im.digest, images[i] as Image]));
  const manifests = ix.index.manifests.flatMap((d) => {
    const im = made.get(d.digest);
    return im ? [{ ...d, mediaType: im.mediaType, digest: im.digest, size: im.rawManifest.length }] : [];
  });
  if (mediaType === ix.mediaType && manifests.length === ix.index.manifests.length && manifests.every((d, i) => d.digest === ix.index.manifests[i]?.digest)) return ix;
  const index: Index = { ...ix.index, mediaType, manifests };
  const written = await store.writeJSON(index);
  return { digest: written.digest, mediaType, rawIndex: written.bytes, index, images };
}

/** A layer's blob in compression `want` (`none`: its tar), from the cache or made now. */
async function recompressed(store: Store, cache: LayerCache, l: Layer, want: Compression, level: number | undefined, oci: boolean, options: DistributableOptions): Promise<Layer> {
  const lvl = want === 'gzip' ? (level ?? GZIP_LEVEL) : want === 'zstd' ? (level ?? ZSTD_LEVEL) : 0;
  // The algorithm and level are in the key: a blob made otherwise (by an earlier gantry, or
  // another level) is not this layer's blob in that form, so it is made again.
  const key = createHash('sha256').update(`${want}:${lvl}:${l.digest}`).digest('hex');
  const mediaType = layerType(want, oci);
  const known = await cache.get(key); // leases the blob when it is there
  let blob = known?.layer ?? undefined;
  if (!blob) {
    const info = await compressInto(store, l, want, lvl, options.alongside);
    blob = { digest: info.digest, size: info.size, diffId: l.diffId, mediaType };
    await cache.put(key, { layer: blob, created: new Date().toISOString() });
  }
  const found = blob;
  return { digest: found.digest, size: found.size, mediaType, diffId: l.diffId, open: () => store.openBlob(found.digest, found.size) };
}

/** The layer's tar, whatever it is stored as. */
async function tarOf(store: Store, l: Layer): Promise<Readable> {
  const raw = store.openBlob(l.digest, l.size);
  if (layerCompression(l.mediaType) === 'none') return raw;
  return (await decompress(raw, `layer ${l.digest}`)).stream;
}

/** A compressor of `want` at `level` (none: the bytes as they are). */
function compressor(want: Compression, level: number): Transform {
  if (want === 'gzip') return parallelGzip(level);
  if (want === 'none') return new PassThrough();
  return zstdCompressor(level);
}

/**
 * The host's zstd as a Transform: bytes in to its standard input, its output out. It runs in a
 * process group of its own (a Ctrl-C at the terminal is gantry's to act on, not zstd's); if it
 * fails or exits early, the stream fails with what it said, and it is killed when the stream
 * ends early.
 */
function zstdCompressor(level: number): Transform {
  const bin = ZSTD.find((p) => existsSync(p));
  if (!bin) throw new GantryError('TOOL_MISSING', 'compression=zstd needs the zstd program (Debian package zstd)');
  const child = childProcess().spawn(bin, ['-q', '-c', `-${level}`, ...(level > 19 ? ['--ultra'] : [])], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let flushed: ((err?: Error) => void) | undefined;
  const failure = (): Error => new GantryError('COMPRESS_FAILED', `zstd failed (${exited?.signal ?? `exit ${exited?.code}`})${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
  const input = child.stdin as NodeJS.WritableStream;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (exited) return done(failure());
      if (input.write(chunk)) done();
      else input.once('drain', () => done());
    },
    flush(done) {
      if (exited) return done(exited.code === 0 ? undefined : failure());
      flushed = done;
      input.end();
    },
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => t.push(d));
  child.on('error', (err) => t.destroy(new GantryError('COMPRESS_FAILED', `cannot run zstd: ${err.message}`)));
  (input as unknown as { on(e: 'error', f: () => void): void }).on('error', () => undefined); // EPIPE: said by the exit below
  child.on('close', (code, signal) => {
    exited = { code, signal };
    if (flushed) flushed(code === 0 ? undefined : failure());
    else if (code !== 0) t.destroy(failure());
  });
  t.on('close', () => {
    if (!exited) child.kill('SIGKILL');
  });
  return t;
}

/** The layer's blob in `want` written to the store, and handed to `alongside` as it is made. */
async function compressInto(store: Store, l: Layer, want: Compression, level: number, alongside: DistributableOptions['alongside']): Promise<BlobInfo> {
  const source = await tarOf(store, l);
  const made = compressor(want, level);
  if (!alongside) return store.writeFrom([source, made]);
  // The compressor's output goes to the store (through writeFrom's pipeline) and to the
  // consumer: pipe to two destinations, which waits for the slower. A consumer that fails is cut off.
  const copy = new PassThrough();
  copy.on('error', () => undefined); // reported through the consumer's promise
  made.pipe(copy);
  const detach = (): void => {
    made.unpipe(copy);
    copy.resume(); // what was already in it drains away
  };
  const stored = store.writeFrom([source, made]);
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
