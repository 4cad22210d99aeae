/**
 * `gantry save`: images from the store into one tar.
 *
 * Both formats are an OCI image layout in a tar (`oci-layout`, `index.json`, `blobs/`);
 * the docker format adds `manifest.json` and `repositories`, pointing at the same blobs,
 * which is what `docker load` reads (Docker 25 writes its archives the same way). Entries
 * are in a fixed order with fixed times and owners, so the same images give the same bytes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { entryFrom, type Pack } from '../tar/tar.js';
import { familiarName, parseReference } from '../oci/reference.js';
import { MediaType } from '../oci/media-types.js';
import type { Descriptor, Index } from '../oci/types.js';
import { REF_NAME_ANNOTATION } from '../oci/types.js';
import { isIndex, type BlobSource, type Image, type ImageIndex } from '../image/image.js';
import { hostOrFirst } from '../store/images.js';
import { writeTar } from './tar-out.js';

export type SaveFormat = 'docker' | 'oci';

export interface SaveItem {
  /** An image, or a multi-platform image (its index and the platform images it holds). */
  image: Image | ImageIndex;
  /** Full normalised names to record for this image (may be empty). */
  names: string[];
}

const CONTAINERD_NAME = 'io.containerd.image.name';

/**
 * How an OCI index names an image, as docker save and BuildKit's OCI exporter write it: the
 * full name in io.containerd.image.name, the tag alone in org.opencontainers.image.ref.name.
 */
export function nameAnnotations(name: string): Record<string, string> {
  const r = parseReference(name);
  return { [CONTAINERD_NAME]: name, [REF_NAME_ANNOTATION]: r.tag ?? 'latest' };
}

/** Where a layout's files go: entries of a tar, or files of a directory. */
interface LayoutTarget {
  directory(name: string): Promise<void>;
  buffer(name: string, data: Buffer): Promise<void>;
  blob(name: string, blob: BlobSource): Promise<void>;
}

/** Images from anywhere (their layers read through `open`) into one tar. */
export async function saveImages(items: SaveItem[], out: Writable, format: SaveFormat, mtime = new Date(0)): Promise<void> {
  await writeTar(out, (pack) => fillLayout(tarTarget(pack, mtime), items, format));
}

/** Images into an OCI image layout directory (`-o type=oci,tar=false`): the files the tar would hold. */
export async function saveLayoutDirectory(items: SaveItem[], dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await fillLayout(directoryTarget(dir), items, 'oci');
}

function tarTarget(pack: Pack, mtime: Date): LayoutTarget {
  const header = (name: string, size: number, type: 'file' | 'directory' = 'file') => ({
    name,
    size,
    type,
    mode: type === 'directory' ? 0o755 : 0o644,
    mtime,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
  });
  return {
    directory: (name) => new Promise<void>((resolve, reject) => pack.entry(header(name, 0, 'directory'), (err) => (err ? reject(err) : resolve()))),
    buffer: (name, data) => new Promise<void>((resolve, reject) => pack.entry(header(name, data.length), data, (err) => (err ? reject(err) : resolve()))),
    blob: (name, blob) => entryFrom(pack, header(name, blob.size), blob.open()),
  };
}

/**
 * A layout's files in a directory, each written to a temp file renamed into place: a reader of
 * the directory (a build taking its cache from it while it writes the next) never sees half a
 * file. A blob already there (its digest checked) is left as it is.
 */
function directoryTarget(dir: string): LayoutTarget {
  const write = async (name: string, fill: (tmp: string) => Promise<void>): Promise<void> => {
    const dest = path.join(dir, name);
    const tmp = `${dest}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      await fill(tmp);
      await rename(tmp, dest);
    } finally {
      await rm(tmp, { force: true });
    }
  };
  return {
    directory: async (name) => void (await mkdir(path.join(dir, name), { recursive: true })),
    // Mode 0644, as the store's blobs are (the directory's files were copies of them).
    buffer: (name, data) => write(name, (tmp) => writeFile(tmp, data, { mode: 0o644, flag: 'wx' })),
    blob: async (name, blob) => {
      if (await holds(path.join(dir, name), blob)) return;
      await write(name, (tmp) => pipeline(blob.open(), createWriteStream(tmp, { mode: 0o644, flags: 'wx' })));
    },
  };
}

/** Whether `file` is `blob` already: its size, and its bytes' digest. */
async function holds(file: string, blob: BlobSource): Promise<boolean> {
  if ((await stat(file).catch(() => undefined))?.size !== blob.size) return false;
  const hash = createHash(blob.digest.startsWith('sha512:') ? 'sha512' : 'sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `${blob.digest.slice(0, blob.digest.indexOf(':'))}:${hash.digest('hex')}` === blob.digest;
}

async function fillLayout(target: LayoutTarget, items: SaveItem[], format: SaveFormat): Promise<void> {
  // blobs/<algorithm>/<hex>, as the OCI layout names them (a sha512 blob under blobs/sha512/).
  const blobPath = (digest: string): string => `blobs/${digest.replace(':', '/')}`;
  await target.buffer('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  await target.directory('blobs/');
  await target.directory('blobs/sha256/');
  const platformImages = items.flatMap(({ image }) => (isIndex(image) ? image.images : [image]));
  const others = new Set(platformImages.flatMap((image) => [image.digest, image.configDigest, ...image.layers.map((l) => l.digest)]).filter((d) => !d.startsWith('sha256:')).map((d) => `${path.posix.dirname(blobPath(d))}/`));
  for (const dir of others) await target.directory(dir);
  const written = new Set<string>();
  const once = async (digest: string, write: () => Promise<void>) => {
    if (written.has(digest)) return;
    written.add(digest);
    await write();
  };
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image: item, names } of items) {
    for (const image of isIndex(item) ? item.images : [item]) {
      await once(image.configDigest, () => target.buffer(blobPath(image.configDigest), image.rawConfig));
      for (const layer of image.layers) await once(layer.digest, () => target.blob(blobPath(layer.digest), layer));
      await once(image.digest, () => target.buffer(blobPath(image.digest), image.rawManifest));
    }
    if (isIndex(item)) await once(item.digest, () => target.buffer(blobPath(item.digest), item.rawIndex));
    const base: Descriptor = isIndex(item)
      ? { mediaType: item.mediaType, digest: item.digest, size: item.rawIndex.length }
      : { mediaType: item.mediaType || MediaType.ociManifest, digest: item.digest, size: item.rawManifest.length };
    if (names.length === 0) index.manifests.push(base);
    for (const name of names) {
      index.manifests.push({ ...base, annotations: nameAnnotations(name) });
    }
    // docker's manifest.json names one image per entry: of a multi-platform image, this host's
    // platform's (else the first), as Docker's containerd store saves one.
    const image = isIndex(item) ? hostOrFirst(item) : item;
    if (!image) continue;
    const tags = names.map((n) => {
      const r = parseReference(n);
      const repo = familiarName(r);
      (repositories[repo] ??= {})[r.tag ?? 'latest'] = image.configDigest.slice(7);
      return `${repo}:${r.tag ?? 'latest'}`;
    });
    dockerManifest.push({
      Config: blobPath(image.configDigest),
      RepoTags: tags,
      Layers: image.layers.map((l) => blobPath(l.digest)),
    });
  }
  await target.buffer('index.json', Buffer.from(JSON.stringify(index)));
  if (format === 'docker') {
    await target.buffer('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
    await target.buffer('repositories', Buffer.from(JSON.stringify(repositories)));
  }
}
