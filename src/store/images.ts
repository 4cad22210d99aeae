/** Images in the store: resolve names and IDs, load them as `Image`, write new ones. */
import { Readable } from 'node:stream';
import { StoreError } from '../errors/index.js';
import { blobsOf, validateImage, type Image, type ImageIndex, type Layer } from '../image/image.js';
import { digestOf } from '../oci/digest.js';
import { indexProblem, manifestProblem, parseDocument } from '../oci/document.js';
import { INDEX_TYPES, MediaType } from '../oci/media-types.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import { configPlatform, formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
import { repoDigestsOf, type Store, type StoreEntry } from './store.js';

export async function loadImage(store: Store, descriptor: Descriptor): Promise<Image> {
  if (INDEX_TYPES.has(descriptor.mediaType)) {
    throw new StoreError('STORE_UNSUPPORTED', `image ${descriptor.digest} is an index; pick a platform first`);
  }
  const rawManifest = await store.readBlob(descriptor.digest);
  let manifest: Manifest;
  try {
    manifest = JSON.parse(rawManifest.toString('utf8')) as Manifest;
  } catch (err) {
    throw new StoreError('STORE_JSON', `manifest ${descriptor.digest} is not valid JSON`, { cause: err });
  }
  const shape = manifestProblem(manifest);
  if (shape !== undefined) throw new StoreError('STORE_INVALID', `image ${descriptor.digest}: manifest: ${shape}`);
  const rawConfig = await store.readBlob(manifest.config.digest);
  // Nesting and shape checked before anything (structuredClone, JSON.stringify) recurses into it.
  const parsed = parseDocument(rawConfig);
  if ('problem' in parsed) throw new StoreError('STORE_INVALID', `image ${descriptor.digest}: config ${manifest.config.digest} is ${parsed.problem}`);
  const config = parsed.json as ImageConfig;
  validateImage(descriptor.digest, manifest, config);
  const layers: Layer[] = manifest.layers.map((l, i) => ({
    digest: l.digest,
    size: l.size,
    mediaType: l.mediaType,
    diffId: config.rootfs.diff_ids[i] as string,
    open: () => store.openBlob(l.digest, l.size),
  }));
  return {
    digest: descriptor.digest,
    mediaType: manifest.mediaType ?? descriptor.mediaType,
    rawManifest,
    manifest,
    configDigest: manifest.config.digest,
    rawConfig,
    config,
    layers,
  };
}

/**
 * A multi-platform image in the store: its index, and the platform images it names that the
 * store holds (an index pulled for one platform names the others without holding them).
 */
export async function loadIndex(store: Store, descriptor: Descriptor): Promise<ImageIndex> {
  const rawIndex = await store.readBlob(descriptor.digest);
  const parsed = parseDocument(rawIndex);
  const problem = 'problem' in parsed ? parsed.problem : indexProblem(parsed.json);
  if (problem !== undefined) throw new StoreError('STORE_INVALID', `index ${descriptor.digest} is not an image index: ${problem}`);
  const index = (parsed as { json: unknown }).json as Index;
  const images: Image[] = [];
  for (const d of index.manifests) {
    if (INDEX_TYPES.has(d.mediaType)) throw new StoreError('STORE_UNSUPPORTED', `index ${descriptor.digest} names another index (${d.digest}); nested indexes are not supported`);
    // Attestation manifests (platform unknown/unknown) and manifests not at hand are not images to run.
    if (d.platform?.os === 'unknown' || !(await store.hasBlob(d.digest))) continue;
    images.push(await loadImage(store, d));
  }
  return { digest: descriptor.digest, mediaType: descriptor.mediaType, rawIndex, index, images };
}

/** The image or multi-platform image a store entry's descriptor names. */
export async function loadAny(store: Store, descriptor: Descriptor): Promise<Image | ImageIndex> {
  return INDEX_TYPES.has(descriptor.mediaType) ? loadIndex(store, descriptor) : loadImage(store, descriptor);
}

/** A multi-platform image written into the store: each platform image (storeImage), then the index, byte for byte. */
export async function storeIndex(store: Store, ix: ImageIndex, created: string[] = []): Promise<Descriptor> {
  for (const image of ix.images) await storeImage(store, image, created);
  await store.lease(ix.digest);
  if (!(await store.hasBlob(ix.digest))) {
    await store.writeBlob(ix.rawIndex, { digest: ix.digest, size: ix.rawIndex.length });
    created.push(ix.digest);
  }
  return { mediaType: ix.mediaType, digest: ix.digest, size: ix.rawIndex.length };
}

export interface ResolvedImage {
  entry: StoreEntry;
  /** All names that refer to the same manifest. */
  names: string[];
  /** `REPOSITORY@DIGEST` where a registry is known to hold it (pulled from, pushed to). */
  repoDigests: string[];
  /** The image, or a multi-platform image's for this host (pickPlatform). */
  image: Image;
  /** The multi-platform image, when the name or ID is one. */
  index?: ImageIndex;
}

/**
 * Find an image by ID prefix (of the config digest, docker's IMAGE ID, or of the manifest
 * digest), else by name (`alpine`, `host/app:1`, `app@sha256:...`).
 */
export async function findEntries(store: Store, ref: string): Promise<StoreEntry[]> {
  const entries = await store.entries();
  if (/^(sha256:)?[0-9a-f]{4,64}$/.test(ref)) {
    const hex = ref.replace(/^sha256:/, '');
    const byId: StoreEntry[] = [];
    for (const e of entries) {
      const configDigest = await configDigestOf(store, e.descriptor).catch(() => undefined);
      if (configDigest?.slice(7).startsWith(hex) || e.descriptor.digest.slice(7).startsWith(hex)) byId.push(e);
    }
    if (byId.length > 0 || ref.startsWith('sha256:')) return byId;
  }
  const norm = normalizeReference(ref);
  if (norm.digest !== undefined && norm.tag === undefined) {
    return entries.filter((e) => e.descriptor.digest === norm.digest);
  }
  const full = formatReference(norm);
  return entries.filter((e) => e.name === full);
}

export async function configDigestOf(store: Store, d: Descriptor): Promise<string> {
  const m = await store.readJSON<Manifest>(d.digest);
  return m.config.digest;
}

/**
 * The image of a multi-platform image that commands about one image (inspect, history, run)
 * take, as Docker's containerd store does: `platform`'s when given (else an error naming what it
 * holds), else this host's, else the first it holds.
 */
export function pickPlatform(ix: ImageIndex, platform?: string): Image {
  const want = formatPlatform(platform !== undefined ? parsePlatform(platform) : hostPlatform());
  const found = platform !== undefined ? ix.images.find((im) => configPlatform(im.config) === want) : hostOrFirst(ix);
  if (found) return found;
  throw new StoreError('IMAGE_NOT_FOUND', `image ${ix.digest} has no image for ${want} in the store (it has: ${ix.images.map((im) => configPlatform(im.config)).join(', ') || 'none'})`);
}

/** A multi-platform image's image for this host's platform, else its first (none: an index whose images the store lacks). */
export function hostOrFirst(ix: ImageIndex): Image | undefined {
  const host = formatPlatform(hostPlatform());
  return ix.images.find((im) => configPlatform(im.config) === host) ?? ix.images[0];
}

export async function resolveImage(store: Store, ref: string): Promise<ResolvedImage> {
  const found = await findEntries(store, ref);
  if (found.length === 0) throw new StoreError('IMAGE_NOT_FOUND', `no such image: ${ref}`);
  const digests = new Set(found.map((e) => e.descriptor.digest));
  if (digests.size > 1) throw new StoreError('IMAGE_AMBIGUOUS', `"${ref}" matches ${digests.size} images; give more of the ID`);
  const entry = found[0] as StoreEntry;
  const all = await store.entries();
  const same = all.filter((e) => e.descriptor.digest === entry.descriptor.digest);
  const names = same.filter((e) => e.name).map((e) => e.name as string);
  const repoDigests = [...new Set(same.flatMap((e) => repoDigestsOf(e.descriptor)))];
  if (INDEX_TYPES.has(entry.descriptor.mediaType)) {
    const index = await loadIndex(store, entry.descriptor);
    return { entry, names, repoDigests, image: pickPlatform(index), index };
  }
  return { entry, names, repoDigests, image: await loadImage(store, entry.descriptor) };
}

export interface NewImage {
  config: ImageConfig;
  layers: { digest: string; size: number; mediaType: string }[];
  annotations?: Record<string, string>;
}

/** Write config and manifest blobs (layers must already be stored); returns the manifest descriptor. */
export async function writeImage(store: Store, image: NewImage): Promise<Descriptor> {
  for (const l of image.layers) {
    if (!(await store.hasBlob(l.digest))) throw new StoreError('BLOB_NOT_FOUND', `layer ${l.digest} is not in the store`);
  }
  // The config's digest is known before it is stored, so both are written at once (a manifest
  // stored a moment before its config is named by nothing yet).
  const configBytes = Buffer.from(JSON.stringify(image.config));
  const config = { digest: digestOf(configBytes), size: configBytes.length };
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, ...config },
    layers: image.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    ...(image.annotations ? { annotations: image.annotations } : {}),
  };
  const [, m] = await Promise.all([store.writeBlob(configBytes, config), store.writeJSON(manifest)]);
  return { mediaType: MediaType.ociManifest, digest: m.digest, size: m.size };
}

/**
 * An image from anywhere (an archive, a registry) written into the store as it is: its blobs,
 * each verified as it is written, then its manifest, byte for byte. The digests of the blobs
 * this wrote (not those the store had) are added to `created`, for a caller that takes them
 * back on a later failure.
 */
export async function storeImage(store: Store, image: Image, created: string[] = []): Promise<Descriptor> {
  const manifest = { digest: image.digest, size: image.rawManifest.length, open: () => Readable.from([image.rawManifest]) };
  const blobs = [...blobsOf(image), manifest];
  // Leased first: a blob the store has already must outlive a prune until the image is named.
  await store.lease(...blobs.map((b) => b.digest));
  for (const blob of blobs) {
    if (await store.hasBlob(blob.digest)) continue;
    await store.writeBlob(blob.open(), { digest: blob.digest, size: blob.size });
    created.push(blob.digest);
  }
  return { mediaType: image.mediaType, digest: image.digest, size: image.rawManifest.length };
}

export function nameOf(d: Descriptor): string | undefined {
  return d.annotations?.[REF_NAME_ANNOTATION];
}

