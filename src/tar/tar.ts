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
    const fast = ustarHeader(header);
    if (fast) return fast;
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
const MAGIC = Buffer.from('ustar\x0000', 'latin1');

/** Whether `s` is ASCII and at most `max` characters (then as many bytes). */
function ascii(s: string, max: number): boolean {
  if (s.length > max) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

function put(buf: Buffer, s: string, at: number): void {
  for (let i = 0; i < s.length; i++) buf[at + i] = s.charCodeAt(i);
}

/** `value` as `digits` octal digits and a space, as tar-stream's encodeOct writes it. */
function octal(buf: Buffer, value: number, digits: number, at: number): void {
  for (let i = digits - 1; i >= 0; i--) {
    buf[at + i] = 0x30 + (value % 8);
    value = Math.floor(value / 8);
  }
  buf[at + digits] = 0x20;
}

/**
 * The ustar header tar-stream's `headers.encode` writes, for the common entry: ASCII names
 * that fit their fields, numbers that fit their octal fields. It writes the same bytes
 * (`test/unit/tar-writer.test.ts` compares them, at and around every limit) in a fraction of
 * the time, which counts when a layer has thousands of small files. Anything else is
 * undefined, for tar-stream to encode.
 */
function ustarHeader(h: EntryHeader): Buffer | undefined {
  const type = TYPEFLAGS[h.type as string];
  const mtime = Math.trunc((h.mtime as Date).getTime() / 1000);
  const size = h.size as number;
  const [mode, uid, gid] = [(h.mode as number) & 0o7777, h.uid as number, h.gid as number];
  const [major, minor] = [h.devmajor ?? 0, h.devminor ?? 0];
  if (
    type === undefined || !ascii(h.name, 100) || (h.linkname && !ascii(h.linkname, 100)) || !ascii(h.uname ?? '', 31) || !ascii(h.gname ?? '', 31) ||
    !(uid >= 0 && uid < OCTAL6 && gid >= 0 && gid < OCTAL6 && major >= 0 && major < OCTAL6 && minor >= 0 && minor < OCTAL6) ||
    !(size >= 0 && size < OCTAL11 && mtime >= 0 && mtime < 2 ** 31) || !Number.isInteger(size) || !Number.isInteger(uid) || !Number.isInteger(gid)
  ) {
    return undefined;
  }
  const buf = Buffer.alloc(512);
  put(buf, h.name, 0);
  octal(buf, mode, 6, 100);
  octal(buf, uid, 6, 108);
  octal(buf, gid, 6, 116);
  octal(buf, size, 11, 124);
  octal(buf, mtime, 11, 136);
  buf[156] = 0x30 + type;
  if (h.linkname) put(buf, h.linkname, 157);
  MAGIC.copy(buf, 257);
  if (h.uname) put(buf, h.uname, 265);
  if (h.gname) put(buf, h.gname, 297);
  octal(buf, major, 6, 329);
  octal(buf, minor, 6, 337);
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += buf[i] as number;
  for (let i = 156; i < 512; i++) sum += buf[i] as number;
  octal(buf, sum, 6, 148);
  return buf;
}

/** True when tar-stream uses pax.ts's PAX functions. */
export const installed = (): boolean => headers.encodePax === encodePax && headers.decodePax === decodePax;

export default tar;
