/**
 * `gantry load`: a docker-archive (`manifest.json`) or an OCI archive (`index.json`),
 * plain or compressed, into the store. Every file is checked as it streams in: names may
 * not climb out or be absolute, OCI blobs must hash to their names, layers must hash to
 * the config's diff IDs. On any error, what the load added is removed again.
 */
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from '../tar/tar.js';
import { GantryError, isSystemError } from '../errors/index.js';
import { zlib } from '../support/lazy.js';
import { validateImage } from '../image/image.js';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType } from '../oci/media-types.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageConfig, type Index, type Manifest } from '../oci/types.js';
import { writeImage } from '../store/images.js';
import { storeFailure, type Store } from '../store/store.js';
import { decompress } from '../tar/decompress.js';
import { sanitizeMemberName } from './sanitize.js';

export interface LoadedImage {
  name?: string;
  /** Config digest (docker's image ID). */
  id: string;
  digest: string;
}

const METADATA = new Set(['manifest.json', 'index.json', 'oci-layout', 'repositories']);
const METADATA_LIMIT = 16 * 1024 * 1024;

export class ArchiveError extends GantryError {}

/** A member name from the archive: relative, without `..`; `./` prefixes dropped. */
const memberName = (raw: string, what: string): string => sanitizeMemberName(raw, what, true);

interface Member {
  digest: string;
  size: number;
}

export async function loadArchive(store: Store, input: Readable, what: string): Promise<LoadedImage[]> {
  const created: string[] = [];
  try {
    return await loadInto(store, input, what, created);
  } catch (err) {
    await discard(store, created);
    throw err;
  }
}

async function loadInto(store: Store, input: Readable, what: string, created: string[]): Promise<LoadedImage[]> {
  const { stream } = await decompress(input, what);
  const extract = tar.extract();
  const files = new Map<string, Member>();
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
        if ((h.size ?? 0) > METADATA_LIMIT) throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${name} is larger than ${METADATA_LIMIT} bytes`);
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        metadata.set(name, Buffer.concat(chunks));
        continue;
      }
      const m = /^blobs\/(sha256|sha512)\/([0-9a-f]+)$/.exec(name);
      const expected = m ? { digest: `${m[1]}:${m[2]}`, size: h.size ?? 0 } : undefined;
      const existed = expected ? await store.hasBlob(expected.digest).catch(() => false) : false;
      const info = await store.writeBlob(entry as unknown as Readable, expected);
      if (!existed) created.push(info.digest);
      files.set(name, info);
    }
  })();
  const asArchiveError = (err: unknown): GantryError =>
    err instanceof GantryError ? err : isSystemError(err) ? new ArchiveError('ARCHIVE_IO', `${what}: ${err.message}`, { cause: err }) : new ArchiveError('ARCHIVE_CORRUPT', `${what}: not a valid tar archive (${(err as Error).message})`, { cause: err });
  try {
    await Promise.all([pipeline(stream, extract), reading]);
  } catch (err) {
    throw asArchiveError(await storeFailure(err, reading));
  }

  const resolve = (name: string): Member => {
    let n = memberName(name, what);
    for (let hops = 0; links.has(n) && hops < 16; hops++) n = links.get(n) as string;
    const f = files.get(n);
    if (!f) throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${name} is named in the archive's metadata but not in the archive`);
    return f;
  };

  const manifestJson = metadata.get('manifest.json');
  if (manifestJson) return loadDocker(store, what, parseJSON(manifestJson, 'manifest.json', what), resolve);
  const indexJson = metadata.get('index.json');
  if (indexJson && metadata.has('oci-layout')) return loadOci(store, what, parseJSON(indexJson, 'index.json', what) as Index);
  throw new ArchiveError('ARCHIVE_INVALID', `${what}: neither a docker archive (manifest.json) nor an OCI archive (oci-layout, index.json)`);
}

function parseJSON(data: Buffer, name: string, what: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${name} is not valid JSON (${(err as Error).message})`);
  }
}

/** Layer media type from the first bytes of the stored blob; verifies the diff ID on the way. */
async function inspectLayer(store: Store, member: Member, diffId: string, what: string): Promise<string> {
  const head: Buffer[] = [];
  let headLen = 0;
  for await (const c of store.openBlob(member.digest, member.size)) {
    head.push(c as Buffer);
    headLen += (c as Buffer).length;
    if (headLen >= 4) break;
  }
  const b = Buffer.concat(head);
  const gzip = b[0] === 0x1f && b[1] === 0x8b;
  const zstd = b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528;
  if (zstd) return MediaType.ociLayerZstd;
  const hash = createHash('sha256');
  const source = store.openBlob(member.digest, member.size);
  if (gzip) await pipeline(source, zlib().createGunzip(), async (src) => {
    for await (const c of src) hash.update(c as Buffer);
  });
  else for await (const c of source) hash.update(c as Buffer);
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== diffId) {
    throw new ArchiveError('ARCHIVE_INVALID', `${what}: layer ${member.digest} does not match diff ID ${diffId} (uncompressed content is ${actual})`);
  }
  return gzip ? MediaType.ociLayerGzip : MediaType.ociLayer;
}

async function loadDocker(store: Store, what: string, manifest: unknown, resolve: (n: string) => Member): Promise<LoadedImage[]> {
  if (!Array.isArray(manifest)) throw new ArchiveError('ARCHIVE_INVALID', `${what}: manifest.json is not a list`);
  const out: LoadedImage[] = [];
  for (const item of manifest as { Config?: unknown; RepoTags?: unknown; Layers?: unknown }[]) {
    if (typeof item.Config !== 'string' || !Array.isArray(item.Layers)) {
      throw new ArchiveError('ARCHIVE_INVALID', `${what}: manifest.json entry without Config and Layers`);
    }
    const cfgMember = resolve(item.Config);
    const config = await store.readJSON<ImageConfig>(cfgMember.digest);
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== item.Layers.length) {
      throw new ArchiveError('ARCHIVE_INVALID', `${what}: config ${cfgMember.digest} lists ${diffIds.length} diff IDs for ${item.Layers.length} layers`);
    }
    const layers = [];
    for (const [i, l] of (item.Layers as unknown[]).entries()) {
      if (typeof l !== 'string') throw new ArchiveError('ARCHIVE_INVALID', `${what}: manifest.json layer ${i} is not a name`);
      const member = resolve(l);
      const mediaType = await inspectLayer(store, member, diffIds[i] as string, what);
      layers.push({ ...member, mediaType });
    }
    const descriptor = await writeImage(store, { config, layers });
    const tags = Array.isArray(item.RepoTags) ? (item.RepoTags as unknown[]).filter((t): t is string => typeof t === 'string') : [];
    const names = tags.map((t) => formatReference(normalizeReference(t)));
    for (const n of names) await store.tag(n, descriptor);
    if (names.length === 0) await store.addUntagged(descriptor);
    const id = await configOf(store, descriptor);
    if (names.length === 0) out.push({ id, digest: descriptor.digest });
    for (const name of names) out.push({ name, id, digest: descriptor.digest });
  }
  return out;
}

async function configOf(store: Store, d: Descriptor): Promise<string> {
  return (await store.readJSON<Manifest>(d.digest)).config.digest;
}

async function loadOci(store: Store, what: string, index: Index): Promise<LoadedImage[]> {
  if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) {
    throw new ArchiveError('ARCHIVE_INVALID', `${what}: index.json is not an OCI image index`);
  }
  const out: LoadedImage[] = [];
  for (const d of index.manifests) {
    if (INDEX_TYPES.has(d.mediaType)) {
      throw new ArchiveError('ARCHIVE_UNSUPPORTED', `${what}: ${d.digest} is a multi-platform index; loading those is not supported yet`);
    }
    if (!MANIFEST_TYPES.has(d.mediaType)) {
      throw new ArchiveError('ARCHIVE_INVALID', `${what}: ${d.digest} has an unknown media type "${d.mediaType}"`);
    }
    const manifest = await store.readJSON<Manifest>(d.digest);
    const config = await store.readJSON<ImageConfig>(manifest.config.digest);
    validateImage(d.digest, manifest, config);
    for (const l of manifest.layers) {
      if (!(await store.hasBlob(l.digest))) throw new ArchiveError('ARCHIVE_INVALID', `${what}: layer ${l.digest} of ${d.digest} is not in the archive`);
    }
    const descriptor: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
    const raw = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.[REF_NAME_ANNOTATION];
    // A bare ref.name like "latest" is a tag without a repository: load the image untagged.
    const name = raw !== undefined && /[/:]/.test(raw) ? formatReference(normalizeReference(raw)) : undefined;
    if (name) await store.tag(name, descriptor);
    else await store.addUntagged(descriptor);
    out.push({ ...(name ? { name } : {}), id: manifest.config.digest, digest: d.digest });
  }
  return out;
}

/** Remove blobs this load created that nothing in the index references. */
async function discard(store: Store, created: string[]): Promise<void> {
  if (created.length === 0) return;
  await store.releaseLease();
  await store.withLock(async () => {
    const index = await store.readIndex();
    const referenced = new Set<string>();
    for (const d of index.manifests) {
      referenced.add(d.digest);
      try {
        const m = await store.readJSON<Manifest>(d.digest);
        referenced.add(m.config.digest);
        for (const l of m.layers) referenced.add(l.digest);
      } catch {
        // not a manifest we can read; keep what it names
      }
    }
    const leased = await store.liveLeases();
    for (const digest of created) {
      if (!referenced.has(digest) && !leased.has(digest)) {
        await rm(store.blobPath(digest), { force: true });
      }
    }
  });
}
