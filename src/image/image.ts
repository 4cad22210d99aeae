/**
 * The read-only image model: manifest, config and layers, whatever the source. Layers
 * keep the compressed digest (what is stored and pushed) apart from the diff ID (the
 * digest of the uncompressed tar, what the config lists).
 */
import { Readable } from 'node:stream';
import { GantryError } from '../errors/index.js';
import { CONFIG_TYPES, MANIFEST_TYPES, MediaType, layerCompression } from '../oci/media-types.js';
import { digestOf, parseDigest } from '../oci/digest.js';
import { configProblem, manifestProblem } from '../oci/document.js';
import type { Descriptor, ImageConfig, Index, Manifest, PlatformSpec } from '../oci/types.js';

/** A blob as a sink reads it: its digest, its size, and its bytes, from wherever they are. */
export interface BlobSource {
  digest: string;
  size: number;
  /** The bytes, verified against `digest` while they stream (where they are not in memory already). */
  open(): Readable;
}

/** A layer as a manifest and a config name it: the one shape every module records layers in. */
export interface LayerDescriptor {
  /** Digest and size of the blob as stored (usually gzip). */
  digest: string;
  size: number;
  mediaType: string;
  /** Digest of the uncompressed tar. */
  diffId: string;
}

/** A layer of an image: its descriptor, and its bytes from wherever they are. */
export interface Layer extends LayerDescriptor, BlobSource {}

export interface Image {
  /** The manifest's digest: the image's identity in a registry. */
  digest: string;
  mediaType: string;
  rawManifest: Buffer;
  manifest: Manifest;
  configDigest: string;
  rawConfig: Buffer;
  config: ImageConfig;
  layers: Layer[];
}

export class ImageError extends GantryError {}

/** An image's config as a blob. */
export function configBlob(image: Image): BlobSource {
  return { digest: image.configDigest, size: image.rawConfig.length, open: () => Readable.from([image.rawConfig]) };
}

/** Every blob of an image, its layers first, then its config (the order a push sends them). */
export function blobsOf(image: Image): BlobSource[] {
  return [...image.layers, configBlob(image)];
}

/** Check a manifest and its config before anything trusts them; names the digest on error. */
export function validateImage(digest: string, manifest: Manifest, config: ImageConfig): void {
  const fail = (why: string): never => {
    throw new ImageError('IMAGE_INVALID', `image ${digest}: ${why}`);
  };
  if (manifest.schemaVersion !== 2) fail(`unsupported manifest schemaVersion ${String(manifest.schemaVersion)}`);
  // The shapes first: a descriptor that is not an object, layers that are not a list, a config
  // field of the wrong type are refused here, never met as a TypeError further on.
  const shape = manifestProblem(manifest);
  if (shape !== undefined) fail(`manifest: ${shape}`);
  const configShape = configProblem(config);
  if (configShape !== undefined) fail(`config ${manifest.config.digest}: ${configShape}`);
  const mt = manifest.mediaType;
  if (mt !== undefined && !MANIFEST_TYPES.has(mt)) fail(`unsupported manifest media type "${mt}"`);
  if (!manifest.config || !CONFIG_TYPES.has(manifest.config.mediaType)) {
    fail(`unsupported config media type "${manifest.config?.mediaType}"`);
  }
  checkDescriptor(manifest.config, fail);
  if (!Array.isArray(manifest.layers)) fail('manifest has no layers list');
  for (const l of manifest.layers) {
    checkDescriptor(l, fail);
    if (layerCompression(l.mediaType) === undefined) fail(`unsupported layer media type "${l.mediaType}" (${l.digest})`);
  }
  const diffIds = config.rootfs?.diff_ids;
  if (config.rootfs?.type !== 'layers' || !Array.isArray(diffIds)) fail('config has no rootfs.diff_ids');
  if (diffIds.length !== manifest.layers.length) {
    fail(`config lists ${diffIds.length} diff_ids but the manifest has ${manifest.layers.length} layers`);
  }
  for (const d of diffIds) checkDigest(d, fail);
}

function checkDigest(d: string, fail: (why: string) => never): void {
  try {
    parseDigest(d);
  } catch (err) {
    fail((err as Error).message);
  }
}

function checkDescriptor(d: Descriptor, fail: (why: string) => never): void {
  checkDigest(d.digest, fail);
  if (!Number.isSafeInteger(d.size) || d.size < 0) fail(`descriptor ${d.digest} has an invalid size ${String(d.size)}`);
}

/** The bytes an image's blobs take as stored (layers and config); docker's SIZE is the layers' unpacked content instead (store/sizes.ts). */
export function imageSize(image: Image): number {
  return image.layers.reduce((n, l) => n + l.size, 0) + image.rawConfig.length;
}

/**
 * A multi-platform image: an OCI index and the platform images it holds (those at hand: an
 * index pulled for one platform names manifests the store lacks), in the index's order.
 */
export interface ImageIndex {
  digest: string;
  mediaType: string;
  rawIndex: Buffer;
  index: Index;
  images: Image[];
}

/** Whether `x` is a multi-platform image. */
export function isIndex(x: Image | ImageIndex): x is ImageIndex {
  return 'images' in x;
}

/** An image's platform as an index lists it, from its config. */
export function platformOf(image: Image): PlatformSpec {
  const c = image.config;
  return { architecture: c.architecture, os: c.os, ...(c.variant ? { variant: c.variant } : {}) };
}

/**
 * The OCI index of `images` (each listed with its platform), as BuildKit writes a multi-platform
 * image's: the index media type, the manifests in the order built.
 */
export function indexOf(images: Image[], annotations?: Record<string, string>, mediaType: string = MediaType.ociIndex): ImageIndex {
  const index: Index = {
    schemaVersion: 2,
    mediaType,
    manifests: images.map((im) => ({ mediaType: im.mediaType, digest: im.digest, size: im.rawManifest.length, platform: platformOf(im) })),
    ...(annotations && Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
  const rawIndex = Buffer.from(JSON.stringify(index));
  return { digest: digestOf(rawIndex), mediaType, rawIndex, index, images };
}
