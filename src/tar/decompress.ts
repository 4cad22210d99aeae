/**
 * Detect and undo the compression of an archive stream (gzip, bzip2, xz, zstd) by its magic number.
 * gzip runs in-process (zlib); bzip2 and xz run the host's tools from absolute paths,
 * never from a rootfs or $PATH.
 */
import { existsSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import { GantryError } from '../errors/index.js';
import { childProcess, zlib } from '../support/process.js';
import { ExtractBudget } from './limit.js';
import { settings } from '../support/settings.js';

export type ArchiveCompression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

export function detectCompression(head: Buffer): ArchiveCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

const HELPERS: Record<'bzip2' | 'xz' | 'zstd', string[]> = {
  bzip2: ['/usr/bin/bzip2', '/bin/bzip2'],
  xz: ['/usr/bin/xz', '/bin/xz'],
  zstd: ['/usr/bin/zstd', '/bin/zstd'],
};

/**
 * Read enough of `input` to detect the compression, then stream the decompressed bytes, at
 * most `limit` of them (the extraction budget, limit.ts): beyond it the stream fails and a
 * helper process is killed.
 */
export async function decompress(input: Readable, what: string, limit = settings.extractLimit): Promise<{ stream: Readable; compression: ArchiveCompression }> {
  const { stream, compression } = await decompressUnbounded(input, what);
  const budget = new ExtractBudget(limit, what);
  stream.on('error', (err) => budget.destroy(err));
  budget.on('close', () => stream.destroy());
  return { stream: stream.pipe(budget), compression };
}

async function decompressUnbounded(input: Readable, what: string): Promise<{ stream: Readable; compression: ArchiveCompression }> {
  const iterator = input[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const chunks: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < 6 && !done) {
    const r = await iterator.next();
    if (r.done) done = true;
    else {
      chunks.push(Buffer.from(r.value));
      length += r.value.length;
    }
  }
  const head = Buffer.concat(chunks);
  const rest = async function* (): AsyncGenerator<Buffer> {
    if (head.length) yield head;
    if (done) return;
    for (;;) {
      const r = await iterator.next();
      if (r.done) return;
      yield Buffer.from(r.value);
    }
  };
  const raw = Readable.from(rest());
  const compression = detectCompression(head);
  switch (compression) {
    case 'none':
      return { stream: raw, compression };
    case 'gzip':
      return { stream: layerTar(raw, 'gzip', what), compression };
    default:
      return { stream: viaHelper(raw, compression, what), compression };
  }
}

/** `raw` decompressed by the host's program for `compression` (bzip2, xz, zstd). */
function viaHelper(raw: Readable, compression: 'bzip2' | 'xz' | 'zstd', what: string): Readable {
  const helper = HELPERS[compression].find((p) => existsSync(p));
  if (!helper) {
    throw new GantryError('ARCHIVE_COMPRESSION', `${what} is ${compression}-compressed but ${HELPERS[compression][0]} is not installed`);
  }
  const child = childProcess().spawn(helper, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  raw.on('error', (err) => {
    child.kill('SIGKILL');
    out.destroy(err);
  });
  child.stdin.on('error', () => undefined);
  child.on('error', (err) => out.destroy(new GantryError('ARCHIVE_COMPRESSION', `${what}: cannot run ${helper}: ${err.message}`)));
  raw.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('close', (code, signal) => {
    if (code === 0) out.end();
    else out.destroy(new GantryError('ARCHIVE_CORRUPT', `${what}: ${compression} data is corrupt or truncated (${stderr.trim() || `exit ${code ?? signal}`})`));
  });
  out.on('close', () => {
    child.kill('SIGKILL');
    raw.destroy(); // what is left of the source is not read
  });
  return out;
}

/**
 * A layer's tar from its blob, by the compression its media type names (gzip in-process,
 * zstd by the host's zstd): what every reader of layers (a build's rootfs, export, a local
 * output) reads.
 */
export function layerTar(raw: Readable, compression: 'none' | 'gzip' | 'zstd' | undefined, what: string): Readable {
  if (compression === 'gzip') {
    const gunzip = zlib().createGunzip();
    raw.on('error', (err) => gunzip.destroy(err));
    return raw.pipe(gunzip);
  }
  if (compression === 'zstd') return viaHelper(raw, 'zstd', what);
  return raw;
}
