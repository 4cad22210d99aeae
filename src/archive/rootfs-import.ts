/**
 * `gantry import`: a root filesystem tarball (plain, gzip, bzip2, xz, zstd) becomes a
 * one-layer image. The tar is rewritten entry by entry (names sanitised, order kept), so
 * what is stored is a clean layer whatever came in; diff ID and blob digest are computed
 * while the bytes stream.
 */
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { entryFrom } from '../tar/tar.js';
import { carriedPax } from '../tar/pax.js';
import { GantryError, isSystemError } from '../errors/index.js';
import { zlib } from '../support/process.js';
import { VerifyStream } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import type { ContainerConfig, Descriptor, ImageConfig } from '../oci/types.js';
import { storeFailure, type Store } from '../store/store.js';
import { writeImage } from '../store/images.js';
import { decompress } from '../tar/decompress.js';
import { sanitizeMemberName } from './sanitize.js';
import type { LayerDescriptor } from '../image/image.js';

export interface RootfsImportOptions {
  /** Shown in errors and in the history comment. */
  source: string;
  os: string;
  architecture: string;
  variant?: string;
  /** RFC 3339 creation time. */
  created: string;
  config?: ContainerConfig;
  /** The history entry's created_by. */
  createdBy?: string;
}

/** Rewrite a tar stream into a gzip layer in the store. */
export async function storeTarAsLayer(store: Store, tarStream: Readable, what: string): Promise<LayerDescriptor> {
  const extract = tar.extract();
  const pack = tar.pack();
  const diff = new VerifyStream();
  const gzip = zlib().createGzip({ level: 6 });
  const compressed = new PassThrough();
  const writing = store.writeBlob(compressed);
  const producing = (async () => {
    for await (const entry of extract) {
      const header = { ...entry.header, pax: carriedPax(entry.header.pax) };
      const name = sanitizeMemberName(header.name, what);
      if (name === '') {
        entry.resume();
        continue;
      }
      header.name = header.type === 'directory' ? name + '/' : name;
      if (header.type === 'link' && header.linkname) header.linkname = sanitizeMemberName(header.linkname, what);
      await entryFrom(pack, header, entry);
    }
    pack.finalize();
  })();
  producing.catch((err: unknown) => pack.destroy(err as Error));
  try {
    await Promise.all([
      pipeline(tarStream, extract).catch((err: unknown) => {
        throw wrapTarError(err, what);
      }),
      producing,
      pipeline(pack, diff, gzip, compressed),
      writing,
    ]);
  } catch (err) {
    compressed.destroy();
    const failure = await storeFailure(err, writing);
    throw failure instanceof GantryError ? failure : wrapTarError(failure, what);
  }
  const blob = await writing;
  return { digest: blob.digest, size: blob.size, diffId: diff.digest, mediaType: MediaType.ociLayerGzip };
}

function wrapTarError(err: unknown, what: string): GantryError {
  if (err instanceof GantryError) return err;
  const msg = (err as Error).message ?? String(err);
  if (isSystemError(err)) return new GantryError('ARCHIVE_IO', `${what}: ${msg}`, { cause: err });
  return new GantryError('ARCHIVE_CORRUPT', `${what}: not a valid tar archive (${msg})`, { cause: err });
}

export async function importRootfs(store: Store, input: Readable, options: RootfsImportOptions): Promise<Descriptor> {
  const { stream } = await decompress(input, options.source);
  const layer = await storeTarAsLayer(store, stream, options.source);
  const config: ImageConfig = {
    created: options.created,
    architecture: options.architecture,
    os: options.os,
    ...(options.variant ? { variant: options.variant } : {}),
    config: options.config ?? {},
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [
      {
        created: options.created,
        created_by: options.createdBy ?? 'gantry import',
        comment: `Imported from ${options.source}`,
      },
    ],
  };
  return writeImage(store, { config, layers: [layer] });
}
