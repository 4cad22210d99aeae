/**
 * `gantry save`: images from the store into one tar.
 *
 * Both formats are an OCI image layout in a tar (`oci-layout`, `index.json`, `blobs/`);
 * the docker format adds `manifest.json` and `repositories`, pointing at the same blobs,
 * which is what `docker load` reads (Docker 25 writes its archives the same way). Entries
 * are in a fixed order with fixed times and owners, so the same images give the same bytes.
 */
import type { Writable } from 'node:stream';
import tar from '../tar/tar.js';
import { familiarName, parseReference } from '../oci/reference.js';
import { MediaType } from '../oci/media-types.js';
import type { Descriptor, Index } from '../oci/types.js';
import { REF_NAME_ANNOTATION } from '../oci/types.js';
import type { Image } from '../image/image.js';
import type { Store } from '../store/store.js';
import { writeTar } from './tar-out.js';

export type SaveFormat = 'docker' | 'oci';

export interface SaveItem {
  image: Image;
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

export async function saveImages(store: Store, items: SaveItem[], out: Writable, format: SaveFormat, mtime = new Date(0)): Promise<void> {
  await writeTar(out, (pack) => fillArchive(pack, store, items, format, mtime));
}

async function fillArchive(pack: tar.Pack, store: Store, items: SaveItem[], format: SaveFormat, mtime: Date): Promise<void> {
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
  const addBuffer = (name: string, data: Buffer) =>
    new Promise<void>((resolve, reject) => pack.entry(header(name, data.length), data, (err) => (err ? reject(err) : resolve())));
  const addBlob = (digest: string, size: number) =>
    new Promise<void>((resolve, reject) => {
      const sink = pack.entry(header(`blobs/sha256/${digest.slice(7)}`, size), (err) => (err ? reject(err) : resolve()));
      const source = store.openBlob(digest, size);
      source.on('error', (err) => {
        sink.destroy(err);
        reject(err);
      });
      source.pipe(sink);
    });

  await addBuffer('oci-layout', Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  await new Promise<void>((resolve, reject) => pack.entry(header('blobs/', 0, 'directory'), (err) => (err ? reject(err) : resolve())));
  await new Promise<void>((resolve, reject) => pack.entry(header('blobs/sha256/', 0, 'directory'), (err) => (err ? reject(err) : resolve())));
  const written = new Set<string>();
  const once = async (digest: string, write: () => Promise<void>) => {
    if (written.has(digest)) return;
    written.add(digest);
    await write();
  };
  const index: Index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repositories: Record<string, Record<string, string>> = {};
  for (const { image, names } of items) {
    await once(image.configDigest, () => addBuffer(`blobs/sha256/${image.configDigest.slice(7)}`, image.rawConfig));
    for (const layer of image.layers) await once(layer.digest, () => addBlob(layer.digest, layer.size));
    await once(image.digest, () => addBuffer(`blobs/sha256/${image.digest.slice(7)}`, image.rawManifest));
    const base: Descriptor = { mediaType: image.mediaType, digest: image.digest, size: image.rawManifest.length };
    if (names.length === 0) index.manifests.push(base);
    for (const name of names) {
      index.manifests.push({ ...base, annotations: nameAnnotations(name) });
    }
    const tags = names.map((n) => {
      const r = parseReference(n);
      const repo = familiarName(r);
      (repositories[repo] ??= {})[r.tag ?? 'latest'] = image.configDigest.slice(7);
      return `${repo}:${r.tag ?? 'latest'}`;
    });
    dockerManifest.push({
      Config: `blobs/sha256/${image.configDigest.slice(7)}`,
      RepoTags: tags,
      Layers: image.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    });
  }
  await addBuffer('index.json', Buffer.from(JSON.stringify(index)));
  if (format === 'docker') {
    await addBuffer('manifest.json', Buffer.from(JSON.stringify(dockerManifest)));
    await addBuffer('repositories', Buffer.from(JSON.stringify(repositories)));
  }
}
