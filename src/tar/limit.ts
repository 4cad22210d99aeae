/**
 * The extraction budget: how many bytes a decompressed archive or an applied layer may
 * expand to before gantry stops with an error, so a decompression bomb (a few KiB of gzip,
 * bzip2 or xz that expand to terabytes) cannot fill the disk. `GANTRY_EXTRACT_LIMIT` sets it
 * (bytes, or with a K, M, G or T suffix; support/settings.ts reads it); the default is 64 GiB.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { GantryError } from '../errors/index.js';

const human = (n: number): string => {
  for (const [unit, size] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} bytes`;
};

/** Passes bytes through until `limit` is exceeded, then fails naming `what`. */
export class ExtractBudget extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.limit) {
      done(new GantryError('ARCHIVE_TOO_LARGE', `${this.what}: expands to more than ${human(this.limit)}, the extraction limit (GANTRY_EXTRACT_LIMIT raises it)`));
      return;
    }
    done(null, chunk);
  }
}
