/**
 * tar-stream as gantry uses it; every tar gantry reads or writes goes through this import.
 * Two things are changed in it, once, when this module loads:
 *
 * - its PAX encode and decode (called through its `headers` module object, so the
 *   replacement reaches every pack and extract) are pax.ts's binary-safe ones;
 * - owner ids above 2^21 - 1 are written as PAX `uid`/`gid` records (tar-stream alone would
 *   clamp them to 7777777); readers take the owner from `ownerOf`.
 *
 * `installed` is checked by the unit tests, which fail if a tar-stream upgrade moves these.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import tar from 'tar-stream';
import { decodePax, encodePax, largeIdRecords } from './pax.js';

interface HeadersModule {
  encodePax(opts: { name?: string; linkname?: string; pax?: Record<string, string> }): Uint8Array;
  decodePax(buf: Uint8Array): Record<string, string>;
}

const require = createRequire(import.meta.url);
const headers = require(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js')) as HeadersModule;
headers.encodePax = encodePax;
headers.decodePax = decodePax;

type Entry = tar.Pack['entry'];
const proto = Object.getPrototypeOf(tar.pack()) as { entry: Entry };
const entry = proto.entry;
proto.entry = function (this: tar.Pack, header: tar.Header, ...rest: unknown[]) {
  const ids = largeIdRecords(header);
  if (Object.keys(ids).length > 0) header = { ...header, pax: { ...(header.pax ?? {}), ...ids } };
  return (entry as (...a: unknown[]) => ReturnType<Entry>).call(this, header, ...rest);
} as Entry;

/** True when tar-stream uses pax.ts's PAX functions. */
export const installed = (): boolean => headers.encodePax === encodePax && headers.decodePax === decodePax;

export default tar;
