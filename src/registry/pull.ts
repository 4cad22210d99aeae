/**
 * Pull an image into a store: the registry's image (registry/image.ts: manifest, platform,
 * config, each checked) written blob by blob, a few layers at a time, only those the store
 * does not have; the manifest last, then the name. Each blob is checked as it streams and
 * again as the store takes it: nothing unverified is stored.
 */
import type { Readable } from 'node:stream';
import { StoreError } from '../errors/index.js';
import { crashPoint } from '../support/process.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import type { Descriptor } from '../oci/types.js';
import type { BlobStore as Store } from './blob-store.js';
import type { RegistryClient } from './client.js';
import { readLimited, remoteImage, type RemoteImageOptions } from './image.js';

export interface PullProgress {
  digest: string;
  bytes: number;
  total: number;
  done: boolean;
  cached?: boolean;
}

export interface PullOptions extends Pick<RemoteImageOptions, 'platform' | 'layerLimit'> {
  /** Blobs downloaded at once (default 3). */
  concurrency?: number;
  onProgress?: (p: PullProgress) => void;
  /** Store the image under this name instead of the one pulled (used for mirrors). */
  name?: string;
}

export interface PullResult {
  name: string;
  /** The platform manifest stored and named. */
  descriptor: Descriptor;
  /** The digest the reference resolved to (the index's, for a multi-platform image). */
  resolvedDigest: string;
  configDigest: string;
}

export async function pullImage(client: RegistryClient, store: Store, input: string, options: PullOptions = {}): Promise<PullResult> {
  const name = options.name ?? formatReference(normalizeReference(input));
  const image = await remoteImage(client, input, {
    ...(options.platform ? { platform: options.platform } : {}),
    ...(options.layerLimit !== undefined ? { layerLimit: options.layerLimit } : {}),
    // A config the store has is read from it (and checked the same way), not fetched.
    knownBlob: async (d) => ((await store.hasBlob(d.digest)) ? await readLimited(store.openBlob(d.digest, d.size), d.size, `config ${d.digest} in the store`, true) : undefined),
  });
  const config = { digest: image.configDigest, size: image.rawConfig.length };
  await store.writeBlob(image.rawConfig, config);
  options.onProgress?.({ ...config, bytes: config.size, total: config.size, done: true, ...(image.configKnown ? { cached: true } : {}) });
  const queue = [...image.layers];
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 3) }, async () => {
    for (let layer = queue.shift(); layer; layer = queue.shift()) {
      const d = { digest: layer.digest, size: layer.size };
      if (await store.hasBlob(d.digest)) {
        await store.lease(d.digest);
        options.onProgress?.({ ...d, bytes: d.size, total: d.size, done: true, cached: true });
        continue;
      }
      try {
        await store.writeBlob(counted(layer.open(), d, options), d);
      } catch (err) {
        // The store's file system failed (a full disk), not the registry: said with the blob it was taking.
        if (err instanceof StoreError) throw new StoreError(err.code, `blob ${d.digest} from ${client.endpoint}/v2/${image.ref.path}/blobs/${d.digest}: ${err.message}`, { cause: err });
        throw err;
      }
      options.onProgress?.({ ...d, bytes: d.size, total: d.size, done: true });
    }
  });
  await Promise.all(workers);
  await store.writeBlob(image.rawManifest, { digest: image.digest, size: image.rawManifest.length });
  const descriptor: Descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.rawManifest.length };
  if (image.ref.tag !== undefined) await store.tag(name, descriptor);
  else await store.addUntagged(descriptor);
  return { name, descriptor, resolvedDigest: image.resolvedDigest, configDigest: image.configDigest };
}

/** A layer's bytes on their way into the store, told as they pass. */
async function* counted(body: Readable, d: { digest: string; size: number }, options: PullOptions): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const chunk of body) {
    bytes += (chunk as Buffer).length;
    yield chunk as Buffer;
    crashPoint?.('pull-chunk');
    options.onProgress?.({ ...d, bytes, total: d.size, done: false });
  }
}
