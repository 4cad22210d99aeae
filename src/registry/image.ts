/**
 * An image in a registry, read as an `Image` without a store (go-containerregistry's
 * remote.Image): the manifest negotiated and, from an index, the platform's picked; the config
 * read into memory; both checked against their digests, sizes and shapes before anything trusts
 * them. A layer's bytes are fetched only when a sink opens it, and checked as they stream. Any
 * sink takes such an image: the store (registry/pull.ts), an archive, another registry.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { RegistryError } from '../errors/index.js';
import { validateImage, type Image, type Layer } from '../image/image.js';
import { parseDigest } from '../oci/digest.js';
import { CONFIG_SIZE_LIMIT, MANIFEST_SIZE_LIMIT, configProblem, indexProblem, manifestProblem, parseDocument } from '../oci/document.js';
import { MediaType, INDEX_TYPES, MANIFEST_TYPES } from '../oci/media-types.js';
import { formatPlatform, hostPlatform, type Platform } from '../oci/platform.js';
import { formatReference, normalizeReference, type Reference } from '../oci/reference.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../oci/types.js';
import type { RegistryClient } from './client.js';

export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
].join(', ');

export interface RemoteImageOptions {
  /** The platform taken from an index (default: this host's). */
  platform?: Platform;
  /**
   * The most bytes a layer may declare: one declaring more is refused before anything is
   * fetched. The CLI and build() pass GANTRY_EXTRACT_LIMIT (a layer cannot expand to less than
   * its size); default 64 GiB, that limit's default.
   */
  layerLimit?: number;
  /** The config's bytes where the caller has them already (a store), else undefined: then they are fetched. */
  knownBlob?: (d: Descriptor) => Promise<Buffer | undefined>;
}

/** An image read from a registry: an `Image`, and where it was read from. */
export interface RemoteImage extends Image {
  /** The reference read, normalised (`docker.io/library/busybox:latest`). */
  name: string;
  ref: Reference;
  /** The digest the reference resolved to: the index's, for a multi-platform image. */
  resolvedDigest: string;
  /** The config came from `knownBlob`, not the registry. */
  configKnown: boolean;
}

/**
 * The body, read while it stays within `limit` bytes: one byte more ends the read with an error
 * (`declared` says the limit is what a descriptor declared, not gantry's own).
 */
export async function readLimited(body: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void }, limit: number, what: string, declared = false): Promise<Buffer> {
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


/** The image `input` names in the registry `client` speaks to, as an `Image` (see the module's comment). */
export async function remoteImage(client: RegistryClient, input: string, options: RemoteImageOptions = {}): Promise<RemoteImage> {
  const ref = normalizeReference(input);
  const name = formatReference(ref);
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
  // The config first (small), checked before any layer is looked at.
  const { bytes: rawConfig, config, known } = await fetchConfig(client, ref, manifest.config, options);
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
  const diffIds = config.rootfs.diff_ids;
  const layers: Layer[] = manifest.layers.map((d, i) => ({
    digest: d.digest,
    size: d.size,
    mediaType: d.mediaType,
    diffId: diffIds[i] as string,
    open: () => remoteBlob(client, ref, d),
  }));
  return {
    digest: top.digest,
    mediaType: top.mediaType,
    rawManifest: top.bytes,
    manifest,
    configDigest: manifest.config.digest,
    rawConfig,
    config,
    layers,
    name,
    ref,
    resolvedDigest,
    configKnown: known,
  };
}

/**
 * The image config: at most CONFIG_SIZE_LIMIT bytes (refused before a byte is fetched when its
 * descriptor says more), read into memory, checked against its digest, size, nesting and shape.
 * One the caller has already (`knownBlob`) is checked the same way.
 */
async function fetchConfig(client: RegistryClient, ref: Reference, d: Descriptor, options: RemoteImageOptions): Promise<{ bytes: Buffer; config: ImageConfig; known: boolean }> {
  let known = false;
  const bytes = await configBlob(client, ref, d, 'config', async (blob) => {
    const found = await options.knownBlob?.(blob);
    known = found !== undefined;
    return found;
  });
  const parsed = parseDocument(bytes);
  const problem = 'problem' in parsed ? parsed.problem : configProblem(parsed.json);
  if (problem !== undefined) throw new RegistryError('REGISTRY_BAD_CONFIG', `config ${d.digest} from ${client.endpoint}/v2/${ref.path}/blobs/${d.digest}: ${problem}`, { url: `${client.endpoint}/v2/${ref.path}/blobs/${d.digest}` });
  return { bytes, config: (parsed as { json: unknown }).json as ImageConfig, known };
}

/**
 * A config blob (an image's config, a cache's document) read into memory: at most
 * CONFIG_SIZE_LIMIT bytes (refused before a byte is fetched when its descriptor says more),
 * checked against its size and digest. `known` gives its bytes where the caller has them already
 * (a store): they are checked the same way; else they are fetched.
 */
export async function configBlob(client: RegistryClient, ref: Reference, d: Descriptor, what: string, known?: (d: Descriptor) => Promise<Buffer | undefined>): Promise<Buffer> {
  const path = `/v2/${ref.path}/blobs/${d.digest}`;
  const url = client.endpoint + path;
  if (d.size > CONFIG_SIZE_LIMIT) {
    throw new RegistryError('REGISTRY_BLOB_TOO_LARGE', `${what} ${d.digest} from ${url}: its descriptor says ${d.size} bytes, more than the ${CONFIG_SIZE_LIMIT} bytes gantry reads of a ${what}; nothing was fetched`, { url });
  }
  const { algorithm } = parseDigest(d.digest);
  let bytes = await known?.(d);
  if (bytes === undefined) {
    const res = await client.request('GET', path, { scope: `repository:${ref.path}:pull` });
    bytes = await readLimited(res.body, d.size, `${what} ${d.digest} from ${url}`, true);
  }
  if (bytes.length !== d.size) throw new RegistryError('REGISTRY_SIZE_MISMATCH', `${what} ${d.digest} from ${url}: ${bytes.length} bytes, expected ${d.size}`, { url });
  const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
  if (actual !== d.digest) throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `${what} ${d.digest} from ${url}: content has digest ${actual}`, { url });
  return bytes;
}

/** Errors of a connection that dropped mid-body: the GET is made again from where it stopped. */
const DROPPED = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_ABORTED', 'EPIPE', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'ERR_STREAM_PREMATURE_CLOSE', 'REGISTRY_TIMEOUT']);

/**
 * A blob's bytes from the registry, checked as they stream against the descriptor: an error at
 * the first byte more than its size, or at the end when the size or the digest differ (then a
 * sink has written nothing it keeps). When the connection drops mid-blob the GET is made again
 * from where it stopped (`Range`), up to `attempts` times; a registry that answers with the whole
 * blob again has the bytes already passed on skipped.
 */
export function remoteBlob(client: RegistryClient, ref: Reference, d: Descriptor, attempts = 4): Readable {
  return Readable.from(blobBytes(client, ref, d, attempts), { objectMode: false });
}

async function* blobBytes(client: RegistryClient, ref: Reference, d: Descriptor, attempts: number): AsyncGenerator<Buffer> {
  const path = `/v2/${ref.path}/blobs/${d.digest}`;
  const url = client.endpoint + path;
  const { algorithm } = parseDigest(d.digest);
  const hash = createHash(algorithm);
  let offset = 0;
  for (let attempt = 1; ; attempt++) {
    const res = await client.request('GET', path, {
      scope: `repository:${ref.path}:pull`,
      ok: [200, 206],
      transfer: true,
      ...(offset > 0 ? { headers: { range: `bytes=${offset}-` } } : {}),
    });
    // The whole blob again: what was passed on already is skipped.
    let skip = offset > 0 && res.status === 200 ? offset : 0;
    try {
      for await (const c of res.body) {
        let chunk = c as Buffer;
        if (skip > 0) {
          const n = Math.min(skip, chunk.length);
          skip -= n;
          chunk = chunk.subarray(n);
          if (chunk.length === 0) continue;
        }
        offset += chunk.length;
        if (offset > d.size) throw new RegistryError('REGISTRY_SIZE_MISMATCH', `blob ${d.digest} from ${url}: more than the ${d.size} bytes its descriptor says`, { url });
        hash.update(chunk);
        yield chunk;
      }
      break;
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      // A stall past the deadline (the client's REGISTRY_TIMEOUT) is resumed as a dropped connection is.
      const dropped = DROPPED.has(code) && (!(err instanceof RegistryError) || code === 'REGISTRY_TIMEOUT');
      if (!dropped) {
        if (err instanceof RegistryError) throw err;
        throw new RegistryError('REGISTRY_UNREACHABLE', `blob ${d.digest} from ${url}: ${(err as Error).message}`, { url }, { cause: err });
      }
      // Every byte came before the connection went: nothing to ask for again.
      if (offset === d.size) break;
      if (attempt >= attempts) {
        throw new RegistryError('REGISTRY_UNREACHABLE', `blob ${d.digest} from ${url}: the connection dropped ${attempts} times (${(err as Error).message})`, { url, temporary: true }, { cause: err });
      }
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
  if (offset !== d.size) throw new RegistryError('REGISTRY_SIZE_MISMATCH', `blob ${d.digest} from ${url}: ${offset} bytes, expected ${d.size}`, { url });
  const actual = `${algorithm}:${hash.digest('hex')}`;
  if (actual !== d.digest) throw new RegistryError('REGISTRY_DIGEST_MISMATCH', `blob ${d.digest} from ${url}: content has digest ${actual}`, { url });
}
