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
import { GantryError } from '../errors/index.js';
import { execFileAsync } from '../support/process.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import { detectCompression } from '../tar/decompress.js';
import { Deadline, unsafeDestination } from '../registry/client.js';
import type { SourceItem } from './context.js';
import type { GitOptions, GitRef } from '../dockerfile/gitref.js';
import { settings } from '../support/settings.js';

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
  checkRemoteHost(url, what);
  await mkdir(dir, { recursive: true });
  // As BuildKit: the path's last element, or __unnamed__ when the path has none.
  const name = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '') || '__unnamed__';
  const host = path.join(dir, name.replace(/[/\\]/g, '_'));
  // As a registry's blob: an answer within GANTRY_REGISTRY_TIMEOUT, then 1 KiB/s or more over
  // each such period (undici's own timers restart on every chunk: a byte a minute would do).
  const deadline = new Deadline(`GET ${redactUrl(url)}`, redactUrl(url), true, settings.registryTimeout, (message) => new GantryError('ADD_FETCH', `${what}: ${message}`));
  const fh = await open(host, 'w', 0o600).catch(async (err: unknown) => {
    deadline.stop();
    throw err;
  });
  const hash = createHash(checksum?.split(':')[0] ?? 'sha256');
  let res: Response;
  try {
    res = await fetchFollowing(url, what, deadline.signal);
    if (!res.ok || !res.body) throw new GantryError('ADD_FETCH', `${what}: cannot fetch ${redactUrl(url)}: HTTP ${res.status}`);
    deadline.headers();
    await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), async function* (src) {
      for await (const c of src) {
        deadline.count((c as Buffer).length);
        hash.update(c as Buffer);
        yield c as Buffer;
      }
    }, fh.createWriteStream());
  } catch (err) {
    // The deadline's own error, rather than the abort it caused.
    if (deadline.signal.aborted && deadline.signal.reason instanceof GantryError) throw deadline.signal.reason;
    throw err;
  } finally {
    deadline.stop();
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

/** GET `url`, following up to 10 redirects, each checked as the first URL is (checkRemoteHost). */
async function fetchFollowing(url: string, what: string, signal: AbortSignal): Promise<Response> {
  // Credentials in the URL (`https://user:token@host/…`) go as basic authentication, to that
  // origin only, never along a redirect to another.
  const first = new URL(url);
  const auth = first.username || first.password ? `Basic ${Buffer.from(`${decodeURIComponent(first.username)}:${decodeURIComponent(first.password)}`).toString('base64')}` : undefined;
  first.username = '';
  first.password = '';
  let at = first;
  for (let hops = 0; hops <= 10; hops++) {
    const headers = auth && at.origin === first.origin ? { authorization: auth } : undefined;
    const res = await fetch(at, { redirect: 'manual', signal, ...(headers ? { headers } : {}) }).catch((err: Error) => {
      if (signal.aborted && signal.reason instanceof GantryError) throw signal.reason;
      const cause = (err.cause as Error | undefined)?.message ?? err.message;
      throw new GantryError('ADD_FETCH', `${what}: cannot fetch ${redactUrl(url)}: ${redactUrl(cause)}`);
    });
    const next = res.headers.get('location');
    if (res.status < 300 || res.status >= 400 || next === null) return res;
    await res.body?.cancel();
    at = new URL(next, at);
    checkRemoteHost(at.toString(), what);
  }
  throw new GantryError('ADD_FETCH', `${what}: ${redactUrl(url)}: more than 10 redirects`);
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

/**
 * Clone a git source into `dir` with the host's git, as BuildKit's git source does: the ref (a
 * branch, a tag, a full ref name or a commit; the default branch without one) checked out with a
 * detached HEAD, its submodules checked out (unless turned off), its subdirectory taken, `.git`
 * removed unless kept, the checksum compared with the commit. git runs with no user or system
 * configuration and no prompt (no credentials of the host's reach it), only the http(s) and git
 * protocols allowed, for submodules too (one cannot point it at the host's files), and a
 * deadline on a stalled transfer.
 */
export async function cloneSource(dir: string, source: GitRef, options: GitOptions, what: string): Promise<SourceItem> {
  const shown = redactUrl(`${source.remote}${source.ref ? `#${source.ref}` : ''}`);
  checkRemoteHost(source.remote, what);
  await mkdir(dir, { recursive: true });
  const checkout = path.join(dir, 'repo');
  const git = gitRunner(dir, `${what}: cannot clone ${shown}`);
  const target = await resolveRef(git, source, what);
  await fetchCheckout(git, source.remote, checkout, target);
  const head = (await git.run(['-C', checkout, 'rev-parse', 'HEAD'])).trim();
  if (options.checksum !== undefined && !head.startsWith(options.checksum)) {
    throw new GantryError('ADD_CHECKSUM', `${what}: ${shown}: expected checksum to match ${options.checksum}, got ${head}`);
  }
  if (options.submodules) await updateSubmodules(git, checkout, source.remote, what);
  if (!options.keepGitDir) await rm(path.join(checkout, '.git'), { recursive: true, force: true });
  const picked = source.subdir ? (await resolveInRoot(checkout, source.subdir)).host : checkout;
  const st = await lstat(picked).catch(() => undefined);
  if (!st?.isDirectory()) throw new GantryError('ADD_GIT', `${what}: ${source.remote}: no directory ${source.subdir} in ${source.ref ?? 'the default branch'}`);
  const name = path.posix.basename(new URL(source.remote).pathname).replace(/\.git$/, '') || 'repo';
  const identity = JSON.stringify({ remote: source.remote, commit: head, subdir: source.subdir ?? '', ...options, checksum: undefined });
  return { host: picked, rel: name, name, isDir: true, origin: 'url', identity };
}

/** Never a link-local address (where cloud metadata services answer); only loopback hosts under GANTRY_LOOPBACK_ONLY=1. */
function checkRemoteHost(remote: string, what: string): void {
  const unsafe = unsafeDestination(new URL(remote));
  if (unsafe === 'link-local') throw new GantryError('ADD_UNSAFE_HOST', `${what}: refusing to fetch from ${redactUrl(remote)}: a link-local address (where cloud metadata services answer)`);
  if (unsafe === 'not-loopback') {
    throw new GantryError('ADD_LOOPBACK_ONLY', `${what}: refusing to fetch from ${redactUrl(remote)}: GANTRY_LOOPBACK_ONLY=1 allows loopback hosts only`);
  }
}

/** A URL or a message with the credentials of its URLs (`//user:token@`) hidden. */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/)[^/@\s]+@/g, '$1***@');
}

interface GitRunner {
  /** git's stdout; a failure is an error of `failure` (the runner's by default) and the end of git's stderr. */
  run(args: string[], failure?: string): Promise<string>;
  /** Whether git succeeds. */
  ok(args: string[]): Promise<boolean>;
}

/** The host's git, confined: no configuration, no prompt, network protocols only (GIT_ALLOW_PROTOCOL reaches submodules' clones too). */
function gitRunner(home: string, failure: string): GitRunner {
  const env: NodeJS.ProcessEnv = {
    PATH: settings.path,
    HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    GIT_ASKPASS: '/bin/false',
    GIT_ALLOW_PROTOCOL: 'http:https:git',
    GIT_PROTOCOL_FROM_USER: '0',
  };
  // No hooks (a repository's own, or a submodule's trick to plant one), no redirects (the
  // host checks above would be bypassed by one), network protocols only.
  const config = ['-c', 'core.hooksPath=/dev/null', '-c', 'http.followRedirects=false', '-c', 'protocol.allow=never', '-c', 'protocol.https.allow=always', '-c', 'protocol.http.allow=always', '-c', 'protocol.git.allow=always', '-c', 'http.lowSpeedLimit=1', '-c', 'http.lowSpeedTime=120', '-c', 'advice.detachedHead=false'];
  const exec = (args: string[]) => execFileAsync('git', [...config, ...args], { env, timeout: 30 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  return {
    run: (args, what = failure) =>
      exec(args).then(
        (r) => r.stdout,
        (err: unknown) => {
          const detail = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n').slice(-3).join('; ');
          throw new GantryError('ADD_GIT', redactUrl(`${what}: ${detail}`));
        },
      ),
    ok: (args) => exec(args).then(() => true, () => false),
  };
}

const isCommit = (ref: string): boolean => /^([0-9a-f]{40}|[0-9a-f]{64})$/.test(ref);

/** What to check out: a commit as given; else the ref as the remote lists it (a branch before a tag, as BuildKit), or its HEAD. */
async function resolveRef(git: GitRunner, source: GitRef, what: string): Promise<{ commit: string; name?: string }> {
  if (source.ref !== undefined && isCommit(source.ref)) return { commit: source.ref };
  const ref = source.ref ?? 'HEAD';
  const listed = new Map<string, string>();
  for (const line of (await git.run(['ls-remote', '--', source.remote, ref, `${ref}^{}`])).split('\n')) {
    const [sha, name] = line.split('\t');
    if (sha && name) listed.set(name, sha);
  }
  const bare = ref.replace(/^refs\/(heads\/|tags\/)?/, '');
  const candidates = ref === 'HEAD' ? ['HEAD'] : [`refs/${ref.replace(/^refs\//, '')}`, `refs/heads/${bare}`, `refs/tags/${bare}^{}`, `refs/tags/${bare}`];
  const name = candidates.find((c) => listed.has(c));
  if (name === undefined) throw new GantryError('ADD_GIT', `${what}: ${source.remote}: repository does not contain ref ${ref}`);
  return { commit: listed.get(name) as string, name: name.replace(/\^\{\}$/, '') };
}

/**
 * Check `target` out in `checkout`: a branch or a tag one commit deep where the server allows it
 * (not git's dumb HTTP), else the whole history (and the ref itself when it is neither).
 */
async function fetchCheckout(git: GitRunner, remote: string, checkout: string, target: { commit: string; name?: string }): Promise<void> {
  const short = target.name?.match(/^refs\/(?:heads|tags)\/(.+)$/)?.[1];
  const branch = target.name === 'HEAD' ? [] : short !== undefined ? ['--branch', short] : undefined;
  const shallow = branch !== undefined && (await git.ok(['clone', '--quiet', '--no-checkout', '--depth', '1', ...branch, '--', remote, checkout]));
  if (!shallow) {
    await rm(checkout, { recursive: true, force: true });
    await git.run(['clone', '--quiet', '--no-checkout', '--', remote, checkout]);
    // A ref outside branches and tags (refs/pull/1/head...) is not cloned: fetched.
    if (target.name !== undefined && branch === undefined) await git.run(['-C', checkout, 'fetch', '--quiet', 'origin', target.name]);
  }
  await git.run(['-C', checkout, 'checkout', '--quiet', '--detach', target.commit]);
}

/**
 * Check out the submodules (recursively), as BuildKit does by default. Each must be an http(s)
 * or git URL, or a path relative to the repository's URL (so on its server): a submodule naming
 * a path on the host, or ssh, is refused, here for a clear error and by git's allowed protocols
 * for nested ones.
 */
async function updateSubmodules(git: GitRunner, checkout: string, remote: string, what: string): Promise<void> {
  if (!(await lstat(path.join(checkout, '.gitmodules')).catch(() => undefined))?.isFile()) return;
  // git config exits 1 when nothing matches (no url at all); any other failure stops the build.
  const urls = (await git.ok(['-C', checkout, 'config', '--file', '.gitmodules', '--list']))
    ? await git.run(['-C', checkout, 'config', '--file', '.gitmodules', '--get-regexp', '^submodule\\..*\\.url$']).catch(() => '')
    : await git.run(['-C', checkout, 'config', '--file', '.gitmodules', '--list'], `${what}: ${redactUrl(remote)}: cannot read .gitmodules`);
  for (const line of urls.split('\n').filter(Boolean)) {
    const url = line.slice(line.indexOf(' ') + 1);
    const absolute = /^(https?|git):\/\//i.test(url);
    if (!absolute && !/^\.\.?\//.test(url)) {
      throw new GantryError('ADD_GIT', `${what}: ${remote}: refusing submodule URL ${url}: only http(s) and git URLs, or paths relative to the repository's URL, are followed`);
    }
    if (absolute) checkRemoteHost(url, what);
  }
  // One commit deep where the server allows it (not git's dumb HTTP).
  const update = ['-C', checkout, 'submodule', 'update', '--init', '--recursive'];
  if (!(await git.ok([...update, '--depth=1']))) await git.run(update, `${what}: failed to update submodules for ${remote}`);
}
