/** save, load and export as the API offers them: files or standard streams, atomic output files. */
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { GantryError, OptionError } from '../errors/index.js';
import { resolveImage } from '../store/images.js';
import { withStore } from '../store/store.js';
import { exportImage } from './export.js';
import { loadArchive, type LoadedImage } from './load.js';
import { saveImages, type SaveFormat, type SaveItem } from './save.js';

/** Write to `file` through a temp file beside it, renamed into place only when complete. */
export async function toFile(file: string | Writable, write: (out: Writable) => Promise<void>): Promise<void> {
  if (typeof file !== 'string') return write(file);
  if (file === '-') return write(process.stdout);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  // Opened before anything is written: a directory that does not exist is an error that names
  // the file, not a stream error with no listener.
  const handle = await open(tmp, 'wx').catch((err: NodeJS.ErrnoException) => {
    throw new GantryError('OUTPUT_OPEN', `cannot write ${file}: ${err.code === 'ENOENT' ? `${path.dirname(file)} does not exist` : err.message}`, { cause: err });
  });
  try {
    await write(handle.createWriteStream());
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export interface SaveOptions {
  root: string;
  images: string[];
  /** A path, `-` for standard output, or a stream. */
  output: string | Writable;
  format?: SaveFormat;
}

export async function save(options: SaveOptions): Promise<void> {
  if (options.images.length === 0) throw new OptionError('SAVE_NOTHING', 'save needs at least one image');
  return withStore(options.root, async (store) => {
    const items: SaveItem[] = [];
    for (const ref of options.images) {
      const { image, index, names, entry } = await resolveImage(store, ref);
      // A name given on the command line is saved under that name only; an ID saves all its names.
      const chosen = entry.name !== undefined && names.includes(entry.name) && !/^(sha256:)?[0-9a-f]{4,64}$/.test(ref) ? [entry.name] : names;
      items.push({ image: index ?? image, names: chosen });
    }
    await toFile(options.output, (out) => saveImages(items, out, options.format ?? 'docker'));
  });
}

export interface LoadOptions {
  root: string;
  /** A path, `-` for standard input, or a stream. */
  input: string | Readable;
}

export async function load(options: LoadOptions): Promise<LoadedImage[]> {
  return withStore(options.root, async (store) => {
    if (typeof options.input !== 'string') return loadArchive(store, options.input, 'archive');
    if (options.input === '-') return loadArchive(store, process.stdin, 'standard input');
    const file = options.input;
    // Opened first, for a clear error when it cannot be read; the load reads it in place.
    const probe = createReadStream(file);
    await new Promise<void>((resolve, reject) => {
      probe.once('open', () => resolve());
      probe.once('error', (err) => reject(new OptionError('LOAD_SOURCE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : err.message}`)));
    });
    probe.destroy();
    return loadArchive(store, { file }, file);
  });
}

export interface ExportOptions {
  root: string;
  image: string;
  output: string | Writable;
}

export async function exportRootfs(options: ExportOptions): Promise<void> {
  return withStore(options.root, async (store) => {
    const { image } = await resolveImage(store, options.image);
    await toFile(options.output, (out) => exportImage(image, out));
  });
}
