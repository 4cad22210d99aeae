/**
 * The size docker shows for a layer: its unpacked content, the bytes of the regular files in
 * its tar (what Docker's layer store records when it applies a layer: the tar headers' sizes; a
 * hard link adds nothing, directories, links and whiteouts nothing). `docker images`,
 * `docker history` and `docker inspect`'s Size are sums of these, not of the compressed blobs.
 *
 * Pulled and imported layers are stored gzip-compressed, so their content size is not known
 * until they are read; gantry reads a layer's headers once, the first time a size is asked for,
 * and keeps the result in `cache/size-<diff ID hex>.json` (`{"size": N}`), keyed by the diff ID:
 * the content size is a property of the uncompressed tar, whichever blob holds it. A result is
 * kept only when the tar read hashes to the diff ID. A layer that cannot be read (a missing
 * or corrupt blob; zstd without the zstd program) has no content size: callers fall back to its
 * stored size and say so.
 */
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import { layerCompression } from '../oci/media-types.js';
import { layerTar } from '../tar/decompress.js';
import type { Store } from './store.js';
import type { LayerDescriptor } from '../image/image.js';
import { cacheFileKind } from './layout.js';

/** At most this many layers are read at once (gunzip runs in libuv's thread pool). */
const PARALLEL = 2;

/** Whether `name` (in cache/) is a layer size record. */
export const isSizeRecord = (name: string): boolean => cacheFileKind(name)?.kind === 'size';

/** The diff ID a size record is for. */
export const sizeRecordDiffId = (name: string): string | undefined => {
  const f = cacheFileKind(name);
  return f?.kind === 'size' ? `sha256:${f.id}` : undefined;
};

function recordPath(store: Store, diffId: string): string | undefined {
  const hex = /^sha256:([0-9a-f]{64})$/.exec(diffId)?.[1];
  return hex ? store.layout.cachePath('size', hex) : undefined;
}

function readRecord(file: string | undefined): number | undefined {
  if (!file) return undefined;
  try {
    // Synchronous: a small file for each layer of each listed image.
    const size = (JSON.parse(readFileSync(file, 'utf8')) as { size?: unknown }).size;
    return typeof size === 'number' && Number.isSafeInteger(size) && size >= 0 ? size : undefined;
  } catch {
    return undefined;
  }
}

async function writeRecord(store: Store, file: string, size: number): Promise<void> {
  const tmp = store.tempPath('size');
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, JSON.stringify({ size }), { flag: 'wx' });
    await rename(tmp, file);
  } catch {
    // A store that cannot be written (read-only, full): the size is computed again next time.
    await rm(tmp, { force: true }).catch(() => undefined);
  }
}

/**
 * Sums the sizes of a tar's regular files from its headers, skipping the bodies: ustar and
 * GNU headers (octal or base-256 sizes), PAX `size` records, GNU long names. Hashes what it
 * reads when given a hash. A block whose checksum is wrong ends it with an error.
 */
export class TarContentCounter extends Writable {
  total = 0;
  private skip = 0;
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Bytes of a PAX header's body still being collected (its records apply to the next entry). */
  private collecting: number | undefined;
  private collectingPad = 0;
  private paxSize: number | undefined;

  constructor(private readonly hash?: Hash) {
    super();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.hash?.update(chunk);
    try {
      this.feed(chunk);
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  private feed(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - off);
        this.skip -= n;
        off += n;
        continue;
      }
      const need = this.collecting ?? 512;
      const n = Math.min(need - this.pendingLength, chunk.length - off);
      this.pending.push(chunk.subarray(off, off + n));
      this.pendingLength += n;
      off += n;
      if (this.pendingLength < need) continue;
      const block = Buffer.concat(this.pending, this.pendingLength);
      this.pending = [];
      this.pendingLength = 0;
      if (this.collecting !== undefined) {
        this.collecting = undefined;
        this.paxSize = paxSize(block) ?? this.paxSize;
        this.skip = this.collectingPad;
      } else {
        this.header(block);
      }
    }
  }

  private header(h: Buffer): void {
    if (h.every((b) => b === 0)) return; // the end-of-archive blocks
    if (!checksumOk(h)) throw new Error('not a tar archive (a header checksum is wrong)');
    const type = String.fromCharCode(h[156] as number);
    const size = headerSize(h);
    const padded = Math.ceil(size / 512) * 512;
    if (type === 'x') {
      if (size === 0) return;
      this.collecting = size;
      this.collectingPad = padded - size;
      return;
    }
    if (type === 'g' || type === 'L' || type === 'K') {
      this.skip = padded;
      return;
    }
    const actual = this.paxSize ?? size;
    this.paxSize = undefined;
    if (type === '0' || type === '\0' || type === '7') {
      this.total += actual;
      this.skip = Math.ceil(actual / 512) * 512;
    } else {
      this.skip = padded;
    }
  }
}

function checksumOk(h: Buffer): boolean {
  const stored = parseInt(h.subarray(148, 156).toString('latin1').replace(/[\0 ]+/g, ' ').trim(), 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
  return stored === sum;
}

function headerSize(h: Buffer): number {
  const field = h.subarray(124, 136);
  if (((field[0] as number) & 0x80) !== 0) {
    let v = (field[0] as number) & 0x7f;
    for (let i = 1; i < field.length; i++) v = v * 256 + (field[i] as number);
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** The `size` record of a PAX header body (`<len> size=<n>\n`...). */
function paxSize(body: Buffer): number | undefined {
  let i = 0;
  let found: number | undefined;
  while (i < body.length) {
    const space = body.indexOf(0x20, i);
    if (space < 0) break;
    const len = parseInt(body.subarray(i, space).toString('latin1'), 10);
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const record = body.subarray(space + 1, i + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'size' && /^\d+$/.test(record.slice(eq + 1))) found = Number(record.slice(eq + 1));
    i += len;
  }
  return found;
}

/** Read a layer's tar and sum its regular files; undefined when it cannot be read. */
async function countLayer(store: Store, layer: LayerDescriptor): Promise<{ size: number; matches: boolean } | undefined> {
  const compression = layerCompression(layer.mediaType);
  if (compression === undefined) return undefined;
  const hash = compression !== 'none' ? createHash('sha256') : undefined;
  const counter = new TarContentCounter(hash);
  try {
    await pipeline(layerTar(store.openBlob(layer.digest, layer.size), compression, `layer ${layer.digest}`), counter);
  } catch {
    return undefined;
  }
  // An uncompressed blob was verified against its digest while it streamed: it is the tar.
  const matches = hash ? `sha256:${hash.digest('hex')}` === layer.diffId : layer.digest === layer.diffId;
  return { size: counter.total, matches };
}

/** The content sizes of layers, each read once per process. */
export class LayerSizes {
  private readonly known = new Map<string, Promise<number | undefined>>();
  private readonly limit = pLimit(PARALLEL);

  constructor(private readonly store: Store) {}

  /** A layer's content size, or undefined when it cannot be read. */
  of(layer: LayerDescriptor): Promise<number | undefined> {
    let p = this.known.get(layer.diffId);
    if (!p) {
      p = this.compute(layer);
      this.known.set(layer.diffId, p);
    }
    return p;
  }

  private async compute(layer: LayerDescriptor): Promise<number | undefined> {
    const file = recordPath(this.store, layer.diffId);
    const recorded = readRecord(file);
    if (recorded !== undefined) return recorded;
    const counted = await this.limit(() => countLayer(this.store, layer));
    if (!counted) return undefined;
    if (counted.matches && file) await writeRecord(this.store, file, counted.size);
    return counted.size;
  }

  /**
   * The sum of an image's layers' content sizes; a layer that cannot be read counts with its
   * stored size, and `estimated` says that one did.
   */
  async total(layers: readonly LayerDescriptor[]): Promise<{ size: number; estimated: boolean; layers: number[] }> {
    const sizes = await Promise.all(layers.map((l) => this.of(l)));
    return {
      size: sizes.reduce<number>((n, s, i) => n + (s ?? (layers[i] as LayerDescriptor).size), 0),
      estimated: sizes.some((s) => s === undefined),
      layers: sizes.map((s, i) => s ?? (layers[i] as LayerDescriptor).size),
    };
  }
}
