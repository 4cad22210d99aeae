/**
 * The build context: .dockerignore rules (BuildKit's semantics, matched in linear time: ignore.ts),
 * source paths resolved inside the context (a symlink given as a source is followed inside
 * the context; `..` cannot leave it), Docker-style globs, and a content checksum for the
 * cache key (names, modes, link targets, contents — never times).
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, createReadStream, fstatSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import { GantryError, OptionError } from '../errors/index.js';
import { components, resolveInRoot } from '../rootfs/resolve.js';
import { readXattrs } from '../rootfs/xattr.js';
import { ignoreMatcher, IgnorePatternError, readIgnoreLines } from './ignore.js';
import { StatCache } from './statcache.js';

/**
 * Whether a path (relative to the source root: the context, a stage's rootfs) is left out; `item`
 * is the relative path of the COPY source it was found under (`--exclude` patterns are matched
 * from there).
 */
export type IgnoreFilter = (rel: string, item?: string) => boolean;

/** lstat, synchronous (microseconds, where fs/promises costs a thread-pool round trip); undefined when it fails. */
function lstatOrNone(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

/** The most a Dockerfile or .dockerignore read from a context may be. */
export const CONTEXT_FILE_LIMIT = 4 * 1024 * 1024;

/**
 * A small file of a context (its Dockerfile, its .dockerignore), read safely: `rel` resolved
 * inside `root` (a link leads nowhere outside it), and only a regular file no larger than
 * CONTEXT_FILE_LIMIT is read (a FIFO or a device is refused, never waited on). Undefined when
 * there is no such file.
 */
export async function readContextFile(root: string, rel: string, what: string): Promise<{ path: string; text: string } | undefined> {
  const { host } = await resolveInRoot(root, rel);
  // Non-blocking: opening a FIFO does not wait for a writer; no link is followed at the end.
  // Synchronous, as the store's small reads are (a no-op rebuild loads no fs/promises).
  let fd: number;
  try {
    fd = openSync(host, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new OptionError('CONTEXT_FILE', `${what}: cannot read ${rel}: ${code === 'ELOOP' ? 'a link' : (err as Error).message}`);
  }
  try {
    return { path: host, text: readSmallFile(fd, rel, what) };
  } finally {
    closeSync(fd);
  }
}

/** A regular file of at most CONTEXT_FILE_LIMIT bytes, read from its descriptor. */
function readSmallFile(fd: number, name: string, what: string): string {
  const st = fstatSync(fd);
  if (!st.isFile()) throw new OptionError('CONTEXT_FILE', `${what}: ${name} is not a regular file`);
  if (st.size > CONTEXT_FILE_LIMIT) throw new OptionError('CONTEXT_FILE', `${what}: ${name} is larger than ${CONTEXT_FILE_LIMIT} bytes`);
  return readFileSync(fd, 'utf8');
}

/** A file the caller named (`<Dockerfile>.dockerignore` beside a `-f` file): only a regular file within the limit is read. */
async function readGivenFile(file: string): Promise<string | undefined> {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    return readSmallFile(fd, file, 'the Dockerfile\'s ignore file');
  } finally {
    closeSync(fd);
  }
}

/**
 * Rules from `<Dockerfile>.dockerignore` beside the Dockerfile, else `<context>/.dockerignore`
 * (read inside the context: a link there cannot lead out of it, a FIFO is refused, not waited on).
 */
export async function loadIgnore(context: string, dockerfile?: string): Promise<IgnoreFilter> {
  const read: [string, () => Promise<string | undefined>][] = [
    ...(dockerfile && dockerfile !== '-' ? [[`${dockerfile}.dockerignore`, () => readGivenFile(`${dockerfile}.dockerignore`)] as [string, () => Promise<string | undefined>]] : []),
    [path.join(context, '.dockerignore'), async () => (await readContextFile(context, '.dockerignore', `the context ${context}`))?.text],
  ];
  for (const [file, reader] of read) {
    const text = await reader();
    if (text === undefined) continue;
    const lines = text.split(/\r?\n/);
    checkIgnorePatterns(file, lines);
    let ignores: (rel: string) => boolean;
    try {
      ignores = ignoreMatcher(readIgnoreLines(lines));
    } catch (err) {
      if (err instanceof IgnorePatternError) throw new GantryError('DOCKERIGNORE_PATTERN', `${file}: ${err.message}`);
      throw err;
    }
    return (rel: string) => rel !== '' && ignores(rel);
  }
  return () => false;
}

/**
 * The patterns Docker refuses: `!` alone, and one Go's filepath.Match cannot compile (an open
 * `[`, a trailing backslash). BuildKit fails the build on them; so does gantry, naming the file.
 */
function checkIgnorePatterns(file: string, lines: string[]): void {
  for (const line of lines) {
    let pattern = line.trim();
    if (pattern === '' || pattern.startsWith('#')) continue;
    if (pattern.startsWith('!')) {
      pattern = pattern.slice(1).trim();
      if (pattern === '') throw new GantryError('DOCKERIGNORE_PATTERN', `${file}: illegal exclusion pattern: "!"`);
    }
    if (!goPatternCompiles(pattern)) throw new GantryError('DOCKERIGNORE_PATTERN', `${file}: syntax error in pattern: ${JSON.stringify(line.trim())}`);
  }
}

/** Whether Go's filepath.Match accepts the pattern: classes closed, escapes complete, ranges ordered. */
function goPatternCompiles(pattern: string): boolean {
  let i = 0;
  /** One character of a class (Go's getEsc): `-` and `]` are not, an escape is the next one. */
  const classChar = (): string | undefined => {
    let c = pattern[i];
    if (c === undefined || c === '-' || c === ']') return undefined;
    if (c === '\\') {
      c = pattern[++i];
      if (c === undefined) return undefined;
    }
    i++;
    return c;
  };
  for (; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      if (++i >= pattern.length) return false;
    } else if (c === '[') {
      i++;
      if (pattern[i] === '^') i++;
      for (let n = 0; ; n++) {
        if (pattern[i] === ']' && n > 0) break;
        const lo = classChar();
        if (lo === undefined) return false;
        if (pattern[i] === '-') {
          i++;
          const hi = classChar();
          if (hi === undefined || hi < lo) return false;
        }
      }
    }
  }
  return true;
}

export interface SourceItem {
  /** Host path of the source. */
  host: string;
  /** Path relative to the source root, for the checksum and messages. */
  rel: string;
  /** The name the item gets at the destination (basename of the source as given). */
  name: string;
  isDir: boolean;
  /** Where a non-path source came from (never extracted by ADD). */
  origin?: 'url' | 'inline';
  /** `COPY --parents`: the path it keeps under the destination. */
  parentPath?: string;
  /** What stands for its content in the cache key (a git checkout: its commit and options, as its kept .git differs from clone to clone). */
  identity?: string;
}

const GLOB = /[*?[]/;

function globToRegex(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('^') || body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else if (c === '\\' && i + 1 < pattern.length) re += '\\' + (pattern[++i] as string);
    else re += c.replace(/[.+^${}()|]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/**
 * Resolve COPY/ADD sources in a source root (the context, a stage's rootfs, an image's).
 * `ignore` filters context files; `fromContext` makes `..` that leaves the root an error.
 */
export async function resolveSources(
  root: string,
  sources: string[],
  ignore: IgnoreFilter,
  what: string,
  fromContext: boolean,
  /** `**` matches any number of components (COPY --parents, as BuildKit's include patterns); else it is `*`, as in Docker 28.5's COPY. */
  doubleStar = false,
): Promise<SourceItem[]> {
  const out: SourceItem[] = [];
  for (const src of sources) {
    const parts = components(src);
    if (fromContext) {
      let depth = 0;
      for (const p of parts) {
        depth += p === '..' ? -1 : 1;
        if (depth < 0) throw new GantryError('COPY_OUTSIDE_CONTEXT', `${what}: "${src}" is outside the build context`);
      }
    }
    if (GLOB.test(src)) {
      // A pattern that matches nothing copies nothing, as in BuildKit 28 (a named path must exist).
      out.push(...(await globIn(root, parts.filter((p) => p !== '..'), ignore, doubleStar)));
      continue;
    }
    const { host, inner } = await resolveInRoot(root, src);
    const rel = inner.slice(1);
    const st = lstatOrNone(host);
    if (!st || (fromContext && rel !== '' && ignore(rel))) {
      // Worded as BuildKit words it ("/path": not found), with where it was looked for.
      throw new GantryError('COPY_NO_SOURCE', `${what}: "${path.posix.resolve('/', src)}": not found${fromContext ? ' in the build context (or excluded by .dockerignore)' : ''}`);
    }
    // Named as given, not as resolved: `COPY link.html /d/` makes /d/link.html, as BuildKit does.
    const given = path.posix.resolve('/', src);
    out.push({ host, rel, name: given === '/' ? '' : path.posix.basename(given), isDir: st.isDirectory() });
  }
  return out;
}

async function globIn(root: string, parts: string[], ignore: IgnoreFilter, doubleStar: boolean): Promise<SourceItem[]> {
  // Every directory read and every match is resolved inside the root: a context symlink on the
  // way (`sub -> /etc`) never leads the walk to the host.
  let current: string[] = [''];
  for (const part of parts) {
    // A set: `**/**` reaches a directory along several ways, each match is copied once.
    const next = new Set<string>();
    for (const rel of current) {
      if (!GLOB.test(part)) {
        next.add(rel ? `${rel}/${part}` : part);
        continue;
      }
      if (doubleStar && part === '**') {
        for (const d of [rel, ...(await directoriesUnder(root, rel))]) next.add(d);
        continue;
      }
      const re = globToRegex(part);
      const { host } = await resolveInRoot(root, rel || '/');
      const names = await readdir(host).catch(() => [] as string[]);
      for (const n of names.sort()) if (re.test(n)) next.add(rel ? `${rel}/${n}` : n);
    }
    current = [...next];
  }
  const out: SourceItem[] = [];
  for (const rel of current) {
    const { host, inner } = await resolveInRoot(root, rel);
    const st = await lstat(host).catch(() => undefined);
    if (!st || ignore(rel) || ignore(inner.slice(1))) continue;
    out.push({ host, rel: inner.slice(1), name: path.posix.basename(rel), isDir: st.isDirectory() });
  }
  return out;
}

/** Every directory below `rel` (not following symlinks), resolved inside the root, sorted. */
async function directoriesUnder(root: string, rel: string): Promise<string[]> {
  const out: string[] = [];
  const { host } = await resolveInRoot(root, rel || '/');
  const entries = await readdir(host, { withFileTypes: true }).catch(() => []);
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (!e.isDirectory()) continue;
    const child = rel ? `${rel}/${e.name}` : e.name;
    out.push(child, ...(await directoriesUnder(root, child)));
  }
  return out;
}

/**
 * A checksum of everything copying these sources depends on: names, types, modes, owners, link
 * targets, contents (not times, as BuildKit's content sums). Contents come from `stats` when a
 * file is unchanged since it was last hashed; the others are read in parallel. With `tree` (the
 * sources are another stage's files, which a copy keeps as they are), also which files are hard
 * links to one another, device numbers, and the capabilities a layer would record.
 */
export async function checksumSources(items: SourceItem[], ignore: IgnoreFilter, stats: StatCache = StatCache.none(), options: { tree?: boolean; owners?: boolean } = {}): Promise<string> {
  // A COPY from the context gives its files root's ownership (or --chown's, in its key already):
  // who owns them on this host is no input of it, and a CI runner's checkout user differs from
  // another's (BuildKit's context transfer sets them to 0 too).
  const owners = options.owners ?? true;
  // Walk first (names, modes, links, in order; synchronous calls: a stat is microseconds),
  // then hash what the stat cache does not know, in parallel, then fold in walk order.
  const parts: (string | Promise<string>)[] = [];
  const limit = pLimit(16);
  /** With `tree`: the first path seen of each multiply linked file, and the files whose capabilities count. */
  const linked = new Map<string, string>();
  const files: { host: string; rel: string }[] = [];
  const visit = (host: string, rel: string, item: string): void => {
    const st = lstatSync(host);
    parts.push(owners ? `${rel}\0${st.mode}\0${st.uid}:${st.gid}\0` : `${rel}\0${st.mode}\0`);
    if (options.tree) {
      if (st.isCharacterDevice() || st.isBlockDevice()) parts.push(`D${st.rdev}\0`);
      if (st.isFile()) files.push({ host, rel });
      if (!st.isDirectory() && st.nlink > 1) {
        const id = `${st.dev}:${st.ino}`;
        const first = linked.get(id);
        if (first !== undefined) parts.push(`H${first}\0`);
        else linked.set(id, rel);
      }
    }
    if (st.isSymbolicLink()) parts.push(`L${readlinkSync(host)}\0`);
    else if (st.isFile()) {
      const known = stats.lookup(host, st);
      parts.push(
        known !== undefined
          ? `F${st.size}:${known}\0`
          : limit(async () => {
              const sum = await fileSum(host, st.size);
              stats.record(host, st, sum);
              return `F${st.size}:${sum}\0`;
            }),
      );
    } else if (st.isDirectory()) {
      for (const n of readdirSync(host).sort()) {
        const childRel = rel ? `${rel}/${n}` : n;
        if (ignore(childRel, item)) continue;
        visit(path.join(host, n), childRel, item);
      }
    }
  };
  for (const item of items) {
    parts.push(`item\0${item.name}\0`);
    if (item.identity !== undefined) parts.push(`I${item.identity}\0`);
    else visit(item.host, item.rel, item.rel);
  }
  if (files.length > 0) {
    const caps = await readXattrs(files.map((f) => f.host));
    for (const f of files) {
      for (const [name, value] of [...(caps.get(f.host) ?? new Map<string, Buffer>())].sort(([a], [b]) => (a < b ? -1 : 1))) parts.push(`X${f.rel}\0${name}\0${value.toString('hex')}\0`);
    }
  }
  const h = createHash('sha256');
  for (const p of await Promise.all(parts)) h.update(p);
  return h.digest('hex');
}

async function fileSum(file: string, size: number): Promise<string> {
  // One read for a small file; a stream for a big one.
  if (size <= 1 << 20) return createHash('sha256').update(await readFile(file)).digest('hex');
  const h = createHash('sha256');
  for await (const c of createReadStream(file, { highWaterMark: 1 << 20 })) h.update(c as Buffer);
  return h.digest('hex');
}
