import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { type Pack } from '../tar/tar.js';

/**
 * Stream a tar into `out`: `fill` adds the entries; the archive is finalised when it
 * returns, and torn down (with `out`) when it throws.
 */
export async function writeTar(out: Writable, fill: (pack: Pack) => Promise<void>): Promise<void> {
  const pack = tar.pack();
  const done = pipeline(pack, out);
  try {
    await fill(pack);
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => undefined);
    throw err;
  }
  await done;
}
