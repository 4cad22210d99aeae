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
  if (!input.pax) {
    const fast = ustarHeader(input);
    if (fast) return fast;
  }
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

const TYPEFLAGS: Record<string, number> = { file: 0, link: 1, symlink: 2, 'character-device': 3, 'block-device': 4, directory: 5, fifo: 6, 'contiguous-file': 7 };
const OCTAL6 = 0o1000000;
const OCTAL11 = 0o100000000000;
/** ASCII only (a name tar-stream would write as UTF-8 otherwise). */
const ASCII = /^[\x00-\x7f]*$/;
const ZEROS = '00000000000';

/**
 * The ustar header tar-stream's `headers.encode` writes (with pack's defaults), for the common
 * entry: ASCII names that fit their fields, numbers that fit their octal fields. It writes the
 * same bytes (`test/unit/tar-writer.test.ts` compares them, at and around every limit) with a
 * few native string writes and a checksum summed four bytes at a time: a layer of thousands
 * of small files runs this mostly before V8 has optimised it. Anything else is undefined, for
 * tar-stream to encode.
 */
function ustarHeader(h: EntryHeader): Buffer | undefined {
  const type = TYPEFLAGS[h.type ?? 'file'];
  const size = !h.size || h.type === 'symlink' ? 0 : h.size;
  const mode = (h.mode || (h.type === 'directory' ? 0o755 : 0o644)) & 0o7777;
  const uid = h.uid || 0;
  const gid = h.gid || 0;
  const mtime = Math.trunc((h.mtime ?? new Date()).getTime() / 1000);
  const major = h.devmajor ?? 0;
  const minor = h.devminor ?? 0;
  const { name, linkname, uname = '', gname = '' } = h;
  if (
    type === undefined || name.length > 100 || !ASCII.test(name) || (linkname && (linkname.length > 100 || !ASCII.test(linkname))) ||
    uname.length > 31 || gname.length > 31 || !ASCII.test(uname) || !ASCII.test(gname) ||
    !(uid >= 0 && uid < OCTAL6 && gid >= 0 && gid < OCTAL6 && major >= 0 && major < OCTAL6 && minor >= 0 && minor < OCTAL6) ||
    !(size >= 0 && size < OCTAL11 && mtime >= 0 && mtime < 2 ** 31) || !Number.isInteger(size) || !Number.isInteger(uid) || !Number.isInteger(gid)
  ) {
    return undefined;
  }
  // Its own ArrayBuffer, at offset 0: the checksum reads it as 32-bit words.
  const buf = Buffer.alloc(512);
  buf.write(name, 0, 'latin1');
  octal(buf, mode, 6, 100);
  octal(buf, uid, 6, 108);
  octal(buf, gid, 6, 116);
  octal(buf, size, 11, 124);
  octal(buf, mtime, 11, 136);
  buf.write('        ', 148, 'latin1'); // the checksum field counts as spaces
  buf[156] = 0x30 + type;
  if (linkname) buf.write(linkname, 157, 'latin1');
  buf.write('ustar\x0000', 257, 'latin1');
  if (uname) buf.write(uname, 265, 'latin1');
  if (gname) buf.write(gname, 297, 'latin1');
  octal(buf, major, 6, 329);
  octal(buf, minor, 6, 337);
  // The sum of the bytes: two 16-bit lanes per word, which cannot overflow in 128 words.
  const words = new Uint32Array(buf.buffer, buf.byteOffset, 128);
  let lanes = 0;
  for (let i = 0; i < 128; i++) {
    const w = words[i] as number;
    lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
  }
  octal(buf, (lanes & 0xffff) + (lanes >>> 16), 6, 148);
  buf[155] = 0;
  return buf;
}

/** `value` as `digits` octal digits and a space, as tar-stream's encodeOct writes it. */
function octal(buf: Buffer, value: number, digits: number, at: number): void {
  const s = value.toString(8);
  buf.write(ZEROS.slice(0, digits - s.length) + s + ' ', at, 'latin1');
}

/** True when tar-stream uses pax.ts's PAX functions. */
export const installed = (): boolean => headers.encodePax === encodePax && headers.decodePax === decodePax;

export default tar;
