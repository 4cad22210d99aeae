/**
 * Tar headers: the 512-byte ustar block and the PAX pair that precedes an entry whose name,
 * link or owner a ustar block cannot hold. gantry writes and reads every tar through this
 * module (pack.ts, extract.ts, writer.ts).
 *
 * The bytes written are the ones tar-stream's pack wrote, which gantry used before it had its
 * own (so a layer's digest did not change with the switch): numbers as zero-padded octal
 * followed by a space, the checksum as six digits, a space and a NUL, names over 100 bytes
 * split at a slash into the ustar prefix, anything else (a name that is not ASCII or does not
 * split, a link target over 100 bytes, PAX records asked for, an owner id over 6 octal digits)
 * as a PAX header named `PaxHeader` and an entry header of the same name. One exception:
 * tar-stream clamped an owner id of 262,144 to 2^21 - 1 to 262,143 (it writes 6 digits); such
 * ids are PAX records here, as larger ones always were.
 *
 * Reading takes ustar, GNU and PAX archives as Go's archive/tar and GNU tar write them.
 */
import { encodePax, largeIdRecords } from './pax.js';

export type EntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file'
  | 'pax-header'
  | 'pax-global-header'
  | 'gnu-long-link-path'
  | 'gnu-long-path';

/** What a writer says of an entry; the rest takes defaults (a file, 0644 or 0755, root, now). */
export interface EntryHeader {
  name: string;
  size?: number;
  mode?: number;
  mtime?: Date;
  /** null or left out: a file (as a typeflag gantry does not know is written). */
  type?: EntryType | null;
  linkname?: string | null;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string> | null;
}

/** An entry's header as read: PAX and GNU long names applied, `pax` the records that came with it. */
export interface TarHeader {
  name: string;
  size: number;
  mode: number;
  mtime: Date;
  /** null: a typeflag gantry does not know (sparse files, volume labels...). */
  type: EntryType | null;
  linkname: string | null;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
}

export const BLOCK = 512;

/** Zero bytes after `size` bytes of data, to the next block. */
export const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

const TYPEFLAGS: Record<EntryType, number> = {
  file: 0,
  link: 1,
  symlink: 2,
  'character-device': 3,
  'block-device': 4,
  directory: 5,
  fifo: 6,
  'contiguous-file': 7,
  'pax-header': 72,
  'pax-global-header': 55,
  'gnu-long-link-path': 27,
  'gnu-long-path': 28,
};

const TYPES = new Map<number, EntryType>(Object.entries(TYPEFLAGS).map(([type, flag]) => [flag, type as EntryType]));
TYPES.set(30, 'gnu-long-path');

const OCTAL6 = 0o1000000;
const OCTAL11 = 0o100000000000;
/** ASCII only: a name with any other character is written as a PAX record. */
const ASCII = /^[\x00-\x7f]*$/;
const ZEROS = '00000000000';
const SEVENS = '77777777777';

/** `value` as `digits` octal digits and a space; all sevens when it does not fit. */
function octal(buf: Buffer, value: number, digits: number, at: number): void {
  const s = value.toString(8);
  buf.write(s.length > digits ? SEVENS.slice(0, digits) + ' ' : ZEROS.slice(0, digits - s.length) + s + ' ', at, 'latin1');
}

/** The sum of a block's bytes with its checksum field read as spaces. */
function checksum(block: Uint8Array): number {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i] as number;
  for (let i = 156; i < BLOCK; i++) sum += block[i] as number;
  return sum;
}

/** Writes the checksum of a block whose checksum field holds spaces. */
function sealFast(buf: Buffer): Buffer {
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

/**
 * The ustar block of the common entry: ASCII names that fit their fields, numbers that fit
 * their octal fields. A few native string writes and a checksum summed four bytes at a time:
 * a layer of thousands of small files runs this mostly before V8 has optimised it. Anything
 * else is undefined (`ustarBlock` takes it).
 */
function fastBlock(h: EntryHeader): Buffer | undefined {
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
    type === undefined || type > 7 || name.length > 100 || !ASCII.test(name) || (linkname && (linkname.length > 100 || !ASCII.test(linkname))) ||
    uname.length > 31 || gname.length > 31 || !ASCII.test(uname) || !ASCII.test(gname) ||
    !(uid >= 0 && uid < OCTAL6 && gid >= 0 && gid < OCTAL6 && major >= 0 && major < OCTAL6 && minor >= 0 && minor < OCTAL6) ||
    !(size >= 0 && size < OCTAL11 && mtime >= 0 && mtime < 2 ** 31) || !Number.isInteger(size) || !Number.isInteger(uid) || !Number.isInteger(gid)
  ) {
    return undefined;
  }
  // Its own ArrayBuffer, at offset 0: the checksum reads it as 32-bit words.
  const buf = Buffer.alloc(BLOCK);
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
  return sealFast(buf);
}

/** `name` split at a slash into a ustar prefix (155 bytes) and name (100), or undefined. */
function splitName(full: string): { prefix: string; name: string } | undefined {
  if (!ASCII.test(full)) return undefined;
  let name = full;
  let prefix = '';
  while (name.length > 100) {
    const slash = name.indexOf('/');
    if (slash === -1) return undefined;
    prefix += prefix ? '/' + name.slice(0, slash) : name.slice(0, slash);
    name = name.slice(slash + 1);
  }
  return prefix.length > 155 ? undefined : { prefix, name };
}

/** A size that 11 octal digits cannot hold, as GNU's base-256: 0x80, then 11 big-endian bytes. */
function base256(buf: Buffer, value: number, at: number): void {
  buf[at] = 0x80;
  for (let i = 11; i > 0; i--) {
    buf[at + i] = value % 256;
    value = Math.floor(value / 256);
  }
}

/** The ustar block of any entry with defaults filled in, or undefined when its name or link cannot be held. */
function ustarBlock(h: EntryHeader & { name: string; size: number; mode: number; uid: number; gid: number; mtime: Date; type: EntryType }): Buffer | undefined {
  const split = splitName(h.name);
  if (!split || (h.linkname && Buffer.byteLength(h.linkname) > 100)) return undefined;
  const buf = Buffer.alloc(BLOCK);
  const field = (value: string | undefined, at: number, length: number): void => {
    if (value) buf.write(value, at, length, 'utf8');
  };
  field(split.name, 0, 100);
  octal(buf, h.mode & 0o7777, 6, 100);
  octal(buf, h.uid, 6, 108);
  octal(buf, h.gid, 6, 116);
  if (h.size.toString(8).length > 11) base256(buf, h.size, 124);
  else octal(buf, h.size, 11, 124);
  octal(buf, (h.mtime.getTime() / 1000) | 0, 11, 136);
  buf[156] = 0x30 + TYPEFLAGS[h.type];
  field(h.linkname ?? undefined, 157, 100);
  buf.write('ustar\x0000', 257, 'latin1');
  field(h.uname, 265, 32);
  field(h.gname, 297, 32);
  octal(buf, h.devmajor || 0, 6, 329);
  octal(buf, h.devminor || 0, 6, 337);
  field(split.prefix, 345, 155);
  octal(buf, checksum(buf), 6, 148);
  return buf;
}

/**
 * The header block(s) written before an entry's body: one ustar block, or a PAX header, its
 * records (padded to a block) and the entry's block. Not the body's padding.
 */
export function encodeHeader(input: EntryHeader): Buffer {
  if (!input.pax) {
    const fast = fastBlock(input);
    if (fast) return fast;
  }
  const ids = largeIdRecords(input);
  const type = input.type ?? 'file';
  const h = {
    ...input,
    type,
    size: !input.size || type === 'symlink' ? 0 : input.size,
    mode: input.mode || (type === 'directory' ? 0o755 : 0o644),
    uid: input.uid || 0,
    gid: input.gid || 0,
    mtime: input.mtime ?? new Date(),
    pax: Object.keys(ids).length > 0 ? { ...(input.pax ?? {}), ...ids } : input.pax,
  };
  if (!h.pax) {
    const plain = ustarBlock(h);
    if (plain) return plain;
  }
  const records = encodePax({
    name: h.name,
    ...(h.linkname ? { linkname: h.linkname } : {}),
    ...(h.pax ? { pax: h.pax } : {}),
  });
  const paxHeader = {
    name: 'PaxHeader',
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    size: records.byteLength,
    mtime: h.mtime,
    type: 'pax-header' as EntryType,
    ...(h.linkname ? { linkname: 'PaxHeader' } : {}),
    ...(h.uname !== undefined ? { uname: h.uname } : {}),
    ...(h.gname !== undefined ? { gname: h.gname } : {}),
    ...(h.devmajor !== undefined ? { devmajor: h.devmajor } : {}),
    ...(h.devminor !== undefined ? { devminor: h.devminor } : {}),
  };
  const first = ustarBlock(paxHeader) as Buffer;
  const second = ustarBlock({ ...paxHeader, size: h.size, type: h.type }) as Buffer;
  return Buffer.concat([first, records, Buffer.alloc(padding(records.byteLength)), second]);
}

/** A numeric field: octal digits (leading spaces and NULs skipped), or GNU's base-256. */
function readNumber(block: Uint8Array, at: number, length: number): number {
  const field = block.subarray(at, at + length);
  if ((field[0] as number) & 0x80) {
    const negative = field[0] === 0xff;
    if (!negative && field[0] !== 0x80) return Number.NaN;
    let value = 0;
    for (let i = 1; i < field.length; i++) value = value * 256 + (negative ? 0xff - (field[i] as number) : (field[i] as number));
    return negative ? -value - 1 : value;
  }
  let start = 0;
  while (start < field.length && field[start] === 0x20) start++;
  let end = field.indexOf(0x20, start);
  if (end === -1) end = field.length;
  while (start < end && field[start] === 0) start++;
  if (start === end) return 0;
  return Number.parseInt(Buffer.from(field.buffer, field.byteOffset + start, end - start).toString('latin1'), 8);
}

/** A string field, up to its first NUL. */
export function readString(block: Uint8Array, at: number, length: number): string {
  const field = Buffer.from(block.buffer, block.byteOffset + at, length);
  const nul = field.indexOf(0);
  return field.toString('utf8', 0, nul === -1 ? length : nul);
}

const USTAR = Buffer.from('ustar\x00', 'latin1');
const GNU = Buffer.from('ustar ', 'latin1');
const GNU_VERSION = Buffer.from(' \x00', 'latin1');

/**
 * One header block, read; null for a block of zeros (the end-of-archive marker, which readers
 * skip). Throws on a wrong checksum or a block that is not ustar or GNU.
 */
export function decodeHeader(block: Uint8Array): TarHeader | null {
  const sum = checksum(block);
  if (sum === 8 * 0x20) return null;
  if (sum !== readNumber(block, 148, 8)) throw new Error('invalid tar header: wrong checksum (a corrupt archive, or one still compressed?)');
  const b = Buffer.from(block.buffer, block.byteOffset, BLOCK);
  let name = readString(block, 0, 100);
  if (b.subarray(257, 263).equals(USTAR)) {
    if (block[345]) name = readString(block, 345, 155) + '/' + name;
  } else if (!(b.subarray(257, 263).equals(GNU) && b.subarray(263, 265).equals(GNU_VERSION))) {
    throw new Error('invalid tar header: neither ustar nor GNU');
  }
  const flag = block[156] === 0 ? 0 : (block[156] as number) - 0x30;
  // Old tars mark a directory with a trailing slash on a file entry.
  const type = flag === 0 && name.endsWith('/') ? 'directory' : (TYPES.get(flag) ?? null);
  return {
    name,
    mode: readNumber(block, 100, 8),
    uid: readNumber(block, 108, 8),
    gid: readNumber(block, 116, 8),
    size: readNumber(block, 124, 12),
    mtime: new Date(1000 * readNumber(block, 136, 12)),
    type,
    linkname: block[157] === 0 ? null : readString(block, 157, 100),
    uname: readString(block, 265, 32),
    gname: readString(block, 297, 32),
    devmajor: readNumber(block, 329, 8),
    devminor: readNumber(block, 337, 8),
    pax: null,
  };
}
