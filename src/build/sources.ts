/**
 * Sources of COPY/ADD that are not plain paths: heredoc bodies (inline files), ADD's URLs
 * (downloaded, `--checksum` verified, mode 0600 as docker does) and git repositories (cloned
 * with the host's git); and ADD's local archives, which are extracted instead of copied.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execFileAsync, GantryError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';
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
  // As BuildKit: the path's last element, or __unnamed__ when the path has none.
  const name = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '') || '__unnamed__';
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
  // Dated as the server dates it (Last-Modified), as BuildKit dates a download.
  const modified = Date.parse(res.headers.get('last-modified') ?? '');
  if (Number.isFinite(modified)) await utimes(host, new Date(modified), new Date(modified));
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

/** A git source of ADD, in BuildKit's forms: an http(s) URL whose path ends in `.git`, or `git://`; `#ref[:subdir]`. */
export interface GitSource {
  remote: string;
  ref?: string;
  subdir?: string;
}

/** `src` as a git source, or undefined when it is none (ssh forms are an error: not supported yet). */
export function parseGitSource(src: string, what: string): GitSource | undefined {
  const hash = src.indexOf('#');
  const remote = hash < 0 ? src : src.slice(0, hash);
  const fragment = hash < 0 ? '' : src.slice(hash + 1);
  let git = false;
  if (/^https?:\/\//i.test(remote)) {
    try {
      git = new URL(remote).pathname.endsWith('.git');
    } catch {
      git = false;
    }
  } else if (/^git:\/\//i.test(remote)) git = true;
  else if (/^ssh:\/\//i.test(remote) || /^[\w.-]+@[\w.-]+:/.test(remote)) {
    throw new GantryError('ADD_GIT', `${what}: ${src}: a git repository over ssh is not supported yet (use its https:// or git:// URL)`);
  }
  if (!git) return undefined;
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : fragment.slice(colon + 1);
  return { remote, ...(ref ? { ref } : {}), ...(subdir ? { subdir } : {}) };
}

/**
 * Clone a git source into `dir` with the host's git, as BuildKit's git source does: the ref (a
 * branch, a tag or a commit; the default branch without one) checked out, its subdirectory
 * taken, `.git` removed unless kept, `--checksum` compared with the commit. git runs with no
 * user or system configuration and no prompt (no credentials of the host's reach it), only the
 * http(s) and git protocols allowed (a submodule cannot point it at the host's files), and a
 * deadline on a stalled transfer.
 */
export async function cloneSource(dir: string, source: GitSource, options: { keepGitDir: boolean; checksum?: string }, what: string): Promise<SourceItem> {
  const url = new URL(source.remote);
  const shown = `${source.remote}${source.ref ? `#${source.ref}` : ''}`;
  if (process.env.GANTRY_LOOPBACK_ONLY === '1' && !isLoopback(url.host)) {
    throw new GantryError('ADD_LOOPBACK_ONLY', `${what}: refusing to clone ${source.remote}: GANTRY_LOOPBACK_ONLY=1 allows loopback hosts only`);
  }
  await mkdir(dir, { recursive: true });
  const checkout = path.join(dir, 'repo');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
  };
  const config = ['-c', 'protocol.allow=never', '-c', 'protocol.https.allow=always', '-c', 'protocol.http.allow=always', '-c', 'protocol.git.allow=always', '-c', 'http.lowSpeedLimit=1', '-c', 'http.lowSpeedTime=120', '-c', 'advice.detachedHead=false'];
  const git = (args: string[]) => execFileAsync('git', [...config, ...args], { env, timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  const fail = (err: unknown): never => {
    const detail = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').slice(-3).join('; ');
    throw new GantryError('ADD_GIT', `${what}: cannot clone ${shown}: ${detail}`);
  };
  const commit = source.ref !== undefined && /^[0-9a-f]{40}$/i.test(source.ref);
  // A branch or tag: one commit deep where the server allows it; else, or for a commit, the whole history.
  const shallow = commit ? undefined : await git(['clone', '--quiet', '--depth', '1', ...(source.ref ? ['--branch', source.ref] : []), '--', source.remote, checkout]).catch(() => undefined);
  if (!shallow) {
    await rm(checkout, { recursive: true, force: true });
    await git(['clone', '--quiet', '--no-checkout', '--', source.remote, checkout]).catch(fail);
    await git(['-C', checkout, 'checkout', '--quiet', source.ref ?? 'HEAD']).catch(fail);
  }
  const head = (await git(['-C', checkout, 'rev-parse', 'HEAD']).catch(fail)).stdout.trim();
  if (options.checksum !== undefined && !head.startsWith(options.checksum.replace(/^sha1:/, ''))) {
    throw new GantryError('ADD_CHECKSUM', `${what}: ${shown} is commit ${head}, expected ${options.checksum}`);
  }
  if (!options.keepGitDir) await rm(path.join(checkout, '.git'), { recursive: true, force: true });
  const picked = source.subdir ? (await resolveInRoot(checkout, source.subdir)).host : checkout;
  const st = await lstat(picked).catch(() => undefined);
  if (!st?.isDirectory()) throw new GantryError('ADD_GIT', `${what}: ${source.remote}: no directory ${source.subdir} in ${source.ref ?? 'the default branch'}`);
  const name = path.posix.basename(url.pathname).replace(/\.git$/, '') || 'repo';
  return { host: picked, rel: name, name, isDir: true, origin: 'url' };
}
