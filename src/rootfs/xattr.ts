/**
 * Extended attributes of files in a rootfs, read and written with the host's `getfattr` and
 * `setfattr` (Debian's `attr` package; Node has no xattr calls). One process handles a whole
 * batch, so a layer costs one or two process starts, not one per file. Both run with `-h`:
 * a symlink's target is never touched, and callers pass only paths whose parents they
 * resolved inside the root.
 *
 * "Where possible": without the tools, or where the kernel refuses (trusted.* or
 * security.capability without privilege, a filesystem without xattrs), attributes are
 * skipped, as containerd skips them.
 */
import { existsSync } from 'node:fs';
import pLimit from 'p-limit';
import { childProcess } from '../support/process.js';
import { kernel } from './kernel.js';

const tool = (name: string): string | undefined => [`/usr/bin/${name}`, `/bin/${name}`].find((p) => existsSync(p));
const GETFATTR = tool('getfattr');
const SETFATTR = tool('setfattr');

/** What BuildKit (containerd's archive writer) records when it writes a layer. */
export const LAYER_XATTR = 'security.capability';
export const LAYER_XATTRS = /^security\.capability$/;

export const xattrToolsPresent = (): boolean => GETFATTR !== undefined && SETFATTR !== undefined;

/** Paths per getfattr run, so the argument list stays far below the kernel's limit (2 MiB here, and usually). */
const BATCH_BYTES = 256 * 1024;
/** getfattr runs at once: each spends most of its time starting. */
const RUNS = 4;

function runTool(cmd: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout?.on('data', (d: Buffer) => out.push(d));
    child.on('error', reject);
    // A missing file or a refused attribute makes the exit status 1; the rest still happened.
    child.on('close', () => resolve(Buffer.concat(out)));
    if (input && child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(input);
    }
  });
}

/** getfattr's quoting: `\ooo` for bytes that are blank, control, non-ASCII, `\` or `=`. */
export function quote(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    out += b <= 0x20 || b >= 0x7f || b === 0x5c || b === 0x3d ? `\\${b.toString(8).padStart(3, '0')}` : String.fromCharCode(b);
  }
  return out;
}

export function unquote(text: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const m = text[i] === '\\' ? /^[0-7]{3}/.exec(text.slice(i + 1, i + 4)) : null;
    if (m) {
      bytes.push(Number.parseInt(m[0], 8));
      i += 3;
    } else {
      bytes.push(text.charCodeAt(i) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

function decodeValue(v: string): Buffer {
  if (v.startsWith('0x')) return Buffer.from(v.slice(2), 'hex');
  if (v.startsWith('0s')) return Buffer.from(v.slice(2), 'base64');
  return Buffer.from(v.replace(/^"|"$/g, ''), 'latin1');
}

/** Parse getfattr's dump (`# file: P` then `name=0x..` lines) into path → name → value. */
export function parseDump(dump: Buffer): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  let current: Map<string, Buffer> | undefined;
  for (const line of dump.toString('latin1').split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      out.set(unquote(line.slice(8)).toString('utf8'), current);
    } else if (current && line !== '' && !line.startsWith('#')) {
      const eq = line.indexOf('=');
      const name = unquote(eq === -1 ? line : line.slice(0, eq)).toString('utf8');
      current.set(name, eq === -1 ? Buffer.alloc(0) : decodeValue(line.slice(eq + 1)));
    }
  }
  return out;
}

/** The attributes matching `names` of each path that has any (a path without any is absent). */
export async function readXattrs(paths: readonly string[], names: RegExp = LAYER_XATTRS): Promise<Map<string, Map<string, Buffer>>> {
  const found = new Map<string, Map<string, Buffer>>();
  if (paths.length === 0) return found;
  const k = names === LAYER_XATTRS ? kernel() : undefined;
  // One name: asked of each path through the kernel helper, no process started (getfattr
  // where the helper fails).
  const values = await k?.getxattr(LAYER_XATTR, paths).catch(() => undefined);
  if (values) {
    for (const [i, value] of values) found.set(paths[i] as string, new Map([[LAYER_XATTR, value]]));
    return found;
  }
  if (!GETFATTR) return found;
  const pattern = names.source;
  const batches: string[][] = [];
  for (let i = 0; i < paths.length; ) {
    const batch: string[] = [];
    let bytes = 0;
    while (i < paths.length && (batch.length === 0 || bytes < BATCH_BYTES)) {
      const p = paths[i++] as string;
      batch.push(p);
      bytes += Buffer.byteLength(p) + 1;
    }
    batches.push(batch);
  }
  // The batches run a few at a time, and their dumps are read in order.
  const limit = pLimit(RUNS);
  const dumps = await Promise.all(batches.map((batch) => limit(() => runTool(GETFATTR, ['--absolute-names', '-h', '-d', '-e', 'hex', '-m', pattern, '--', ...batch]))));
  for (const dump of dumps) for (const [p, attrs] of matching(dump, names)) found.set(p, attrs);
  return found;
}

/** The paths of a getfattr dump that have attributes matching `names`, with those only. */
function* matching(dump: Buffer, names: RegExp): Generator<[string, Map<string, Buffer>]> {
  for (const [p, attrs] of parseDump(dump)) {
    for (const n of [...attrs.keys()]) if (!names.test(n)) attrs.delete(n);
    if (attrs.size > 0) yield [p, attrs];
  }
}

/**
 * The attributes matching `names` of every file under `dir` (one walk of the kernel helper, or
 * one recursive getfattr; neither follows a symbolic link), by path relative to `dir`. The build starts it on an overlay's
 * upper directory as soon as a RUN ends, so it runs on the other core while the snapshot is read.
 */
export async function readXattrsTree(dir: string, names: RegExp = LAYER_XATTRS): Promise<Map<string, Map<string, Buffer>>> {
  const found = new Map<string, Map<string, Buffer>>();
  const k = names === LAYER_XATTRS ? kernel() : undefined;
  const values = await k?.getxattrTree(LAYER_XATTR, dir).catch(() => undefined);
  if (values) {
    for (const [rel, value] of values) found.set(rel, new Map([[LAYER_XATTR, value]]));
    return found;
  }
  if (!GETFATTR) return found;
  const dump = await runTool(GETFATTR, ['--absolute-names', '-R', '-P', '-h', '-d', '-e', 'hex', '-m', names.source, '--', dir]);
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  for (const [p, attrs] of matching(dump, names)) if (p.startsWith(prefix)) found.set(p.slice(prefix.length), attrs);
  return found;
}

/** Set attributes (absolute host path → name → value) in one setfattr run; refusals are skipped. */
export async function writeXattrs(entries: ReadonlyMap<string, ReadonlyMap<string, Buffer>>): Promise<void> {
  if (!SETFATTR || entries.size === 0) return;
  const lines: string[] = [];
  for (const [p, attrs] of entries) {
    if (attrs.size === 0) continue;
    lines.push(`# file: ${quote(Buffer.from(p, 'utf8'))}`);
    for (const [name, value] of attrs) lines.push(`${quote(Buffer.from(name, 'utf8'))}=0x${value.toString('hex')}`);
    lines.push('');
  }
  if (lines.length === 0) return;
  await runTool(SETFATTR, ['-h', '--restore=-'], Buffer.from(lines.join('\n') + '\n', 'latin1'));
}
