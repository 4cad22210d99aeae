/**
 * `gantry load`: a docker-archive (`manifest.json`) or an OCI archive (`index.json`), plain or
 * compressed, into the store. The archive is first written whole, decompressed, to the store's
 * work area (as docker's load unpacks it to a temporary directory), then read as a source of
 * images (read.ts checks every member) and each image written into the store. On any error,
 * what the load added is removed again.
 */
import { closeSync, createReadStream, createWriteStream, openSync, readSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GantryError, isSystemError } from '../errors/index.js';
import { storeImage, storeIndex } from '../store/images.js';
import { imageBlobs } from '../store/cache.js';
import { isIndex } from '../image/image.js';
import type { Store } from '../store/store.js';
import { decompress, detectCompression } from '../tar/decompress.js';
import { ArchiveError, readArchive } from './read.js';

export { ArchiveError } from './read.js';

export interface LoadedImage {
  name?: string;
  /** Config digest (docker's image ID). */
  id: string;
  digest: string;
}

/**
 * Load the archive `input`: a stream, or a file on disk (read in place when it is an
 * uncompressed tar; anything else is first decompressed into the work area).
 */
export async function loadArchive(store: Store, input: Readable | { file: string }, what: string): Promise<LoadedImage[]> {
  const created: string[] = [];
  const spool = store.tempPath('load');
  try {
    let file: string;
    if ('file' in input && plainTar(input.file)) file = input.file;
    else {
      await spoolArchive(store, 'file' in input ? createReadStream(input.file) : input, spool, what);
      file = spool;
    }
    const out: LoadedImage[] = [];
    for (const { image, names } of await readArchive(file, what)) {
      const descriptor = isIndex(image) ? await storeIndex(store, image, created) : await storeImage(store, image, created);
      for (const name of names) await store.tag(name, descriptor);
      if (names.length === 0) await store.addUntagged(descriptor);
      // A multi-platform image's ID is its index's digest (Docker's containerd store).
      const id = isIndex(image) ? image.digest : image.configDigest;
      if (names.length === 0) out.push({ id, digest: image.digest });
      for (const name of names) out.push({ name, id, digest: image.digest });
    }
    return out;
  } catch (err) {
    await discard(store, created);
    throw err;
  } finally {
    await rm(spool, { force: true });
  }
}

/** Whether `file` starts as no compressed stream does. */
function plainTar(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(6);
    return detectCompression(head.subarray(0, readSync(fd, head, 0, 6, 0))) === 'none';
  } catch {
    return false; // not readable as a file: the stream's error says why
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The archive, decompressed (within the extraction budget), into `file`. */
async function spoolArchive(store: Store, input: Readable, file: string, what: string): Promise<void> {
  const { stream } = await decompress(input, what);
  try {
    await pipeline(stream, createWriteStream(file, { mode: 0o600 }));
  } catch (failure) {
    if (failure instanceof GantryError) throw failure;
    if (isSystemError(failure) && (failure.syscall === 'write' || failure.code === 'ENOSPC' || failure.code === 'EDQUOT')) throw store.ioError(failure, `writing the archive to the store ${store.root}`);
    throw isSystemError(failure) ? new ArchiveError('ARCHIVE_IO', `${what}: ${failure.message}`, { cause: failure }) : new ArchiveError('ARCHIVE_CORRUPT', `${what}: not a valid tar archive (${(failure as Error).message})`, { cause: failure });
  }
}

/** Remove blobs this load created that nothing in the index references. */
async function discard(store: Store, created: string[]): Promise<void> {
  if (created.length === 0) return;
  await store.releaseLease();
  await store.withLock(async () => {
    // What the names reach: manifests, configs, layers, and a multi-platform image's platform images.
    // A damaged entry (unreadable) leaves the store as it is: nothing is removed on a guess.
    const referenced = await imageBlobs(store).catch(() => undefined);
    if (!referenced) return;
    const leased = await store.liveLeases();
    for (const digest of created) {
      if (!referenced.has(digest) && !leased.has(digest)) {
        await rm(store.blobPath(digest), { force: true });
      }
    }
  });
}
