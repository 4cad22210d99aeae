/**
 * Sources of COPY/ADD that are not plain paths: heredoc bodies (inline files) and ADD's
 * URLs (downloaded, `--checksum` verified, mode 0600 as docker does); and ADD's local
 * archives, which are extracted instead of copied.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GantryError } from '../errors/index.js';
import { detectCompression } from '../archive/decompress.js';
import { isLoopback } from '../registry/client.js';
import type { SourceItem } from './context.js';

export function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Write heredoc bodies as files named after their delimiters. */
export async function inlineSources(dir: string, inline: { name: string; content: string }[]): Promise<Map<string, SourceItem>> {
  await mkdir(dir, { recursive: true });
  const out = new Map<string, SourceItem>();
  for (const doc of inline) {
    const host = path.join(dir, doc.name.replace(/\//g, '_'));
    await writeFile(host, doc.content, { mode: 0o644 });
    out.set(doc.name, { host, rel: doc.name, name: doc.name, isDir: false, origin: 'inline' });
  }
  return out;
}

/** Download an ADD URL into `dir`; the name is the URL's last path component. */
export async function downloadSource(dir: string, url: string, checksum: string | undefined, what: string): Promise<SourceItem> {
  const u = new URL(url);
  if (process.env.GANTRY_LOOPBACK_ONLY === '1' && !isLoopback(u.host)) {
    throw new GantryError('ADD_LOOPBACK_ONLY', `${what}: refusing to fetch ${url}: GANTRY_LOOPBACK_ONLY=1 allows loopback hosts only`);
  }
  await mkdir(dir, { recursive: true });
  const name = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '') || 'download';
  const host = path.join(dir, name.replace(/[/\\]/g, '_'));
  const res = await fetch(url, { redirect: 'follow' });
  if (!res.ok || !res.body) throw new GantryError('ADD_FETCH', `${what}: cannot fetch ${url}: HTTP ${res.status}`);
  const fh = await open(host, 'w', 0o600);
  const hash = createHash(checksum?.split(':')[0] ?? 'sha256');
  try {
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), async function* (src) {
      for await (const c of src) {
        hash.update(c as Buffer);
        yield c as Buffer;
      }
    }, fh.createWriteStream());
  } finally {
    await fh.close().catch(() => undefined);
  }
  if (checksum) {
    const actual = `${checksum.split(':')[0]}:${hash.digest('hex')}`;
    if (actual !== checksum) throw new GantryError('ADD_CHECKSUM', `${what}: ${url} has checksum ${actual}, expected ${checksum}`);
  }
  return { host, rel: name, name, isDir: false, origin: 'url' };
}

/** Whether a local file is an archive ADD extracts (tar, possibly compressed). */
export async function isArchive(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    const head = buf.subarray(0, bytesRead);
    if (detectCompression(head) !== 'none') return true;
    return bytesRead >= 262 && head.subarray(257, 262).toString('latin1') === 'ustar';
  } finally {
    await fh.close();
  }
}

export function openFile(p: string): Readable {
  return createReadStream(p);
}
