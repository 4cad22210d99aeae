/**
 * Push an image from the store: blobs the registry has are skipped (HEAD), blobs from
 * another repository of the same registry are mounted, the rest are uploaded (POST, then
 * PUT with the digest); then the manifest is PUT and the digest the registry reports is
 * checked against ours.
 */
import type { Readable } from 'node:stream';
import { RegistryError } from '../errors/index.js';
import { crashPerChunk, crashPoint, trace } from '../support/process.js';
import { blobsOf, type BlobSource, type Image } from '../image/image.js';
import { formatReference, normalizeReference, type Reference } from '../oci/reference.js';
import type { RegistryClient } from './client.js';

export interface PushOptions {
  /** Repositories on the same registry that may hold the blobs (for cross-repository mounts). */
  mountFrom?: string[];
  concurrency?: number;
  /** Blobs already seen to (uploaded while they were made, or by `pushBlobs`), with what happened: not asked about again. */
  done?: ReadonlyMap<string, BlobStatus>;
  /** Per blob, more repositories of the registry that may hold it (where the store's images with that blob came from). */
  mountCandidates?: ReadonlyMap<string, string[]>;
  onProgress?: (p: { digest: string; status: 'exists' | 'mounted' | 'uploaded' }) => void;
}

export interface PushResult {
  name: string;
  /** The manifest (or index) as the registry holds it. */
  digest: string;
  mediaType: string;
  size: number;
  /** What happened to each blob. */
  blobs: Record<string, BlobStatus>;
}

export type BlobStatus = 'exists' | 'mounted' | 'uploaded';

/** The token scope a push to `ref`'s repository asks for. */
const pushScope = (ref: Reference): string => `repository:${ref.path}:pull,push`;

/**
 * Push a multi-platform index: each platform image by digest, then the index under the
 * destination's tag.
 */
export async function pushIndex(
  client: RegistryClient,
  index: { digest: string; mediaType: string; raw: Buffer },
  images: Image[],
  destination: string,
  options: PushOptions = {},
): Promise<PushResult> {
  const ref = normalizeReference(destination);
  const blobs: PushResult['blobs'] = {};
  for (const image of images) {
    const r = await pushImage(client, image, `${repositoryName(ref)}@${image.digest}`, options);
    Object.assign(blobs, r.blobs);
  }
  const digest = await putManifest(client, ref, ref.digest ?? ref.tag ?? 'latest', index.mediaType, index.raw, index.digest);
  return { name: formatReference(ref), digest, mediaType: index.mediaType, size: index.raw.length, blobs };
}

function repositoryName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

async function putManifest(client: RegistryClient, ref: Reference, reference: string, mediaType: string, body: Buffer, digest: string): Promise<string> {
  const path = `/v2/${ref.path}/manifests/${reference}`;
  const res = await client.request('PUT', path, {
    headers: { 'content-type': mediaType },
    body,
    scope: pushScope(ref),
    ok: [201, 200],
  });
  await res.body.dump();
  const reported = res.headers['docker-content-digest'];
  if (typeof reported === 'string' && reported !== digest) {
    throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `PUT ${client.endpoint}${path}: the registry reports ${reported}, the manifest is ${digest}`, { url: client.endpoint + path });
  }
  return digest;
}

export async function pushImage(client: RegistryClient, image: Image, destination: string, options: PushOptions = {}): Promise<PushResult> {
  const ref = normalizeReference(destination);
  const blobs = await pushBlobs(client, destination, blobsOf(image), options);
  await putManifest(client, ref, ref.digest ?? ref.tag ?? 'latest', image.mediaType, image.rawManifest, image.digest);
  return { name: formatReference(ref), digest: image.digest, mediaType: image.mediaType, size: image.rawManifest.length, blobs };
}

/**
 * An image as a push takes it from wherever it is kept: the blobs that go up as they are, and the
 * image as it goes up (`distributable`: its layers compressed for the registry, each handed to
 * `alongside` while it is being made, so that compressing and uploading overlap).
 */
export interface PushSource {
  /** Blobs that need no change on their way up (the config, layers already compressed). */
  ready: readonly BlobSource[];
  /** The image as the registry gets it; each layer made on the way is given to `alongside` as it is made. */
  distributable(alongside: (body: Readable, made: Promise<{ digest: string }>) => Promise<void>): Promise<Image>;
}

/**
 * Push `source` to `destination` (an image in a repository): the layers that must be made are
 * uploaded while they are made, and meanwhile the blobs that need nothing are pushed (skipped,
 * mounted from another repository, or uploaded); then what is left, and the manifest.
 */
export async function pushFromSource(client: RegistryClient, source: PushSource, destination: string, options: PushOptions = {}): Promise<PushResult> {
  const done = new Map<string, BlobStatus>(options.done ?? []);
  trace?.('push: start');
  // Both are waited for, whichever fails: nothing is left writing once the push returns.
  const [made, pushedEarly] = await Promise.allSettled([
    source.distributable(async (body, stored) => {
      await uploadWhileMade(client, destination, body, stored);
      done.set((await stored).digest, 'uploaded');
    }),
    pushBlobs(client, destination, source.ready, { ...(options.mountFrom ? { mountFrom: options.mountFrom } : {}), ...(options.mountCandidates ? { mountCandidates: options.mountCandidates } : {}) }),
  ]);
  if (made.status === 'rejected') throw made.reason;
  if (pushedEarly.status === 'rejected') throw pushedEarly.reason;
  for (const [digest, status] of Object.entries(pushedEarly.value)) done.set(digest, status);
  trace?.('push: blobs pushed');
  const pushed = await pushImage(client, made.value, destination, { ...options, done });
  trace?.('push: done');
  return pushed;
}

/** Push blobs to the destination's repository (a few at a time), each skipped, mounted or uploaded. */
export async function pushBlobs(
  client: RegistryClient,
  destination: string,
  list: readonly BlobSource[],
  options: PushOptions = {},
): Promise<Record<string, BlobStatus>> {
  const ref = normalizeReference(destination);
  const scope = pushScope(ref);
  const blobs: Record<string, BlobStatus> = {};
  const queue = [...list];
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 3) }, async () => {
    for (let b = queue.shift(); b; b = queue.shift()) {
      const seen = options.done?.get(b.digest);
      const from = [...(options.mountFrom ?? []), ...(options.mountCandidates?.get(b.digest) ?? [])];
      const status = seen ?? (await pushBlob(client, ref, scope, b, [...new Set(from)]));
      blobs[b.digest] = status;
      if (!seen) crashPoint?.('push-blob');
      options.onProgress?.({ digest: b.digest, status });
    }
  });
  await Promise.all(workers);
  return blobs;
}

async function pushBlob(client: RegistryClient, ref: Reference, scope: string, blob: BlobSource, mountFrom: string[]): Promise<'exists' | 'mounted' | 'uploaded'> {
  const { digest, size } = blob;
  const head = await client.request('HEAD', `/v2/${ref.path}/blobs/${digest}`, { scope, ok: [200, 404] });
  await head.body.dump();
  if (head.status === 200) return 'exists';
  for (const from of mountFrom) {
    if (from === ref.path) continue;
    const mountScope = `${scope} repository:${from}:pull`;
    const m = await client.request('POST', `/v2/${ref.path}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, { scope: mountScope, ok: [201, 202] });
    await m.body.dump();
    if (m.status === 201) return 'mounted';
    // 202: the registry started an upload instead; abandon it and upload normally.
    const loc = m.headers.location;
    if (typeof loc === 'string') {
      const del = await client.request('DELETE', new URL(loc, client.endpoint).toString(), { scope, ok: [204, 200, 404] }).catch(() => undefined);
      await del?.body.dump();
    }
  }
  const start = await client.request('POST', `/v2/${ref.path}/blobs/uploads/`, { scope, ok: [202] });
  await start.body.dump();
  const location = start.headers.location;
  if (typeof location !== 'string') throw new RegistryError('REGISTRY_ERROR', `POST ${client.endpoint}/v2/${ref.path}/blobs/uploads/: no Location header`);
  const url = new URL(location, client.endpoint);
  url.searchParams.set('digest', digest);
  const put = await client.request('PUT', url.toString(), {
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    body: uploadBody(blob.open()),
    scope,
    ok: [201, 204],
    transfer: true,
  });
  await put.body.dump();
  return 'uploaded';
}

/**
 * Upload a blob while it is still being made, its digest known only at the end: POST to
 * start, one PATCH carrying the bytes as they come (chunked), then PUT with the digest that
 * `made` gives once the bytes have all gone (the registry checks them against it). A push of a
 * layer compressed on the way (store/compress.ts) then overlaps compression and upload. Any
 * failure is the caller's to recover from: the blob can still be uploaded whole afterwards.
 */
export async function uploadWhileMade(client: RegistryClient, destination: string, body: Readable, made: Promise<{ digest: string }>): Promise<void> {
  const ref = normalizeReference(destination);
  const scope = pushScope(ref);
  const start = await client.request('POST', `/v2/${ref.path}/blobs/uploads/`, { scope, ok: [202] });
  await start.body.dump();
  const location = start.headers.location;
  if (typeof location !== 'string') throw new RegistryError('REGISTRY_ERROR', `POST ${client.endpoint}/v2/${ref.path}/blobs/uploads/: no Location header`);
  const patch = await client.request('PATCH', new URL(location, client.endpoint).toString(), {
    headers: { 'content-type': 'application/octet-stream' },
    body: uploadBody(body),
    scope,
    ok: [202],
    transfer: true,
  });
  await patch.body.dump();
  const next = patch.headers.location;
  const url = new URL(typeof next === 'string' ? next : location, client.endpoint);
  url.searchParams.set('digest', (await made).digest);
  const put = await client.request('PUT', url.toString(), { headers: { 'content-length': '0' }, scope, ok: [201, 204], idempotent: false });
  await put.body.dump();
}

/** A blob's bytes on their way up; the store's read errors (a corrupted blob) end the upload. */
function uploadBody(blob: Readable): Readable {
  const [out] = crashPerChunk('push-chunk');
  if (!out) return blob;
  blob.on('error', (err) => out.destroy(err));
  return blob.pipe(out);
}
