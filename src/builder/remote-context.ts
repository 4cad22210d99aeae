/**
 * Build contexts that are not a local directory, as `docker build` takes them:
 *
 * - `-`: standard input, a tar (plain or compressed) that is the context, or else the
 *   Dockerfile itself with an empty context;
 * - a git URL (`https://host/repo.git#ref:subdir`, `git://…`): the repository checked out, the
 *   subdirectory the context;
 * - another http(s) URL: a tar that is the context, or else the Dockerfile itself.
 *
 * Each becomes a directory in a private temp directory, removed when the build ends. What comes
 * in is written to a file there first (never held whole in memory); archives are unpacked as
 * archives (a `.wh.` entry is a file like any other), never outside that directory, within the
 * extraction budget; the network rules of ADD apply (no link-local address, loopback only under
 * GANTRY_LOOPBACK_ONLY). A URL's credentials are never said.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GantryError, OptionError } from '../errors/index.js';
import { decompress } from '../tar/decompress.js';
import { parseGitRef } from '../dockerfile/gitref.js';
import { applyLayer } from '../rootfs/apply.js';
import { cloneSource, downloadSource, isArchive, isUrl, redactUrl } from './sources.js';
import { CONTEXT_FILE_LIMIT, readContextFile } from './context.js';

export interface PreparedContext {
  /** The context directory. */
  context: string;
  /** The Dockerfile's path when the source was one (stdin or a URL that is not an archive). */
  dockerfile?: string;
  /** The private temp directory everything is in. */
  workDir: string;
  /** Removes what was made. */
  cleanup: () => Promise<void>;
}

/** Whether `context` names something other than a local directory. */
export function isRemoteContext(context: string): boolean {
  return context === '-' || isUrl(context) || /^git:\/\//i.test(context);
}

/**
 * The Dockerfile of a prepared context: the one it came as; else `-f` (standard input as given,
 * any other path inside the context, as docker reads -f with a remote context); else the default.
 * Inside the context, a link is followed only within it.
 */
export async function dockerfileIn(prepared: PreparedContext, given: string | undefined): Promise<string | undefined> {
  if (prepared.dockerfile) return prepared.dockerfile;
  if (given === '-') return given;
  const names = given !== undefined ? [given] : ['Dockerfile', 'dockerfile'];
  for (const name of names) {
    const inside = path.resolve(prepared.context, name);
    if (inside !== prepared.context && !inside.startsWith(prepared.context + path.sep)) throw new OptionError('DOCKERFILE_NOT_FOUND', `-f ${given}: a remote context's Dockerfile must be inside it`);
    const rel = path.relative(prepared.context, inside);
    const found = await readContextFile(prepared.context, rel, 'the context');
    if (found) {
      // The text is copied out, so the file read is the one checked (nothing swaps it after),
      // with its own `<name>.dockerignore` beside it when the context has one.
      const copy = path.join(prepared.workDir, 'dockerfile', path.basename(inside));
      await mkdir(path.dirname(copy), { mode: 0o700 });
      await writeNew(copy, found.text);
      const ignore = await readContextFile(prepared.context, `${rel}.dockerignore`, 'the context');
      if (ignore) await writeNew(`${copy}.dockerignore`, ignore.text);
      return copy;
    }
  }
  throw new OptionError('DOCKERFILE_NOT_FOUND', `the context has no ${names.join(' or ')}`);
}

async function writeNew(file: string, text: string): Promise<void> {
  const fh = await open(file, 'wx', 0o600);
  try {
    await fh.writeFile(text);
  } finally {
    await fh.close();
  }
}

/**
 * The context (and maybe the Dockerfile) `context` names, as a local directory. `dockerfile`
 * is the -f given, if any: with a Dockerfile from standard input the context cannot be there too.
 */
export async function prepareContext(context: string, dockerfile: string | undefined, stdin: () => Readable = () => process.stdin): Promise<PreparedContext> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-context-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  const shown = redactUrl(context);
  try {
    const out = path.join(dir, 'context');
    if (context === '-') {
      if (dockerfile === '-') throw new OptionError('CONTEXT_INVALID', 'the context and the Dockerfile cannot both be read from standard input');
      const file = path.join(dir, 'stdin');
      await pipeline(stdin(), createWriteStream(file, { flags: 'wx', mode: 0o600 }));
      return { ...(await fromFile(file, dir, out, 'the context from standard input')), workDir: dir, cleanup };
    }
    const git = parseGitRef(context);
    if (git) {
      const item = await cloneSource(path.join(dir, 'git'), git, { keepGitDir: git.keepGitDir ?? false, submodules: git.submodules ?? true }, `context ${shown}`);
      return { context: item.host, workDir: dir, cleanup };
    }
    const item = await downloadSource(path.join(dir, 'download'), context, undefined, `context ${shown}`);
    return { ...(await fromFile(item.host, dir, out, `the context ${shown}`)), workDir: dir, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A tar (maybe compressed) unpacked into `out`; anything else is the Dockerfile, with `out` empty. */
async function fromFile(file: string, dir: string, out: string, what: string): Promise<Pick<PreparedContext, 'context' | 'dockerfile'>> {
  await mkdir(out, { mode: 0o755 });
  if (await isArchive(file)) {
    const { stream } = await decompress(createReadStream(file), what);
    // As an archive, not a layer; the caller's own files, whatever owners the tar names.
    await applyLayer(out, stream, { what, whiteouts: false, chown: false });
    await rm(file, { force: true });
    return { context: out };
  }
  const fh = await open(file, 'r');
  const size = (await fh.stat()).size;
  await fh.close();
  if (size > CONTEXT_FILE_LIMIT) throw new GantryError('CONTEXT_INVALID', `${what} is neither a tar nor a Dockerfile (${size} bytes)`);
  const dockerfile = path.join(dir, 'Dockerfile');
  await rename(file, dockerfile);
  return { context: out, dockerfile };
}
