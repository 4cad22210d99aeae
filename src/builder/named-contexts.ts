/**
 * Named contexts (`docker build --build-context NAME=VALUE`): what takes the place of an image
 * or a stage called NAME, as BuildKit resolves them.
 *
 * - `docker-image://REF`: the image REF instead (`docker-image://scratch`: nothing);
 * - `oci-layout://PATH[:TAG][@DIGEST]`: the image in an OCI layout directory on this host;
 * - a local directory, or a git URL (checked out): files that COPY --from=NAME reads, with the
 *   directory's own .dockerignore; another http(s) URL: one file named `context`, as BuildKit
 *   fetches it.
 *
 * An image context is planned as that image (the plan's reference is REF, or the oci-layout
 * value, which `obtainImage` loads from the layout); a directory is planned as a context of
 * its own (CopySource `{ type: 'context', name }`).
 */
import { chmod, lstat, mkdir, mkdtemp, open, rename, rm } from 'node:fs/promises';
import { constants, createReadStream, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GantryError, OptionError } from '../errors/index.js';
import type { Image } from '../image/image.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../oci/media-types.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import type { Descriptor, Index, Manifest } from '../oci/types.js';
import { parseDigest } from '../oci/digest.js';
import { indexProblem, manifestProblem, MANIFEST_SIZE_LIMIT, parseDocument } from '../oci/document.js';
import { parseGitRef } from '../dockerfile/gitref.js';
import { contextKey, type NamedContextRef } from '../plan/planner.js';
import { loadImage } from '../store/images.js';
import type { Store } from '../store/store.js';
import { loadIgnore, type IgnoreFilter } from './context.js';
import { isRemoteContext, prepareContext } from './remote-context.js';
import { downloadSource, redactUrl } from './sources.js';

/** A directory named context, ready to read. */
export interface NamedDir {
  root: string;
  ignore: IgnoreFilter;
}

export interface NamedContexts {
  /** What the planner is told, by contextKey. */
  plan: Record<string, NamedContextRef>;
  /** The directories, by contextKey. */
  dirs: Map<string, NamedDir>;
  /** Removes what was fetched (URL contexts). */
  cleanup: () => Promise<void>;
}

const OCI_LAYOUT = 'oci-layout://';

/** Whether a plan's image reference is an oci-layout value (loaded by `layoutImage`). */
export const isLayoutRef = (ref: string): boolean => ref.startsWith(OCI_LAYOUT);

/** `--build-context NAME=VALUE` items → NAME → VALUE (a name given twice is refused). */
export function parseBuildContexts(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const name = eq < 0 ? '' : item.slice(0, eq);
    const value = eq < 0 ? '' : item.slice(eq + 1);
    if (!name || !value) throw new OptionError('BUILD_CONTEXT_INVALID', `--build-context ${item}: expected NAME=VALUE (a directory, docker-image://REF, oci-layout://PATH, or a URL)`);
    if (out[name] !== undefined) throw new OptionError('BUILD_CONTEXT_INVALID', `--build-context ${name} given twice`);
    out[name] = value;
  }
  return out;
}

/** What the planner is told of named contexts, without fetching anything (for a dry run). */
export function namedContextRefs(specs: Readonly<Record<string, string>>): Record<string, NamedContextRef> {
  const out: Record<string, NamedContextRef> = {};
  for (const [name, value] of Object.entries(specs)) {
    const bad = badContext(name, value);
    if (value.startsWith('docker-image://')) {
      const ref = value.slice('docker-image://'.length);
      if (!ref) throw bad('no image after docker-image://');
      out[contextKey(name)] = { type: 'image', ref };
    } else if (value.startsWith(OCI_LAYOUT)) {
      parseLayoutRef(value, bad);
      out[contextKey(name)] = { type: 'image', ref: value };
    } else if (/^(target|input):/.test(value)) {
      throw bad(`${value.slice(0, value.indexOf(':'))}: contexts are bake's and the gateway API's, not docker build's`);
    } else out[contextKey(name)] = { type: 'dir' };
  }
  return out;
}

/** An error about one `--build-context` value (its credentials hidden). */
const badContext =
  (name: string, value: string) =>
  (why: string): OptionError =>
    new OptionError('BUILD_CONTEXT_INVALID', `--build-context ${name}=${redactUrl(value)}: ${why}`);

/** Each named context made ready: images told to the planner as they are, directories made local (URLs fetched). */
export async function resolveNamedContexts(specs: Readonly<Record<string, string>>): Promise<NamedContexts> {
  const plan = namedContextRefs(specs);
  const dirs = new Map<string, NamedDir>();
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.splice(0)) await c();
  };
  try {
    for (const [name, value] of Object.entries(specs)) {
      const key = contextKey(name);
      if (plan[key]?.type !== 'dir') continue;
      if (value !== '-' && isRemoteContext(value) && parseGitRef(value)) {
        // A git repository: checked out, as a context is.
        const prepared = await prepareContext(value, undefined);
        cleanups.push(prepared.cleanup);
        dirs.set(key, { root: prepared.context, ignore: await loadIgnore(prepared.context) });
      } else if (value !== '-' && isRemoteContext(value)) {
        // Any other URL: one file named `context`, as BuildKit fetches it (not unpacked).
        const dir = await mkdtemp(path.join(tmpdir(), 'gantry-named-'));
        cleanups.push(() => rm(dir, { recursive: true, force: true }));
        const item = await downloadSource(path.join(dir, 'download'), value, undefined, `--build-context ${name}=${redactUrl(value)}`);
        const root = path.join(dir, 'context');
        await mkdir(root, { mode: 0o755 });
        await rename(item.host, path.join(root, 'context'));
        await chmod(path.join(root, 'context'), 0o644);
        dirs.set(key, { root, ignore: () => false });
      } else {
        const root = path.resolve(value);
        if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw badContext(name, value)('no such directory');
        dirs.set(key, { root, ignore: await loadIgnore(root) });
      }
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
  return { plan, dirs, cleanup };
}

/** `oci-layout://PATH[:TAG][@sha256:…]` → its parts. */
function parseLayoutRef(value: string, bad: (why: string) => Error): { dir: string; tag?: string; digest?: string } {
  let rest = value.slice(OCI_LAYOUT.length);
  let digest: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw bad(`"${digest}" is not a sha256 digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!rest) throw bad('no layout directory');
  return { dir: path.resolve(rest), ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/**
 * The image an oci-layout value names, for `platform`: its documents read from the layout (by
 * digest only, each a regular file within the document limits, its shape checked), its blobs
 * copied into the store (each checked against its digest and size), then read as any stored
 * image. A layout is the caller's (`--build-context`), but it is read as untrusted all the same.
 */
export async function layoutImage(store: Store, value: string, platform: string): Promise<Image> {
  const bad = (why: string): GantryError => new GantryError('OCI_LAYOUT', `${value}: ${why}`);
  const { dir, tag, digest } = parseLayoutRef(value, bad);
  /** A blob's path: only a digest that parses becomes a path. */
  const blob = (d: string): string => {
    try {
      const p = parseDigest(d);
      return path.join(dir, 'blobs', p.algorithm, p.hex);
    } catch {
      throw bad(`"${d}" is not a digest`);
    }
  };
  /** A document (index.json, an index, a manifest): a regular file of at most the limit, parsed and bounded in depth. */
  const document = async (file: string, what: string, size?: number): Promise<unknown> => {
    const fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW).catch(() => {
      throw bad(`${what} is missing`);
    });
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw bad(`${what} is not a regular file`);
      if (st.size > MANIFEST_SIZE_LIMIT) throw bad(`${what} is larger than ${MANIFEST_SIZE_LIMIT} bytes`);
      if (size !== undefined && st.size !== size) throw bad(`${what} has ${st.size} bytes, its descriptor says ${size}`);
      const bytes = await fh.readFile();
      const parsed = parseDocument(bytes);
      if ('problem' in parsed) throw bad(`${what} is ${parsed.problem}`);
      return { json: parsed.json, bytes };
    } finally {
      await fh.close();
    }
  };
  const index = (await document(path.join(dir, 'index.json'), 'index.json')) as { json: unknown };
  const indexShape = indexProblem(index.json);
  if (indexShape) throw bad(`index.json: ${indexShape}`);
  const entries = (index.json as Index).manifests;
  let picked: Descriptor | undefined;
  if (digest) picked = entries.find((m) => m.digest === digest);
  else if (tag) picked = entries.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag || m.annotations?.['io.containerd.image.name']?.endsWith(`:${tag}`));
  else if (entries.length === 1) picked = entries[0];
  if (!picked) throw bad(digest ? `no image ${digest} in the layout's index` : tag ? `no image tagged ${tag} in the layout` : `the layout holds ${entries.length} images: name one with :TAG or @DIGEST`);
  /** A document blob: read, checked, stored. */
  const fetchDoc = async (d: Descriptor): Promise<unknown> => {
    const { json, bytes } = (await document(blob(d.digest), `blob ${d.digest}`, d.size)) as { json: unknown; bytes: Buffer };
    await store.writeBlob(bytes, { digest: d.digest, size: d.size });
    return json;
  };
  let top = picked;
  let doc = await fetchDoc(top);
  if (INDEX_TYPES.has(top.mediaType)) {
    const shape = indexProblem(doc);
    if (shape) throw bad(`index ${top.digest}: ${shape}`);
    const want = parsePlatform(platform);
    const match = (doc as Index).manifests.find(
      (m) => MANIFEST_TYPES.has(m.mediaType) && m.platform?.os === want.os && m.platform?.architecture === want.architecture && (m.platform?.variant ?? '') === (want.variant ?? ''),
    );
    if (!match) throw bad(`no image for ${formatPlatform(want)} in index ${top.digest}`);
    top = match;
    doc = await fetchDoc(top);
  }
  if (!MANIFEST_TYPES.has(top.mediaType)) throw bad(`${top.digest} is a ${top.mediaType}, not an image manifest`);
  const shape = manifestProblem(doc);
  if (shape) throw bad(`manifest ${top.digest}: ${shape}`);
  const manifest = doc as Manifest;
  // A config or layer: streamed into the store from a regular file, checked against its digest and size.
  for (const d of [manifest.config, ...manifest.layers]) {
    const file = blob(d.digest);
    const st = await lstat(file).catch(() => undefined);
    if (!st?.isFile()) throw bad(`blob ${d.digest} is missing or not a regular file`);
    await store.writeBlob(createReadStream(file), { digest: d.digest, size: d.size });
  }
  return loadImage(store, { mediaType: top.mediaType, digest: top.digest, size: top.size });
}
