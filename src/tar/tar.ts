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
import tar from 'tar-stream';
import { decodePax, encodePax, largeIdRecords } from './pax.js';
import headers from './tar-headers.js';

/** What a pack entry's header may say (tar-stream fills in the rest). */
export type EntryHeader = Parameters<tar.Pack['entry']>[0];

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

/**
 * The header block(s) tar-stream's pack writes before an entry's body, for writers that lay
 * out a tar themselves (src/tar/writer.ts): the same defaults, the same ustar header or PAX
 * header pair, so both give the same bytes. Pads the PAX body; not the entry's body.
 */
export function encodeHeader(input: EntryHeader): Buffer {
  const ids = largeIdRecords(input);
  const header: EntryHeader = Object.keys(ids).length > 0 ? { ...input, pax: { ...(input.pax ?? {}), ...ids } } : { ...input };
  if (!header.size || header.type === 'symlink') header.size = 0;
  header.type ??= 'file';
  if (!header.mode) header.mode = header.type === 'directory' ? 0o755 : 0o644;
  if (!header.uid) header.uid = 0;
  if (!header.gid) header.gid = 0;
  if (!header.mtime) header.mtime = new Date();
  if (!header.pax) {
    const plain = headers.encode(header);
    if (plain) return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
  }
  const pax = headers.encodePax({
    name: header.name,
    ...(header.linkname ? { linkname: header.linkname } : {}),
    ...(header.pax ? { pax: header.pax as Record<string, string> } : {}),
  });
  const paxHeader: Record<string, unknown> = {
    name: 'PaxHeader',
    mode: header.mode,
    uid: header.uid,
    gid: header.gid,
    size: pax.byteLength,
    mtime: header.mtime,
    type: 'pax-header',
    ...(header.linkname ? { linkname: 'PaxHeader' } : {}),
    ...(header.uname !== undefined ? { uname: header.uname } : {}),
    ...(header.gname !== undefined ? { gname: header.gname } : {}),
    ...(header.devmajor !== undefined ? { devmajor: header.devmajor } : {}),
    ...(header.devminor !== undefined ? { devminor: header.devminor } : {}),
  };
  const first = headers.encode(paxHeader) as Uint8Array;
  const second = headers.encode({ ...paxHeader, size: header.size, type: header.type }) as Uint8Array;
  const pad = (512 - (pax.byteLength % 512)) % 512;
  return Buffer.concat([first, pax, Buffer.alloc(pad), second]);
}

/** True when tar-stream uses pax.ts's PAX functions. */
export const installed = (): boolean => headers.encodePax === encodePax && headers.decodePax === decodePax;

export default tar;
