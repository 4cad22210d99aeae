/** pull and push as the API and CLI use them: a store, a client, credentials. */
import { OptionError, RegistryError } from '../errors/index.js';
import { eraseCredentials, storeCredentials } from '../registry/credentials.js';
import { clientFor, type RegistryAccess } from '../registry/access.js';
import { parsePlatform } from '../oci/platform.js';
import { DEFAULT_DOMAIN, formatReference, normalizeReference, parseReference, repositoryOf } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { pullImage, type PullProgress, type PullResult } from '../registry/pull.js';
import { pushFromSource, pushIndex, type BlobStatus, type PushResult, type PushSource } from '../registry/push.js';
import { findEntries, loadImage, loadIndex, resolveImage } from '../store/images.js';
import { INDEX_TYPES, layerCompression } from '../oci/media-types.js';
import { withStore, type Store, type StoreEntry } from '../store/store.js';
import { distributable, distributableIndex, type LayerFormat } from '../store/compress.js';
import { configBlob } from '../image/image.js';
import { settings } from '../support/settings.js';

// Where a command's client is made (registry/access.ts), as the build and the API know it.
export { clientFor, type RegistryAccess };

export interface PullCommandOptions extends RegistryAccess {
  root: string;
  reference: string;
  platform?: string;
  /** Mirrors of docker.io (host[:port] or URL), tried in order before docker.io itself. */
  registryMirrors?: string[];
  onProgress?: (p: PullProgress) => void;
  /** Cancels the pull: requests under way stop at once. */
  signal?: AbortSignal;
}

/** Run `fn` with `client`, stopped at once when `signal` aborts (then the abort's reason is thrown). */
async function abortable<T>(client: RegistryClient, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
  signal?.throwIfAborted();
  const unwatch = watchAbort(client, signal);
  try {
    return await fn();
  } catch (err) {
    signal?.throwIfAborted();
    throw err;
  } finally {
    unwatch();
  }
}

export interface LoginOptions extends RegistryAccess {
  registry: string;
  username: string;
  password: string;
  /** The docker config file to write; default $DOCKER_CONFIG/config.json. */
  configFile?: string;
}

/** Check the credentials against the registry, then store them the way docker does. */
export async function login(options: LoginOptions): Promise<void> {
  const registry = options.registry === 'index.docker.io' ? 'docker.io' : options.registry;
  const client = await clientFor(registry, { ...options, credentials: () => ({ username: options.username, password: options.password }) });
  try {
    const res = await client.request('GET', '/v2/', { scope: '', ok: [200] });
    await res.body.dump();
  } finally {
    await client.close();
  }
  await storeCredentials(registry, options.username, options.password, options.configFile);
}

export async function logout(registry: string, configFile?: string): Promise<boolean> {
  return eraseCredentials(registry === 'index.docker.io' ? 'docker.io' : registry, configFile);
}

export async function pull(options: PullCommandOptions): Promise<PullResult> {
  const ref = normalizeReference(options.reference);
  const name = formatReference(ref);
  const pullOptions = {
    name,
    layerLimit: settings.extractLimit,
    ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  return withStore(options.root, async (store) => {
    if (ref.domain === DEFAULT_DOMAIN) {
      for (const mirror of options.registryMirrors ?? []) {
        const host = mirror.replace(/^https?:\/\//, '').replace(/\/+$/, '');
        const client = await clientFor(host, {
          ...options,
          insecureRegistries: [...(options.insecureRegistries ?? []), ...(mirror.startsWith('http://') ? [host] : [])],
        });
        try {
          const viaMirror = formatReference({ ...ref, domain: host });
          return await recorded(store, await abortable(client, options.signal, () => pullImage(client, store, viaMirror, pullOptions)));
        } catch (err) {
          // A mirror that lacks the image or is down: try the next one, then docker.io.
          if (!(err instanceof RegistryError)) throw err;
        } finally {
          await client.close();
        }
      }
    }
    const client = await clientFor(ref.domain, options);
    try {
      return await recorded(store, await abortable(client, options.signal, () => pullImage(client, store, name, pullOptions)));
    } finally {
      await client.close();
    }
  });
}

/** The pulled image's entry records the digest its repository gave (docker's RepoDigests). */
async function recorded(store: Store, result: PullResult): Promise<PullResult> {
  await store.recordRepoDigest(result.descriptor.digest, repositoryOf(parseReference(result.name)), result.resolvedDigest);
  return result;
}

export interface PushCommandOptions extends RegistryAccess {
  root: string;
  /** The image in the store. */
  image: string;
  /** Where to push; default: the image's own name. */
  destination?: string;
  /** How the layers go up (compression, media types); default gzip, the image's media types. */
  format?: LayerFormat;
  /** Cancels the push: requests under way stop at once. */
  signal?: AbortSignal;
  /** Told of each blob as the registry has it: there already, mounted from another repository, or uploaded. */
  onBlob?: (b: { digest: string; status: BlobStatus }) => void;
}

export async function push(options: PushCommandOptions): Promise<PushResult> {
  // Compressing built layers leases the blobs it writes; they are in the build cache when the scope ends.
  return withStore(options.root, (store) => pushWith(store, options));
}

/** `push` in a scope that has the store open already (a build's outputs). */
export async function pushWith(store: Store, options: Omit<PushCommandOptions, 'root'>): Promise<PushResult> {
  options.signal?.throwIfAborted();
  const { local, result } = await pushFrom(store, options).catch((err: unknown) => {
    options.signal?.throwIfAborted(); // cancelled: that is what happened, not the request's failure
    throw err;
  });
  // What `inspect` and a build's metadata give as the repository's digest is the registry's.
  await store.recordRepoDigest(local, repositoryOf(parseReference(result.name)), result.digest);
  return result;
}

/** Push; returns the pushed image's digest in the store (`local`) beside the push's result. */
async function pushFrom(store: Store, options: Omit<PushCommandOptions, 'root'>): Promise<{ local: string; result: PushResult }> {
  const found = await findEntries(store, options.image);
  const top = found[0];
  if (top && INDEX_TYPES.has(top.descriptor.mediaType)) {
    const destination = options.destination ?? top.name;
    if (!destination) throw new OptionError('PUSH_NO_NAME', `${options.image} has no name to push to; give a destination`);
    // A manifest that changes with its compressed layers is named by a new index.
    const ix = await distributableIndex(store, await loadIndex(store, top.descriptor), options.format ? { format: options.format } : {});
    const client = await clientFor(normalizeReference(destination).domain, options);
    const unwatch = watchAbort(client, options.signal);
    try {
      return { local: top.descriptor.digest, result: await pushIndex(client, { digest: ix.digest, mediaType: ix.mediaType, raw: ix.rawIndex }, ix.images, destination, options.onBlob ? { onProgress: options.onBlob } : {}) };
    } finally {
      unwatch();
      await client.close();
    }
  }
  const { image: local, entry } = await resolveImage(store, options.image);
  const destination = options.destination ?? entry.name;
  if (!destination) throw new OptionError('PUSH_NO_NAME', `${options.image} has no name to push to; give a destination`);
  const dest = normalizeReference(destination);
  const client = await clientFor(dest.domain, options);
  const unwatch = watchAbort(client, options.signal);
  try {
    // Blobs may already be in another repository of the same registry: try mounting from the image's other names there.
    const all = await store.entries();
    const mountFrom = all
      .filter((e) => e.name && e.descriptor.digest === local.digest)
      .map((e) => parseReference(e.name as string))
      .filter((r) => r.domain === dest.domain && r.path !== dest.path)
      .map((r) => r.path);
    // Layers built here are stored uncompressed: they go up gzip-compressed, under a manifest
    // of their own (as BuildKit pushes what it keeps uncompressed in its snapshots).
    // Each is uploaded while it is compressed, and meanwhile the blobs that need no
    // compressing (the config, layers pulled compressed) are pushed: what is left for
    // pushImage is the manifest.
    const target = formatReference(dest);
    const mountCandidates = await reposHolding(store, all, dest.domain, dest.path);
    const source: PushSource = {
      ready: [
        // (Forced to another compression, pulled layers change too: none is known ready.)
        ...local.layers.filter((l) => layerCompression(l.mediaType) !== 'none' && !options.format?.force),
        configBlob(local),
      ],
      distributable: (alongside) => distributable(store, local, { ...(options.format ? { format: options.format } : {}), alongside }),
    };
    const pushed = await pushFromSource(client, source, target, { mountFrom, mountCandidates, ...(options.onBlob ? { onProgress: options.onBlob } : {}) });
    return { local: local.digest, result: pushed };
  } finally {
    unwatch();
    await client.close();
  }
}

/** Until the returned function is called, an abort of `signal` stops `client`'s requests at once. */
function watchAbort(client: RegistryClient, signal: AbortSignal | undefined): () => void {
  if (!signal) return () => undefined;
  const stop = (): void => void client.abort();
  signal.addEventListener('abort', stop, { once: true });
  return () => signal.removeEventListener('abort', stop);
}

/**
 * For each layer of the store's images (`entries`) named on `domain`, the repositories there that hold it
 * (the names it was pulled from or pushed to), `path` itself left out: a push to a new
 * repository mounts those blobs instead of uploading them again, as docker push does for
 * layers it knows came from a repository of the same registry.
 */
async function reposHolding(store: Store, entries: StoreEntry[], domain: string, path: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const e of entries) {
    if (!e.name || INDEX_TYPES.has(e.descriptor.mediaType)) continue;
    const r = parseReference(e.name);
    if (r.domain !== domain || r.path === path) continue;
    const image = await loadImage(store, e.descriptor).catch(() => undefined);
    for (const l of image?.layers ?? []) {
      const list = out.get(l.digest) ?? [];
      if (!list.includes(r.path)) list.push(r.path);
      out.set(l.digest, list);
    }
  }
  return out;
}
