/**
 * Named contexts (`docker build --build-context NAME=VALUE`): what takes the place of an image
 * or a stage called NAME, as BuildKit resolves them.
 *
 * - `docker-image://REF`: the image REF instead (`docker-image://scratch`: nothing);
 * - `oci-layout://PATH[:TAG][@DIGEST]`: the image in an OCI layout directory on this host;
 * - a local directory, or a git or http(s) URL (unpacked as a build context is): files that
 *   COPY --from=NAME reads, with the directory's own .dockerignore.
 *
 * An image context is planned as that image (the plan's reference is REF, or the oci-layout
 * value, which `obtainImage` loads from the layout); a directory is planned as a context of
 * its own (CopySource `{ type: 'context', name }`).
 */
import { readFile } from 'node:fs/promises';
import { createReadStream, statSync } from 'node:fs';
import path from 'node:path';
import { GantryError, OptionError } from '../errors/index.js';
import type { Image } from '../image/image.js';
import { INDEX_TYPES, MANIFEST_TYPES } from '../oci/media-types.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import type { Descriptor, Index } from '../oci/types.js';
import { contextKey, type NamedContextRef } from '../plan/planner.js';
import { loadImage } from '../store/images.js';
import type { Store } from '../store/store.js';
import { loadIgnore, type IgnoreFilter } from './context.js';
import { isRemoteContext, prepareContext } from './remote-context.js';

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
    if (value.startsWith('docker-image://')) out[contextKey(name)] = { type: 'image', ref: value.slice('docker-image://'.length) };
    else if (value.startsWith(OCI_LAYOUT)) out[contextKey(name)] = { type: 'image', ref: value };
    else out[contextKey(name)] = { type: 'dir' };
  }
  return out;
}

/** Each named context made ready: images told to the planner, directories made local (URLs fetched). */
export async function resolveNamedContexts(specs: Readonly<Record<string, string>>): Promise<NamedContexts> {
  const plan: Record<string, NamedContextRef> = {};
  const dirs = new Map<string, NamedDir>();
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.splice(0)) await c();
  };
  try {
    for (const [name, value] of Object.entries(specs)) {
      const key = contextKey(name);
      const bad = (why: string): OptionError => new OptionError('BUILD_CONTEXT_INVALID', `--build-context ${name}=${value}: ${why}`);
      if (value.startsWith('docker-image://')) {
        const ref = value.slice('docker-image://'.length);
        if (!ref) throw bad('no image after docker-image://');
        plan[key] = { type: 'image', ref };
      } else if (value.startsWith(OCI_LAYOUT)) {
        parseLayoutRef(value, bad);
        plan[key] = { type: 'image', ref: value };
      } else if (/^(target|input):/.test(value)) {
        throw bad(`${value.slice(0, value.indexOf(':'))}: contexts are bake's and the gateway API's, not docker build's`);
      } else if (isRemoteContext(value) && value !== '-') {
        const prepared = await prepareContext(value, undefined);
        cleanups.push(prepared.cleanup);
        dirs.set(key, { root: prepared.context, ignore: await loadIgnore(prepared.context) });
        plan[key] = { type: 'dir' };
      } else {
        const root = path.resolve(value);
        if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) throw bad('no such directory');
        dirs.set(key, { root, ignore: await loadIgnore(root) });
        plan[key] = { type: 'dir' };
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
 * The image an oci-layout value names, for `platform`: its blobs copied into the store (each
 * checked against its digest), then read as any stored image.
 */
export async function layoutImage(store: Store, value: string, platform: string): Promise<Image> {
  const bad = (why: string): GantryError => new GantryError('OCI_LAYOUT', `${value}: ${why}`);
  const { dir, tag, digest } = parseLayoutRef(value, bad);
  const blob = (d: string): string => path.join(dir, 'blobs', ...d.split(':'));
  const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8').catch(() => {
    throw bad('no index.json: not an OCI image layout');
  })) as Index;
  const entries = index.manifests ?? [];
  let picked: Descriptor | undefined;
  if (digest) picked = entries.find((m) => m.digest === digest) ?? { mediaType: '', digest, size: 0 };
  else if (tag) picked = entries.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag || m.annotations?.['io.containerd.image.name']?.endsWith(`:${tag}`));
  else if (entries.length === 1) picked = entries[0];
  if (!picked) throw bad(tag ? `no image tagged ${tag} in the layout` : `the layout holds ${entries.length} images: name one with :TAG or @DIGEST`);
  /** A manifest or index: read whole (they are small), stored, parsed by the caller. */
  const copy = async (d: Descriptor): Promise<Buffer> => {
    const bytes = await readFile(blob(d.digest)).catch(() => {
      throw bad(`blob ${d.digest} is missing`);
    });
    await store.writeBlob(bytes, { digest: d.digest, ...(d.size ? { size: d.size } : {}) });
    return bytes;
  };
  /** A config or layer: streamed into the store, checked against its digest and size. */
  const stream = async (d: Descriptor): Promise<void> => {
    if (!statSync(blob(d.digest), { throwIfNoEntry: false })?.isFile()) throw bad(`blob ${d.digest} is missing`);
    await store.writeBlob(createReadStream(blob(d.digest)), { digest: d.digest, size: d.size });
  };
  let top = picked;
  let doc = JSON.parse((await copy(top)).toString('utf8')) as { mediaType?: string; manifests?: Descriptor[] };
  if (INDEX_TYPES.has(top.mediaType) || INDEX_TYPES.has(doc.mediaType ?? '') || doc.manifests) {
    const want = parsePlatform(platform);
    const match = (doc.manifests ?? []).find(
      (m) => MANIFEST_TYPES.has(m.mediaType) && m.platform?.os === want.os && m.platform?.architecture === want.architecture && (m.platform?.variant ?? '') === (want.variant ?? ''),
    );
    if (!match) throw bad(`no image for ${formatPlatform(want)} in the layout's index`);
    top = match;
    doc = JSON.parse((await copy(top)).toString('utf8')) as typeof doc;
  }
  const manifest = doc as unknown as { mediaType?: string; config: Descriptor; layers: Descriptor[] };
  for (const d of [manifest.config, ...manifest.layers]) await stream(d);
  return loadImage(store, { mediaType: top.mediaType || manifest.mediaType || 'application/vnd.oci.image.manifest.v1+json', digest: top.digest, size: (await store.blobSize(top.digest)) });
}
