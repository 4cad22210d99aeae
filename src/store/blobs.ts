/**
 * The store's blobs: content written once under blobs/<alg>/<hex>. A blob is written to the work
 * area, synced, verified against its digest and size, then renamed into place, so it is either
 * whole or absent; reads verify too.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fstatSync, openSync, readFileSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StoreError } from '../errors/index.js';
import { crashPerChunk, crashPoint } from '../support/process.js';
import { digestOf, parseDigest, VerifyStream, DigestMismatchError, SizeMismatchError } from '../oci/digest.js';
import { ChunkWriter } from '../tar/writer.js';
import { exists, touch, WorkArea } from './work.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Blobs up to this size are read whole with synchronous calls (readBlob). */
const SMALL_BLOB = 1024 * 1024;

export class Blobs extends WorkArea {
  /** The path of a blob; the digest is validated first, so it can never name another file. */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.layout.blobsDir, algorithm, hex);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  async blobSize(digest: string): Promise<number> {
    try {
      return statSync(this.blobPath(digest)).size;
    } catch (err) {
      throw this.missing(digest, err);
    }
  }

  private missing(digest: string, err: unknown): StoreError {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return new StoreError('BLOB_NOT_FOUND', `blob ${digest} is not in the store ${this.root}`, { cause: err });
    }
    return new StoreError('STORE_IO', `blob ${digest}: ${(err as Error).message}`, { cause: err });
  }

  /**
   * Write a blob. With `expected`, the bytes must match its digest and size or nothing is
   * stored. A blob already present is not written again.
   */
  async writeBlob(data: Buffer | string | Readable | AsyncIterable<Buffer>, expected?: Partial<BlobInfo>): Promise<BlobInfo> {
    if (expected?.digest !== undefined) {
      parseDigest(expected.digest);
      await this.lease(expected.digest);
    }
    if (expected?.digest !== undefined && (await this.hasBlob(expected.digest))) {
      // Drain the source so callers' pipelines finish; the stored copy is already verified.
      if (!(typeof data === 'string' || Buffer.isBuffer(data))) for await (const _ of data) void _;
      const size = await this.blobSize(expected.digest);
      if (expected.size !== undefined && size !== expected.size) {
        throw new SizeMismatchError(expected.digest, expected.size, size);
      }
      touch(this.blobPath(expected.digest));
      return { digest: expected.digest, size };
    }
    const tmp = this.tempPath();
    const verify = new VerifyStream({
      ...(expected?.digest !== undefined ? { digest: expected.digest } : {}),
      ...(expected?.size !== undefined ? { size: expected.size } : {}),
    });
    const source = typeof data === 'string' || Buffer.isBuffer(data) ? Readable.from([Buffer.from(data)]) : Readable.from(data);
    try {
      await pipeline([source, verify, ...crashPerChunk('blob-chunk'), createWriteStream(tmp, { flags: 'wx', mode: 0o644 })]);
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      return await this.commitTemp(tmp, verify.digest, verify.size);
    } catch (err) {
      await rm(tmp, { force: true });
      throw this.ioError(err, `writing a blob to the store ${this.root}`);
    }
  }

  /** A whole, synced temp file named into place as the blob `digest`. */
  private async commitTemp(tmp: string, digest: string, size: number): Promise<BlobInfo> {
    crashPoint?.('blob-temp');
    await this.lease(digest);
    const dest = this.blobPath(digest);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(tmp, dest);
    crashPoint?.('blob-stored');
    return { digest, size };
  }

  /**
   * Write a blob that `produce` lays out in a ChunkWriter (the build's layers: see
   * src/tar/writer.ts). Chunks are hashed and written as they fill. A failed write of the
   * store (a full disk) is reported as such; an error of `produce` itself (a file it could
   * not read) is passed on as it is. Nothing is left behind either way.
   */
  async writeWith(produce: (out: ChunkWriter) => Promise<void>): Promise<BlobInfo> {
    const tmp = this.tempPath();
    const hash = createHash('sha256');
    let storeErr: unknown;
    /** The store's own I/O: its failure is the one to report. */
    const io = <T>(p: Promise<T>): Promise<T> =>
      p.catch((err: unknown) => {
        storeErr = err;
        throw err;
      });
    let fh: FileHandle | undefined;
    try {
      const file = (fh = await io(open(tmp, 'wx', 0o644)));
      const out = new ChunkWriter(
        async (chunk) => {
          hash.update(chunk);
          for (let at = 0; at < chunk.length; ) at += (await io(file.write(chunk, at, chunk.length - at))).bytesWritten;
          crashPoint?.('blob-chunk');
        },
        { reuse: true },
      );
      await produce(out);
      await out.end();
      await io(file.sync());
      fh = undefined;
      await io(file.close());
      return await this.commitTemp(tmp, `sha256:${hash.digest('hex')}`, out.size);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true });
      if (storeErr !== undefined) throw this.ioError(storeErr, `writing a blob to the store ${this.root}`);
      throw err;
    }
  }

  /**
   * Write what a chain of streams produces (a source and its transforms) as a blob. When the
   * store's write fails (a full disk), its error is the one reported, not the torn-down
   * chain's.
   */
  async writeFrom(streams: (NodeJS.ReadableStream | NodeJS.ReadWriteStream)[]): Promise<BlobInfo> {
    const out = new PassThrough();
    const writing = this.writeBlob(out);
    try {
      await Promise.all([pipeline([...streams, out]), writing]);
    } catch (err) {
      out.destroy();
      throw await storeFailure(err, writing);
    }
    return writing;
  }

  async writeJSON(value: unknown): Promise<BlobInfo & { bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value));
    // Summed first: a config or manifest the store has (a rebuild that changed nothing) is not written again.
    const info = await this.writeBlob(bytes, { digest: digestOf(bytes), size: bytes.length });
    return { ...info, bytes };
  }

  /** A verified read stream: errors at the end when the bytes do not hash to the digest. */
  openBlob(digest: string, size?: number): Readable {
    const file = this.blobPath(digest);
    const verify = new VerifyStream({ digest, ...(size !== undefined ? { size } : {}) });
    const input = createReadStream(file);
    input.on('error', (err) => verify.destroy(this.missing(digest, err)));
    verify.on('error', (err) => {
      if (err instanceof DigestMismatchError) {
        Object.assign(err, { message: `corrupted blob in the store ${this.root}: ${err.message}` });
      }
    });
    return input.pipe(verify);
  }

  /**
   * Read a whole (small) blob, verified. Up to 1 MiB (manifests, configs, indexes) it is read
   * with synchronous calls, no stream: a few µs instead of the six thread-pool round trips of
   * stat and a read stream, and a build reads a dozen of these before its first step.
   */
  async readBlob(digest: string, maxSize = 64 * 1024 * 1024): Promise<Buffer> {
    const file = this.blobPath(digest);
    let bytes: Buffer | undefined;
    let size: number;
    try {
      const fd = openSync(file, 'r');
      try {
        size = fstatSync(fd).size;
        if (size <= Math.min(maxSize, SMALL_BLOB)) bytes = readFileSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw this.missing(digest, err);
    }
    if (size > maxSize) throw new StoreError('BLOB_TOO_LARGE', `blob ${digest} is ${size} bytes, more than ${maxSize}`);
    if (bytes === undefined) {
      const chunks: Buffer[] = [];
      for await (const chunk of this.openBlob(digest, size)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }
    const expected = parseDigest(digest);
    const actual = digestOf(bytes, expected.algorithm);
    if (actual !== digest) {
      const err = new DigestMismatchError(digest, actual, `blob ${digest}`);
      throw Object.assign(err, { message: `corrupted blob in the store ${this.root}: ${err.message}` });
    }
    return bytes;
  }

  async readJSON<T>(digest: string): Promise<T> {
    const bytes = await this.readBlob(digest);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (err) {
      throw new StoreError('STORE_JSON', `blob ${digest} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * The error to report when a stream into the store failed: when the store's own write failed
 * (a full disk), the other streams only saw theirs torn down, and the store's error is the
 * one that says what happened.
 */
export async function storeFailure(err: unknown, writing: Promise<unknown>): Promise<unknown> {
  const stored = await writing.then(
    () => undefined,
    (e: unknown) => e,
  );
  return stored instanceof StoreError && stored.code === 'STORE_IO' ? stored : err;
}

