/**
 * PAX records, binary-safe.
 *
 * Extended attributes travel in PAX records named `SCHILY.xattr.<name>` whose values are raw
 * bytes (Go's archive/tar, GNU tar and containerd write them so); read as UTF-8, a capability
 * set such as `cap_setuid` (a 0x80 byte) would become U+FFFD. So xattr values are kept as
 * binary strings (one char per byte, `latin1`) and every other record is UTF-8.
 */

export const XATTR_PREFIX = 'SCHILY.xattr.';

const isBinary = (key: string): boolean => key.startsWith(XATTR_PREFIX);

/** One `<len> <key>=<value>\n` record; the length counts its own digits. */
function record(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let digits = String(body.length).length;
  if (String(body.length + digits).length > digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits), 'utf8'), body]);
}

export function encodePax(opts: { name?: string; linkname?: string; pax?: Record<string, string> }): Buffer {
  const parts: Buffer[] = [];
  if (opts.name) parts.push(record('path', Buffer.from(opts.name, 'utf8')));
  if (opts.linkname) parts.push(record('linkpath', Buffer.from(opts.linkname, 'utf8')));
  for (const [key, value] of Object.entries(opts.pax ?? {})) {
    parts.push(record(key, Buffer.from(value, isBinary(key) ? 'latin1' : 'utf8')));
  }
  return Buffer.concat(parts);
}

export function decodePax(input: Uint8Array): Record<string, string> {
  const result: Record<string, string> = {};
  let buf = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  while (buf.length > 0) {
    const space = buf.indexOf(0x20);
    if (space <= 0) break;
    const len = Number.parseInt(buf.subarray(0, space).toString('latin1'), 10);
    if (!(len > space + 1) || len > buf.length) break;
    const rec = buf.subarray(space + 1, len - 1); // without the trailing newline
    const eq = rec.indexOf(0x3d);
    if (eq === -1) break;
    const key = rec.subarray(0, eq).toString('utf8');
    result[key] = rec.subarray(eq + 1).toString(isBinary(key) ? 'latin1' : 'utf8');
    buf = buf.subarray(len);
  }
  return result;
}

/**
 * The PAX records of an entry read, for writing it again under another header: without those
 * that say its name, link or size (`path`, `linkpath`, `size`), which the new header says; kept,
 * they would follow its records and win over them.
 */
export function carriedPax(pax: Record<string, string> | null | undefined): Record<string, string> | null {
  if (!pax) return null;
  const { path: _path, linkpath: _linkpath, size: _size, ...rest } = pax;
  return Object.keys(rest).length > 0 ? rest : null;
}

/** The xattrs in a tar header's PAX records: name → raw value. */
export function xattrsOf(pax: Record<string, string> | null | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const [key, value] of Object.entries(pax ?? {})) {
    if (isBinary(key) && key.length > XATTR_PREFIX.length) out.set(key.slice(XATTR_PREFIX.length), Buffer.from(value, 'latin1'));
  }
  return out;
}

/** PAX records carrying `xattrs`. */
export function paxOf(xattrs: ReadonlyMap<string, Buffer>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of xattrs) out[XATTR_PREFIX + name] = value.toString('latin1');
  return out;
}

/**
 * The largest owner id gantry writes in a ustar header (6 octal digits, then a space, as
 * tar-stream wrote them: 262,143); beyond it, PAX records.
 */
export const MAX_USTAR_ID = 0o777777;

const paxId = (value: string | undefined): number | undefined => (value !== undefined && /^\d{1,10}$/.test(value) ? Number(value) : undefined);

/** An entry's owner: PAX `uid`/`gid` records win over the header's fields, as POSIX says. */
export function ownerOf(h: { uid?: number; gid?: number; pax?: unknown }): { uid: number; gid: number } {
  const pax = (h.pax ?? {}) as Record<string, string>;
  return { uid: paxId(pax.uid) ?? h.uid ?? 0, gid: paxId(pax.gid) ?? h.gid ?? 0 };
}

/** PAX records for owner ids above MAX_USTAR_ID. */
export function largeIdRecords(h: { uid?: number; gid?: number }): Record<string, string> {
  const out: Record<string, string> = {};
  if ((h.uid ?? 0) > MAX_USTAR_ID) out.uid = String(h.uid);
  if ((h.gid ?? 0) > MAX_USTAR_ID) out.gid = String(h.gid);
  return out;
}
