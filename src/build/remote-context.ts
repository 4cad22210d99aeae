/**
 * Build contexts that are not a local directory, as `docker build` takes them:
 *
 * - `-`: standard input, a tar (plain or compressed) that is the context, or else the
 *   Dockerfile itself with an empty context;
 * - a git URL (`https://host/repo.git#ref:subdir`, `git://…`): the repository checked out, the
 *   subdirectory the context;
 * - another http(s) URL: a tar that is the context, or else the Dockerfile itself.
 *
 * Each becomes a directory in a private temp directory, removed when the build ends. Archives
 * are unpacked as archives (a `.wh.` entry is a file like any other), never outside that
 * directory, within the extraction budget; the network rules of ADD apply (no link-local
 * address, loopback only under GANTRY_LOOPBACK_ONLY).
 */
import { mkdir, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { OptionError } from '../errors/index.js';
import { decompress, detectCompression } from '../tar/decompress.js';
import { parseGitRef } from '../dockerfile/gitref.js';
import { applyLayer } from '../rootfs/apply.js';
import { cloneSource, downloadSource, isUrl } from './sources.js';

/**
 * The Dockerfile of a prepared context: the one it came as; else `-f` (standard input as given,
 * any other path inside the context, as docker reads -f with a remote context); else the default.
 */
export function dockerfileIn(prepared: PreparedContext, given: string | undefined): string | undefined {
  if (prepared.dockerfile) return prepared.dockerfile;
  if (given === undefined || given === '-') return given;
  const inside = path.resolve(prepared.context, given);
  if (inside !== prepared.context && !inside.startsWith(prepared.context + path.sep)) throw new OptionError('DOCKERFILE_NOT_FOUND', `-f ${given}: a remote context's Dockerfile must be inside it`);
  return inside;
}

export interface PreparedContext {
  /** The context directory. */
  context: string;
  /** The Dockerfile's path when the source was one (stdin or a URL that is not an archive). */
  dockerfile?: string;
  /** Removes what was made. */
  cleanup: () => Promise<void>;
}

/** Whether `context` names something other than a local directory. */
export function isRemoteContext(context: string): boolean {
  return context === '-' || isUrl(context) || /^git:\/\//i.test(context);
}

/**
 * The context (and maybe the Dockerfile) `context` names, as a local directory. `dockerfile`
 * is the -f given, if any: with a Dockerfile from standard input the context cannot be there too.
 */
export async function prepareContext(context: string, dockerfile: string | undefined, stdin: () => Promise<Buffer> = readStdin): Promise<PreparedContext> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-context-'));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    const out = path.join(dir, 'context');
    if (context === '-') {
      if (dockerfile === '-') throw new OptionError('CONTEXT_INVALID', 'the context and the Dockerfile cannot both be read from standard input');
      return { ...(await fromBytes(await stdin(), dir, out, 'the context from standard input')), cleanup };
    }
    const git = parseGitRef(context);
    if (git) {
      const item = await cloneSource(path.join(dir, 'git'), git, { keepGitDir: git.keepGitDir ?? false, submodules: git.submodules ?? true }, `context ${context}`);
      return { context: item.host, cleanup };
    }
    const item = await downloadSource(path.join(dir, 'download'), context, undefined, `context ${context}`);
    return { ...(await fromBytes(await readFile(item.host), dir, out, `the context ${context}`)), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** A tar (maybe compressed) unpacked into `out`; anything else is the Dockerfile, with `out` empty. */
async function fromBytes(bytes: Buffer, dir: string, out: string, what: string): Promise<Omit<PreparedContext, 'cleanup'>> {
  await mkdir(out, { mode: 0o755 });
  if (looksLikeArchive(bytes)) {
    const { stream } = await decompress(Readable.from([bytes]), what);
    // As an archive, not a layer; the caller's own files, whatever owners the tar names.
    await applyLayer(out, stream, { what, whiteouts: false, chown: false });
    return { context: out };
  }
  const file = path.join(dir, 'Dockerfile');
  const fh = await open(file, 'wx', 0o644);
  try {
    await fh.writeFile(bytes);
  } finally {
    await fh.close();
  }
  return { context: out, dockerfile: file };
}

function looksLikeArchive(bytes: Buffer): boolean {
  if (detectCompression(bytes.subarray(0, 8)) !== 'none') return true;
  return bytes.length >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar';
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
