/**
 * An archive on disk as a source of images: a docker-archive (`manifest.json`) or an OCI
 * archive (`oci-layout`, `index.json`), an uncompressed tar file. The archive is read once to
 * find its members (each file's place in the tar and its digest) and to check them: names may
 * not climb out or be absolute, OCI blobs must hash to their names, layers must hash to the
 * config's diff IDs. Each image then reads its blobs in place, from the file, verified as they
 * stream. `gantry load` writes these images into the store (load.ts); nothing here needs one.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GantryError, isSystemError } from '../errors/index.js';
import { validateImage, type Image, type ImageIndex, type Layer } from '../image/image.js';
import { digestOf, VerifyStream } from '../oci/digest.js';
import { indexProblem, parseDocument } from '../oci/document.js';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType } from '../oci/media-types.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
import { zlib } from '../support/process.js';
import tar from '../tar/tar.js';
import { sanitizeMemberName } from './sanitize.js';

export class ArchiveError extends GantryError {}

/** An image of an archive, and the names the archive gives it. */
export interface ArchiveImage {
  image: Image | ImageIndex;
  names: string[];
}

/** A file of the archive: where its bytes are, and their digest. */
interface Member {
  offset: number;
  size: number;
  digest: string;
}

const METADATA = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);
const METADATA_LIMIT = 16 * 1024 * 1024;

/** A member name from the archive: relative, without `..`; `./` prefixes dropped. */
const memberName = (raw: string, what: string): string => sanitizeMemberName(raw, what, true);

/** The images of the uncompressed tar archive `file` (`what` names it in errors). */
export async function readArchive(file: string, what: string = file): Promise<ArchiveImage[]> {
  const { members, links, metadata } = await indexArchive(file, what);
  const resolve = (name: string): Member => {
    let n = memberName(name, what);
    for (let hops = 0; links.has(n) && hops < 16; hops++) n = links.get(n) as string;
    const m = members.get(n);
    if (!m) throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${name} is named in the archive's metadata but not in the archive`);
    return m;
  };
  const archive = new ArchiveFile(file, what);
  const manifestJson = metadata.get('manifest.json');
  const indexJson = metadata.get('index.json');
  const index = indexJson && metadata.has('oci-layout') ? (parseJSON(indexJson, 'index.json', what) as Index) : undefined;
  // A multi-platform image is whole only in index.json: docker's manifest.json (Docker 28 writes
  // both) has one platform of it.
  const multi = Array.isArray(index?.manifests) && index.manifests.some((d) => INDEX_TYPES.has(d?.mediaType));
  if (manifestJson && !multi) return dockerImages(archive, parseJSON(manifestJson, 'manifest.json', what), resolve);
  if (index) return ociImages(archive, index, members);
  throw new ArchiveError('ARCHIVE_INVALID', `${what}: neither a docker archive (manifest.json) nor an OCI archive (oci-layout, index.json)`);
}

/** Every member of the archive, each hashed (OCI blobs checked against their names on the way). */
async function indexArchive(file: string, what: string): Promise<{ members: Map<string, Member>; links: Map<string, string>; metadata: Map<string, Buffer> }> {
  const extract = tar.extract();
  const members = new Map<string, Member>();
  const links = new Map<string, string>();
  const metadata = new Map<string, Buffer>();
  const reading = (async () => {
    for await (const entry of extract) {
      const h = entry.header;
      const name = memberName(h.name, what);
      if (h.type === 'symlink' || h.type === 'link') {
        // docker save (before v25) links duplicate layers to one copy.
        const target = h.type === 'symlink' ? path.posix.join(path.posix.dirname(name), h.linkname ?? '') : (h.linkname ?? '');
        links.set(name, memberName(target, what));
        entry.resume();
        continue;
      }
      if (h.type !== 'file' && h.type !== 'contiguous-file') {
        entry.resume();
        continue;
      }
      if (METADATA.has(name)) {
        if (h.size > METADATA_LIMIT) throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${name} is larger than ${METADATA_LIMIT} bytes`);
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        metadata.set(name, Buffer.concat(chunks));
        continue;
      }
      const m = /^blobs\/(sha256|sha512)\/([0-9a-f]+)$/.exec(name);
      const verify = new VerifyStream(m ? { digest: `${m[1]}:${m[2]}`, size: h.size } : { size: h.size });
      await pipeline(entry, verify, async (source) => {
        for await (const c of source) void c;
      });
      members.set(name, { offset: entry.offset, size: h.size, digest: verify.digest });
    }
  })();
  try {
    await Promise.all([pipeline(createReadStream(file), extract), reading]);
  } catch (err) {
    // The reader's error is the one that says what went wrong; the tar's follows from it.
    const first = await reading.then(() => err, (e: unknown) => e);
    throw archiveError(first, what);
  }
  return { members, links, metadata };
}

function archiveError(err: unknown, what: string): GantryError {
  if (err instanceof GantryError) return err;
  if (isSystemError(err)) return new ArchiveError('ARCHIVE_IO', `${what}: ${err.message}`, { cause: err });
  return new ArchiveError('ARCHIVE_CORRUPT', `${what}: not a valid tar archive (${(err as Error).message})`, { cause: err });
}

/** The archive file, read in place. */
class ArchiveFile {
  constructor(
    readonly file: string,
    readonly what: string,
  ) {}

  /**
   * A member's bytes, verified against its digest as they stream. The file is closed when the
   * reader is done with them, or gives up on them.
   */
  open(m: Member): Readable {
    const verify = new VerifyStream({ digest: m.digest, size: m.size });
    if (m.size === 0) return Readable.from([]).pipe(verify);
    const source = createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1 });
    source.on('error', (err) => verify.destroy(new ArchiveError('ARCHIVE_IO', `${this.what}: reading ${m.digest}: ${err.message}`, { cause: err })));
    verify.on('close', () => source.destroy());
    return source.pipe(verify);
  }

  /** A member read whole (a config or a manifest: at most 16 MiB). */
  async read(m: Member, name: string): Promise<Buffer> {
    if (m.size > METADATA_LIMIT) throw new ArchiveError('ARCHIVE_INVALID', `${this.what}: ${name} is larger than ${METADATA_LIMIT} bytes`);
    const chunks: Buffer[] = [];
    for await (const c of this.open(m)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  layer(m: Member, mediaType: string, diffId: string): Layer {
    return { digest: m.digest, size: m.size, mediaType, diffId, open: () => this.open(m) };
  }
}

function parseJSON(data: Buffer, name: string, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${name} is not valid JSON (${(err as Error).message})`);
  }
}

/** A docker-archive layer's media type, from its first bytes; its diff ID is checked on the way. */
async function inspectLayer(archive: ArchiveFile, member: Member, diffId: string): Promise<string> {
  const head: Buffer[] = [];
  let headLen = 0;
  for await (const c of archive.open(member)) {
    head.push(c as Buffer);
    headLen += (c as Buffer).length;
    if (headLen >= 4) break;
  }
  const b = Buffer.concat(head);
  const gzip = b[0] === 0x1f && b[1] === 0x8b;
  const zstd = b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;
  if (zstd) return MediaType.ociLayerZstd;
  let actual = member.digest;
  if (gzip) {
    const hash = createHash('sha256');
    await pipeline(archive.open(member), zlib().createGunzip(), async (src) => {
      for await (const c of src) hash.update(c as Buffer);
    });
    actual = `sha256:${hash.digest('hex')}`;
  }
  if (actual !== diffId) {
    throw new ArchiveError('ARCHIVE_INVALID', `${archive.what}: layer ${member.digest} does not match diff ID ${diffId} (uncompressed content is ${actual})`);
  }
  return gzip ? MediaType.ociLayerGzip : MediaType.ociLayer;
}

/** The images of a docker-archive: each its config as the archive has it, under an OCI manifest. */
async function dockerImages(archive: ArchiveFile, manifest: unknown, resolve: (n: string) => Member): Promise<ArchiveImage[]> {
  const { what } = archive;
  if (!Array.isArray(manifest)) throw new ArchiveError('ARCHIVE_INVALID', `${what}: manifest.json is not a list`);
  const out: ArchiveImage[] = [];
  for (const item of manifest as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[]) {
    if (typeof item.Config !== 'string' || !Array.isArray(item.Layers)) {
      throw new ArchiveError('ARCHIVE_INVALID', `${what}: manifest.json entry without Config and Layers`);
    }
    const cfgMember = resolve(item.Config);
    const rawConfig = await archive.read(cfgMember, item.Config);
    const config = parseJSON(rawConfig, item.Config, what) as ImageConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== item.Layers.length) {
      throw new ArchiveError('ARCHIVE_INVALID', `${what}: config ${cfgMember.digest} lists ${diffIds.length} diff IDs for ${item.Layers.length} layers`);
    }
    const layers: Layer[] = [];
    for (const [i, l] of (item.Layers as unknown[]).entries()) {
      if (typeof l !== 'string') throw new ArchiveError('ARCHIVE_INVALID', `${what}: manifest.json layer ${i} is not a name`);
      const member = resolve(l);
      layers.push(archive.layer(member, await inspectLayer(archive, member, diffIds[i] as string), diffIds[i] as string));
    }
    const m: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfgMember.digest, size: cfgMember.size },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    };
    const rawManifest = Buffer.from(JSON.stringify(m));
    const digest = digestOf(rawManifest);
    validateImage(digest, m, config);
    const image: Image = { digest, mediaType: MediaType.ociManifest, rawManifest, manifest: m, configDigest: cfgMember.digest, rawConfig, config, layers };
    const tags = Array.isArray(item.RepoTags) ? (item.RepoTags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
    out.push({ image, names: tags.map((t) => formatReference(normalizeReference(t))) });
  }
  return out;
}

/** The images an OCI archive's index.json names, read from its blobs. */
async function ociImages(archive: ArchiveFile, index: Index, members: Map<string, Member>): Promise<ArchiveImage[]> {
  const { what } = archive;
  const problem = indexProblem(index);
  if (problem !== undefined) throw new ArchiveError('ARCHIVE_INVALID', `${what}: index.json is not an OCI image index: ${problem}`);
  // Each manifest and index is read once, however often the archive names it.
  const read = new Map<string, Promise<Image | ImageIndex>>();
  const once = (d: Descriptor, make: () => Promise<Image | ImageIndex>): Promise<Image | ImageIndex> => {
    // Keyed by kind too: a digest named once as an index and once as a manifest is read as each.
    const key = `${INDEX_TYPES.has(d.mediaType) ? 'index' : 'manifest'} ${d.digest}`;
    let p = read.get(key);
    if (!p) read.set(key, (p = make()));
    return p;
  };
  const out: ArchiveImage[] = [];
  const seen = new Set<string>();
  for (const d of index.manifests) {
    const raw = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.[REF_NAME_ANNOTATION];
    // A bare ref.name like "latest" is a tag without a repository: load the image untagged.
    const name = raw !== undefined && /[/:]/.test(raw) ? formatReference(normalizeReference(raw)) : undefined;
    const key = `${d.digest} ${name ?? ''}`;
    if (seen.has(key)) continue; // the same image under the same name, listed again
    seen.add(key);
    const image = await once(d, () => (INDEX_TYPES.has(d.mediaType) ? ociIndex(archive, d, members, once) : ociImage(archive, d, members)));
    out.push({ image, names: name ? [name] : [] });
  }
  return out;
}

/**
 * A multi-platform image of an OCI archive: its index and the platform images the archive holds
 * (a manifest it lacks is left out, as one pulled for one platform lacks the others; an
 * attestation's too). A nested index is refused. `once`: each manifest read once.
 */
async function ociIndex(archive: ArchiveFile, d: Descriptor, members: Map<string, Member>, once: (d: Descriptor, make: () => Promise<Image | ImageIndex>) => Promise<Image | ImageIndex>): Promise<ImageIndex> {
  const { what } = archive;
  const rawIndex = await archive.read(blobMember(archive, members, d.digest, 'index'), d.digest);
  const parsed = parseDocument(rawIndex);
  const problem = 'problem' in parsed ? parsed.problem : indexProblem(parsed.json);
  if (problem !== undefined) throw new ArchiveError('ARCHIVE_INVALID', `${what}: index ${d.digest} is not an OCI image index: ${problem}`);
  const index = (parsed as { json: unknown }).json as Index;
  const images: Image[] = [];
  for (const m of index.manifests) {
    if (INDEX_TYPES.has(m.mediaType)) throw new ArchiveError('ARCHIVE_UNSUPPORTED', `${what}: index ${d.digest} names another index (${m.digest}); nested indexes are not supported`);
    if (m.platform?.os === 'unknown' || !members.has(blobName(m.digest))) continue;
    const image = (await once(m, () => ociImage(archive, m, members))) as Image;
    if (!images.includes(image)) images.push(image);
  }
  if (images.length === 0) throw new ArchiveError('ARCHIVE_INVALID', `${what}: index ${d.digest} has none of its images in the archive`);
  return { digest: d.digest, mediaType: d.mediaType, rawIndex, index, images };
}

/** Where an OCI layout keeps a blob. */
const blobName = (digest: string): string => `blobs/${digest.replace(':', '/')}`;

/** The member holding a blob the archive must have (`role`: what it is, for the error). */
function blobMember(archive: ArchiveFile, members: Map<string, Member>, digest: string, role: string): Member {
  const m = members.get(blobName(digest));
  if (!m) throw new ArchiveError('ARCHIVE_INVALID', `${archive.what}: ${role} ${digest} is not in the archive`);
  return m;
}

/** An image of an OCI archive, by its manifest's descriptor. */
async function ociImage(archive: ArchiveFile, d: Descriptor, members: Map<string, Member>): Promise<Image> {
  const { what } = archive;
  const blob = (digest: string, role: string): Member => blobMember(archive, members, digest, role);
  {
    if (!MANIFEST_TYPES.has(d.mediaType)) {
      throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${d.digest} has an unknown media type "${d.mediaType}"`);
    }
    const rawManifest = await archive.read(blob(d.digest, 'manifest'), d.digest);
    const manifest = parseJSON(rawManifest, d.digest, what) as Manifest;
    const configMember = blob(manifest.config?.digest ?? '', `config of ${d.digest}`);
    const rawConfig = await archive.read(configMember, manifest.config.digest);
    const config = parseJSON(rawConfig, manifest.config.digest, what) as ImageConfig;
    validateImage(d.digest, manifest, config);
    const layers = manifest.layers.map((l, i) => {
      const m = blobMember(archive, members, l.digest, `layer of ${d.digest}:`);
      if (m.size !== l.size) throw new ArchiveError('ARCHIVE_INVALID', `${what}: layer ${l.digest} of ${d.digest} is ${m.size} bytes, not the ${l.size} its manifest says`);
      return archive.layer(m, l.mediaType, config.rootfs.diff_ids[i] as string);
    });
    return { digest: d.digest, mediaType: d.mediaType, rawManifest, manifest, configDigest: manifest.config.digest, rawConfig, config, layers };
  }
}
