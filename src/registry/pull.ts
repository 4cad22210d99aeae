/**
 * Pull an image into the store: negotiate the manifest type, pick the platform from an
 * index, verify every manifest and blob against its digest and size while it streams, and
 * fetch only the blobs the store does not have, a few at a time.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, truncate } from 'node:fs/promises';
import { GantryError, isSystemError, RegistryError, StoreError } from '../errors/index.js';
import { crashPoint } from '../support/crash.js';
import { validateImage } from '../image/image.js';
import { CONFIG_SIZE_LIMIT, MANIFEST_SIZE_LIMIT, configProblem, indexProblem, manifestProblem, parseDocument } from '../oci/document.js';
import { MediaType, INDEX_TYPES, MANIFEST_TYPES } from '../oci/media-types.js';
import { formatPlatform, hostPlatform, type Platform } from '../oci/platform.js';
import { formatReference, normalizeReference, type Reference } from '../oci/reference.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../oci/types.js';
import type { BlobStore as Store } from './blob-store.js';
import type { RegistryClient } from './client.js';

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(', ');


export interface PullProgress {
  digest: string;
  bytes: number;
  total: number;
  done: boolean;
  cached?: boolean;
}

export interface PullOptions {
  platform?: Platform;
  /** Blobs downloaded at once (default 3). */
  concurrency?: number;
  onProgress?: (p: PullProgress) => void;
  /** Store the image under this name instead of the one pulled (used for mirrors). */
  name?: string;
  /**
   * The most bytes a layer may declare: one declaring more is refused before it is fetched. The
   * CLI and build() pass GANTRY_EXTRACT_LIMIT (a layer cannot expand to less than its size);
   * default 64 GiB, that limit's default.
   */
  layerLimit?: number;
}

export interface PullResult {
  name: string;
  /** The platform manifest stored and named. */
  descriptor: Descriptor;
  /** The digest the reference resolved to (the index's, for a multi-platform image). */
  resolvedDigest: string;
  configDigest: string;
}

/**
 * The body, read while it stays within `limit` bytes: one byte more ends the read with an error
 * (`declared` says the limit is what a descriptor declared, not gantry's own).
 */
async function readLimited(body: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void }, limit: number, what: string, declared = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > limit) {
      body.destroy?.();
      throw new RegistryError(
        declared ? 'REGISTRY_SIZE_MISMATCH' : 'REGISTRY_MANIFEST_TOO_LARGE',
        declared ? `${what}: more than the ${limit} bytes its descriptor says; nothing was stored` : `${what} is larger than ${limit} bytes`,
      );
    }
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

/** Fetch a manifest by tag or digest and check it: digest, size, media type. */
export async function fetchManifest(
  client: RegistryClient,
  ref: Reference,
  reference: string,
  expected?: Descriptor,
): Promise<{ bytes: Buffer; digest: string; mediaType: string; json: Manifest | Index }> {
  const path = `/v2/${ref.path}/manifests/${reference}`;
  if (expected && expected.size > MANIFEST_SIZE_LIMIT) {
    throw new RegistryError('REGISTRY_MANIFEST_TOO_LARGE', `manifest ${expected.digest} of ${client.endpoint}/v2/${ref.path}: its descriptor says ${expected.size} bytes, more than the ${MANIFEST_SIZE_LIMIT} bytes gantry reads of a manifest`);
  }
  const res = await client.request('GET', path, { headers: { accept: MANIFEST_ACCEPT }, scope: `repository:${ref.path}:pull` });
  const url = `${client.endpoint}${path}`;
  const bytes = expected ? await readLimited(res.body, expected.size, `manifest ${url}`, true) : await readLimited(res.body, MANIFEST_SIZE_LIMIT, `manifest ${url}`);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const wanted = expected?.digest ?? (reference.includes(':') ? reference : undefined);
  if (wanted !== undefined && wanted !== digest) {
    throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `manifest ${url}: content has digest ${digest}, expected ${wanted}`, { url });
  }
  if (expected && expected.size !== bytes.length) {
    throw new RegistryError('REGISTRY_SIZE_MISMATCH', `manifest ${url}: ${bytes.length} bytes, expected ${expected.size}`, { url });
  }
  const header = res.headers['docker-content-digest'];
  if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
    throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `manifest ${url}: Docker-Content-Digest ${header} does not match the content (${digest})`, { url });
  }
  const parsed = parseDocument(bytes);
  if ('problem' in parsed) throw new RegistryError('REGISTRY_BAD_MANIFEST', `manifest ${url} (${digest}) is ${parsed.problem}`, { url });
  if (typeof parsed.json !== 'object' || parsed.json === null || Array.isArray(parsed.json)) {
    throw new RegistryError('REGISTRY_BAD_MANIFEST', `manifest ${url} (${digest}) is not a JSON object`, { url });
  }
  const json = parsed.json as Manifest | (Index & { mediaType?: string; schemaVersion?: number });
  const contentType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
  const mediaType = json.mediaType ?? contentType;
  if ((json as { schemaVersion?: number }).schemaVersion === 1 || mediaType.startsWith('application/vnd.docker.distribution.manifest.v1')) {
    throw new RegistryError('REGISTRY_SCHEMA1', `manifest ${url} is Docker schema 1, which gantry does not support (push it again with a current client)`, { url });
  }
  const hasLayers = 'layers' in json;
  const hasManifests = 'manifests' in json;
  if (hasLayers && hasManifests) throw new RegistryError('REGISTRY_BAD_MANIFEST', `manifest ${url} claims to be both an index and a manifest`, { url });
  if (json.mediaType && contentType && json.mediaType !== contentType && contentType !== 'application/json') {
    throw new RegistryError('REGISTRY_BAD_MANIFEST', `manifest ${url}: Content-Type ${contentType} disagrees with mediaType ${json.mediaType}`, { url });
  }
  const kind = hasManifests ? 'index' : hasLayers ? 'manifest' : 'unknown';
  if (kind === 'unknown' || !(INDEX_TYPES.has(mediaType) || MANIFEST_TYPES.has(mediaType))) {
    throw new RegistryError('REGISTRY_BAD_MANIFEST', `manifest ${url}: unsupported media type "${mediaType}"`, { url });
  }
  // The media type and the shape agree, and the shape is what the type says, before any field is read.
  if (INDEX_TYPES.has(mediaType) !== (kind === 'index')) {
    throw new RegistryError('REGISTRY_BAD_MANIFEST', `manifest ${url} (${digest}): its media type "${mediaType}" says ${kind === 'index' ? 'a manifest' : 'an index'}, but it has ${kind === 'index' ? 'a manifests list' : 'layers'}`, { url });
  }
  const problem = kind === 'index' ? indexProblem(json) : manifestProblem(json);
  if (problem) throw new RegistryError('REGISTRY_BAD_MANIFEST', `${kind} ${url} (${digest}): ${problem}`, { url });
  return { bytes, digest, mediaType, json };
}

function platformMatches(d: Descriptor, want: Platform): boolean {
  const p = d.platform;
  if (!p || p.os !== want.os || p.architecture !== want.architecture) return false;
  if (want.variant && p.variant && p.variant !== want.variant) return false;
  return true;
}

export async function pullImage(client: RegistryClient, store: Store, input: string, options: PullOptions = {}): Promise<PullResult> {
  const ref = normalizeReference(input);
  const name = options.name ?? formatReference(ref);
  const reference = ref.digest ?? (ref.tag as string);
  const want = options.platform ?? hostPlatform();
  let top = await fetchManifest(client, ref, reference);
  const resolvedDigest = top.digest;
  if (INDEX_TYPES.has(top.mediaType)) {
    const index = top.json as Index;
    const candidates = index.manifests.filter((d) => MANIFEST_TYPES.has(d.mediaType));
    const pick = candidates.find((d) => platformMatches(d, want));
    if (!pick) {
      const have = candidates.map((d) => (d.platform ? formatPlatform({ os: d.platform.os, architecture: d.platform.architecture, ...(d.platform.variant ? { variant: d.platform.variant } : {}) }) : 'unknown'));
      throw new RegistryError('REGISTRY_NO_PLATFORM', `${name} has no image for ${formatPlatform(want)} (it has: ${have.join(', ') || 'none'})`);
    }
    top = await fetchManifest(client, ref, pick.digest, pick);
    if (!MANIFEST_TYPES.has(top.mediaType)) {
      throw new RegistryError(
        'REGISTRY_BAD_MANIFEST',
        `index ${client.endpoint}/v2/${ref.path}/manifests/${reference} (${resolvedDigest}) lists ${pick.digest} as a manifest (${pick.mediaType}), but it is ${INDEX_TYPES.has(top.mediaType) ? 'an index' : `"${top.mediaType}"`}`,
      );
    }
  }
  const manifest = top.json as Manifest;
  // The config first (small), checked before any layer is fetched.
  const config = await fetchConfig(client, store, ref, manifest.config, options);
  validateImage(top.digest, manifest, config);
  // A layer may not declare more than a layer may expand to: refused before a byte is fetched.
  const most = options.layerLimit ?? 64 * 1024 ** 3;
  for (const l of manifest.layers) {
    if (l.size > most) {
      throw new RegistryError(
        'REGISTRY_BLOB_TOO_LARGE',
        `layer ${l.digest} of ${name}: its descriptor says ${l.size} bytes, more than the extraction limit of ${most} bytes (GANTRY_EXTRACT_LIMIT raises it); nothing was fetched`,
      );
    }
  }
  const queue = [...manifest.layers];
  const workers = Array.from({ length: Math.max(1, options.concurrency ?? 3) }, async () => {
    for (let d = queue.shift(); d; d = queue.shift()) await fetchBlob(client, store, ref, d, options);
  });
  await Promise.all(workers);
  await store.writeBlob(top.bytes, { digest: top.digest, size: top.bytes.length });
  const descriptor: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
  if (ref.tag !== undefined) await store.tag(name, descriptor);
  else await store.addUntagged(descriptor);
  return { name, descriptor, resolvedDigest, configDigest: manifest.config.digest };
}

/**
 * The image config: at most CONFIG_SIZE_LIMIT bytes (refused before a byte is fetched when its
 * descriptor says more), read into memory, checked against its digest, size, nesting and shape,
 * and only then stored. One the store has already is read back and checked the same way.
 */
async function fetchConfig(client: RegistryClient, store: Store, ref: Reference, d: Descriptor, options: PullOptions): Promise<ImageConfig> {
  const path = `/v2/${ref.path}/blobs/${d.digest}`;
  const url = client.endpoint + path;
  if (d.size > CONFIG_SIZE_LIMIT) {
    throw new RegistryError('REGISTRY_BLOB_TOO_LARGE', `config ${d.digest} from ${url}: its descriptor says ${d.size} bytes, more than the ${CONFIG_SIZE_LIMIT} bytes gantry reads of an image config; nothing was fetched`, { url });
  }
  let bytes: Buffer;
  const stored = await store.hasBlob(d.digest);
  if (stored) {
    bytes = await readLimited(store.openBlob(d.digest, d.size), d.size, `config ${d.digest} in the store`, true);
    await store.lease(d.digest);
  } else {
    const res = await client.request('GET', path, { scope: `repository:${ref.path}:pull` });
    bytes = await readLimited(res.body, d.size, `config ${d.digest} from ${url}`, true);
    const actual = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (bytes.length !== d.size) throw new RegistryError('REGISTRY_SIZE_MISMATCH', `config ${d.digest} from ${url}: ${bytes.length} bytes, expected ${d.size}; nothing was stored`, { url });
    if (d.digest.startsWith('sha256:') && actual !== d.digest) {
      throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `config ${d.digest} from ${url}: content has digest ${actual}; nothing was stored`, { url });
    }
  }
  const parsed = parseDocument(bytes);
  const problem = 'problem' in parsed ? parsed.problem : configProblem(parsed.json);
  if (problem !== undefined) throw new RegistryError('REGISTRY_BAD_CONFIG', `config ${d.digest} from ${url}: ${problem}; nothing was stored`, { url });
  if (!stored) {
    try {
      await store.writeBlob(bytes, { digest: d.digest, size: d.size });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH') {
        throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `config ${d.digest} from ${url}: ${e.message}; nothing was stored`, { url }, { cause: err });
      }
      throw err;
    }
  }
  options.onProgress?.({ digest: d.digest, bytes: d.size, total: d.size, done: true, ...(stored ? { cached: true } : {}) });
  return (parsed as { json: unknown }).json as ImageConfig;
}

/**
 * Download one blob unless the store has it. The bytes go to a temp file first; when the
 * connection drops mid-blob the download resumes with `Range` (from the start when the
 * registry ignores it). The finished file is verified against digest and size as it moves
 * into the store; nothing unverified is ever stored.
 */
async function fetchBlob(client: RegistryClient, store: Store, ref: Reference, d: Descriptor, options: PullOptions, attempts = 4): Promise<void> {
  if (await store.hasBlob(d.digest)) {
    await store.lease(d.digest);
    options.onProgress?.({ digest: d.digest, bytes: d.size, total: d.size, done: true, cached: true });
    return;
  }
  const path = `/v2/${ref.path}/blobs/${d.digest}`;
  const url = client.endpoint + path;
  const tmp = store.tempPath('dl');
  let offset = 0;
  try {
    for (let attempt = 1; ; attempt++) {
      const res = await client.request('GET', path, {
        scope: `repository:${ref.path}:pull`,
        ok: [200, 206],
        transfer: true,
        ...(offset > 0 ? { headers: { range: `bytes=${offset}-` } } : {}),
      });
      if (offset > 0 && res.status === 200) {
        offset = 0; // the registry sent the whole blob again
        await truncate(tmp, 0);
      }
      const out = await open(tmp, offset > 0 ? 'a' : 'w');
      try {
        for await (const chunk of res.body) {
          offset += chunk.length;
          if (offset > d.size) {
            throw new RegistryError('REGISTRY_SIZE_MISMATCH', `blob ${d.digest} from ${url}: more than the ${d.size} bytes its descriptor says; nothing was stored`, { url });
          }
          await out.write(chunk);
          crashPoint?.('pull-chunk');
          options.onProgress?.({ digest: d.digest, bytes: offset, total: d.size, done: false });
        }
        break;
      } catch (err) {
        const code = (err as { code?: string }).code ?? '';
        const dropped = ['UND_ERR_SOCKET', 'ECONNRESET', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'EPIPE'].includes(code);
        if (!dropped || attempt >= attempts) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      } finally {
        await out.close();
      }
    }
    try {
      await store.writeBlob(createReadStream(tmp), { digest: d.digest, size: d.size });
    } catch (err) {
      const e = err as Error & { code?: string };
      if (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH') {
        throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `blob ${d.digest} from ${url}: ${e.message}; nothing was stored`, { url }, { cause: err });
      }
      throw err;
    }
  } catch (err) {
    if (err instanceof GantryError || !isSystemError(err) || err.code === 'ECONNRESET' || err.code === 'EPIPE') throw err;
    // The file system failed (a full disk), not the registry: say where gantry was writing.
    throw new StoreError('STORE_IO', `blob ${d.digest} from ${url}: writing ${tmp}: ${(err as Error).message}`, { cause: err });
  } finally {
    await rm(tmp, { force: true });
  }
  options.onProgress?.({ digest: d.digest, bytes: d.size, total: d.size, done: true });
}
