/**
 * A build's cache shared beyond one store (`--cache-to`, `--cache-from`), for CI runners that
 * start empty: BuildKit's registry, local and inline cache, in a format of gantry's own.
 *
 * What is shared is what the layer cache holds (store/cache.ts): a step's key, the layer it made
 * (or none), and the key the steps after it chain on. Keys are sums of what a step reads (its
 * instruction as planned, its sources' content, its parent's key), never what it was given in
 * secret: a secret's contents are in no key, so none reaches a cache document.
 *
 * The cache document (`CACHE_CONFIG_TYPE`, docs/registry.md) is the config of an OCI image
 * manifest whose layers are the layers it names, so any OCI registry or layout keeps them:
 *
 *   { "schemaVersion": 1, "mediaType": CACHE_CONFIG_TYPE,
 *     "diffIds": [the uncompressed digest of each of the manifest's layers],
 *     "entries": [{ "key": hex, "layer": index into the layers | null, "next"?: hex, "created": date }] }
 *
 * Inline (`type=inline`), the same document is the image config's `INLINE_CACHE_KEY` field, its
 * layer indexes into the image's own layers.
 *
 * A layer named by an imported entry is fetched only when the build needs its files (a later
 * step runs on it, or the image is written), checked against its digest as it streams and
 * against its diff ID before it is used (builder/workspace.ts `ensureLayer`).
 */
import { createReadStream, lstatSync } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { OptionError } from '../errors/index.js';
import type { BlobSource, Image, Layer, LayerDescriptor } from '../image/image.js';
import { digestOf, parseDigest, VerifyStream } from '../oci/digest.js';
import { CONFIG_SIZE_LIMIT, MANIFEST_SIZE_LIMIT, indexProblem, manifestProblem, parseDocument } from '../oci/document.js';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType, layerCompression } from '../oci/media-types.js';
import { normalizeReference } from '../oci/reference.js';
import type { Index, Manifest } from '../oci/types.js';
import type { RegistryClient } from '../registry/client.js';
import { configBlob, fetchManifest, remoteBlob, remoteImage } from '../registry/image.js';
import { pushImage } from '../registry/push.js';
import { saveLayoutDirectory } from '../archive/save.js';
import type { CacheEntry } from '../store/cache.js';
import { settings } from '../support/settings.js';
import { checkFormat, distributable, type LayerFormat } from '../store/compress.js';
import type { Store } from '../store/store.js';
import { BuildError } from './errors.js';
import { csvFields, type ExportEvent } from './outputs.js';
import { clientFor, type RegistryAccess } from './registry.js';

/** The media type of a cache document, as the config of its manifest. */
export const CACHE_CONFIG_TYPE = 'application/vnd.gantry.cache.config.v1+json';
/** The image config field an inline cache document is kept in. */
export const INLINE_CACHE_KEY = 'gantry.cache.v1';

/** The platforms of a multi-platform image whose inline caches are read, at most. */
const MAX_INLINE_PLATFORMS = 32;

/** Where a cache goes to (`--cache-to`) or comes from (`--cache-from`), as buildx's CSV gives it. */
export type CacheSpec =
  | { type: 'registry'; ref: string; mode?: 'min' | 'max'; format?: LayerFormat; ignoreError?: boolean }
  | { type: 'local'; dest: string; mode?: 'min' | 'max'; format?: LayerFormat; ignoreError?: boolean }
  | { type: 'local'; src: string; digest?: string }
  | { type: 'inline' };

const bad = (flag: string, text: string, why: string): OptionError => new OptionError('CACHE_INVALID', `invalid --${flag} "${text}": ${why}`);

/**
 * `--cache-to` or `--cache-from` as buildx reads them: `type=registry,ref=REF[,mode=min|max]`
 * (and `compression=`, `compression-level=`, `force-compression=`, `oci-mediatypes=`,
 * `ignore-error=`, `image-manifest=true` when exporting), `type=local,dest=DIR` / `src=DIR[,digest=D]`,
 * `type=inline`; a `--cache-from` without `type=` is a registry reference.
 */
export function parseCacheSpec(text: string, direction: 'to' | 'from'): CacheSpec {
  const flag = `cache-${direction}`;
  const fail = (why: string): never => {
    throw bad(flag, text, why);
  };
  if (direction === 'from' && !text.includes('=')) {
    if (text.trim() === '') fail('expected a reference or type=...');
    try {
      normalizeReference(text.trim());
    } catch (err) {
      fail((err as Error).message);
    }
    return { type: 'registry', ref: text.trim() };
  }
  const fields = new Map<string, string>();
  for (const field of csvFields(text, (why) => bad(flag, text, why))) {
    const eq = field.indexOf('=');
    if (eq <= 0) fail(`"${field}" is not KEY=VALUE`);
    const key = field.slice(0, eq).trim().toLowerCase();
    if (fields.has(key)) fail(`${key} is given twice`);
    fields.set(key, field.slice(eq + 1).trim());
  }
  const type = fields.get('type') ?? fail('type= is missing');
  fields.delete('type');
  const take = (key: string): string | undefined => {
    const v = fields.get(key);
    fields.delete(key);
    return v;
  };
  const bool = (key: string): boolean | undefined => {
    const v = take(key);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') fail(`${key}=${v}: expected true or false`);
    return v === 'true';
  };
  const exportFields = (): { mode?: 'min' | 'max'; format?: LayerFormat; ignoreError?: boolean } => {
    const mode = take('mode');
    if (mode !== undefined && mode !== 'min' && mode !== 'max') fail(`mode=${mode}: expected min or max`);
    const compression = take('compression');
    if (compression !== undefined && !['gzip', 'zstd', 'uncompressed'].includes(compression)) fail(`compression=${compression}: expected gzip, zstd or uncompressed`);
    const levelText = take('compression-level');
    const level = levelText === undefined ? undefined : Number(levelText);
    if (level !== undefined && !Number.isInteger(level)) fail(`compression-level=${levelText}: expected a whole number`);
    const force = bool('force-compression');
    // The cache is an OCI image manifest, its layers OCI's (BuildKit's default for a cache).
    if (bool('oci-mediatypes') === false) fail('oci-mediatypes=false: gantry writes its cache with OCI media types only');
    const ignoreError = bool('ignore-error');
    // gantry always writes an image manifest (BuildKit's image-manifest=true): accepted as said.
    if (bool('image-manifest') === false) fail('image-manifest=false: gantry writes its cache as an image manifest only');
    const format: LayerFormat = {
      ...(compression !== undefined ? { compression: compression as LayerFormat['compression'] } : {}),
      ...(level !== undefined ? { level } : {}),
      ...(force !== undefined ? { force } : {}),
    };
    // A level the compression does not take is refused now, not after the build.
    try {
      checkFormat(format);
    } catch (err) {
      fail((err as Error).message);
    }
    return { ...(mode ? { mode: mode as 'min' | 'max' } : {}), ...(Object.keys(format).length > 0 ? { format } : {}), ...(ignoreError !== undefined ? { ignoreError } : {}) };
  };
  let spec: CacheSpec;
  if (type === 'registry') {
    const ref = take('ref') ?? fail('type=registry needs ref=');
    try {
      normalizeReference(ref);
    } catch (err) {
      fail((err as Error).message);
    }
    spec = { type: 'registry', ref, ...(direction === 'to' ? exportFields() : {}) };
  } else if (type === 'local') {
    const dir = (key: 'dest' | 'src'): string => {
      const v = take(key);
      if (!v) fail(`type=local needs ${key}=DIR`);
      return v as string;
    };
    if (direction === 'to') spec = { type: 'local', dest: dir('dest'), ...exportFields() };
    else {
      const digest = take('digest');
      if (digest !== undefined) {
        try {
          parseDigest(digest);
        } catch (err) {
          fail((err as Error).message);
        }
      }
      spec = { type: 'local', src: dir('src'), ...(digest ? { digest } : {}) };
    }
  } else if (type === 'inline') {
    if (direction === 'from') fail('type=inline is for --cache-to; read an inline cache with --cache-from type=registry,ref=IMAGE');
    spec = { type: 'inline' };
  } else if (['gha', 's3', 'azblob'].includes(type)) {
    return fail(`type=${type} is not supported by gantry (registry, local and inline are)`);
  } else {
    return fail(`unknown type "${type}" (registry, local and inline are known)`);
  }
  if (fields.size > 0) fail(`${[...fields.keys()].join(', ')}: not known for type=${type}${direction === 'from' ? ' in --cache-from' : ''}`);
  return spec;
}

// --- the cache document -----------------------------------------------------------------------

export interface CacheDocument {
  schemaVersion: 1;
  mediaType: typeof CACHE_CONFIG_TYPE;
  /** The diff ID of each layer, in the manifest's (or the image's) order. */
  diffIds: string[];
  entries: { key: string; layer: number | null; next?: string; created: string }[];
}

const HEX64 = /^[0-9a-f]{64}$/;
/** A history entry's date, as BuildKit and gantry write them. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;

/** A cache document's problem, or undefined when it is one this gantry reads (`layers`: how many the manifest has). */
export function cacheDocumentProblem(doc: unknown, layers: number): string | undefined {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not a JSON object';
  const d = doc as Partial<CacheDocument>;
  if (d.mediaType !== CACHE_CONFIG_TYPE) return `its mediaType is not ${CACHE_CONFIG_TYPE}`;
  if (d.schemaVersion !== 1) return `version ${String(d.schemaVersion)}, where this gantry reads version 1`;
  if (!Array.isArray(d.diffIds) || d.diffIds.length !== layers) return `diffIds does not list the ${layers} layers`;
  for (const id of d.diffIds) {
    if (typeof id !== 'string') return 'a diff ID is not a string';
    try {
      parseDigest(id);
    } catch (err) {
      return (err as Error).message;
    }
  }
  if (!Array.isArray(d.entries)) return 'entries is not a list';
  for (const e of d.entries) {
    if (typeof e !== 'object' || e === null) return 'an entry is not an object';
    if (typeof e.key !== 'string' || !HEX64.test(e.key)) return 'an entry has no key';
    if (e.layer !== null && (!Number.isInteger(e.layer) || e.layer < 0 || e.layer >= layers)) return `entry ${e.key}: layer ${String(e.layer)} is not one of the ${layers} layers`;
    if (e.next !== undefined && (typeof e.next !== 'string' || !HEX64.test(e.next))) return `entry ${e.key}: next is not a key`;
    if (typeof e.created !== 'string' || !RFC3339.test(e.created)) return `entry ${e.key}: created is not an RFC 3339 date`;
  }
  return undefined;
}

/** A step's cache entry as the build recorded it, and its stage. */
export interface RecordedEntry {
  key: string;
  entry: CacheEntry;
  stage: number;
}

/**
 * The document for `recorded` entries (those with a layer, or none; a change kept only as a
 * snapshot cannot be shared) over `layers`: a recorded layer is named by its index there.
 *
 * A COPY from a stage is recorded twice: by its key, which sums the stage's layers, chaining on
 * (`next`) its key by the files it copies. With `byLayers` false (`mode=min`, inline: the stage
 * it copies from is not in the document, so another host makes that stage's layers anew and
 * never has that key) only the second is kept; the document is then the same on every host
 * that finds the same files, and so is an image that carries it inline.
 */
export function cacheDocument(recorded: readonly RecordedEntry[], layers: readonly LayerDescriptor[], options: { byLayers?: boolean } = {}): CacheDocument {
  const index = new Map(layers.map((l, i) => [l.diffId, i]));
  const entries: CacheDocument['entries'] = [];
  const seen = new Set<string>();
  for (const { key, entry } of recorded) {
    if (seen.has(key) || entry.kept !== undefined || (entry.next !== undefined && options.byLayers === false)) continue;
    const at = entry.layer ? index.get(entry.layer.diffId) : null;
    if (at === undefined) continue;
    seen.add(key);
    entries.push({ key, layer: at, ...(entry.next ? { next: entry.next } : {}), created: entry.created });
  }
  return { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: layers.map((l) => l.diffId), entries };
}

/**
 * `recorded` in the order of its stages (a stable sort: each stage's entries as its steps came):
 * stages that ran side by side recorded theirs as they finished, and a document must not depend
 * on which finished first.
 */
export function byStage(recorded: readonly RecordedEntry[]): RecordedEntry[] {
  return [...recorded].sort((a, b) => a.stage - b.stage);
}

/** The layers `recorded` names, each once, in the order first named. */
export function recordedLayers(recorded: readonly RecordedEntry[]): LayerDescriptor[] {
  const out = new Map<string, LayerDescriptor>();
  for (const { entry } of recorded) if (entry.layer && entry.kept === undefined && !out.has(entry.layer.diffId)) out.set(entry.layer.diffId, entry.layer);
  return [...out.values()];
}

/** A build's part in sharing its cache: what it imported, and what it records for an export. */
export interface SharedCacheRun {
  imported?: ImportedCache;
  /** The image config carries the target's cache (`type=inline`). */
  inline: boolean;
  /**
   * The widest export asked for: its layers are fetched before the build ends when only an
   * imported cache had them; with `max` every stage's steps make layers (none is kept only as a snapshot).
   */
  exported: 'none' | 'min' | 'max';
  /** Filled by the build: each filesystem step's entry as it was hit or made, and the stages whose layers leave it. */
  recorded: RecordedEntry[];
  leaving: Set<number>;
}

// --- export -----------------------------------------------------------------------------------

/** What an export tells: where the cache went, and how many entries and layers it holds. */
export interface CacheExported {
  to: string;
  entries: number;
  layers: number;
}

/**
 * Write the build's cache to each registry or local `spec` (inline is written with the image):
 * `recorded` holds every stage's entries; `leaving` names the stages a `mode=min` export keeps
 * (the target and the stages it is built FROM). An export that fails fails the build, unless its
 * `ignore-error=true` (then it is a warning), as BuildKit's.
 */
export async function exportCache(
  store: Store,
  specs: readonly CacheSpec[],
  recorded: readonly RecordedEntry[],
  leaving: ReadonlySet<number>,
  access: RegistryAccess,
  emit: (e: ExportEvent | { type: 'notice'; text: string }) => void,
): Promise<CacheExported[]> {
  const done: CacheExported[] = [];
  for (const spec of specs) {
    if (spec.type === 'inline' || (spec.type === 'local' && !('dest' in spec))) continue;
    const mode = 'mode' in spec ? (spec.mode ?? 'min') : 'min';
    const kept = byStage(mode === 'max' ? recorded : recorded.filter((r) => leaving.has(r.stage)));
    const to = spec.type === 'registry' ? spec.ref : `local:${(spec as { dest: string }).dest}`;
    const name = `exporting cache to ${to}`;
    const started = performance.now();
    emit({ type: 'export', name, status: 'start' });
    try {
      const image = await cacheImage(store, kept, mode, 'format' in spec ? spec.format : undefined);
      if (spec.type === 'registry') {
        const client = await clientFor(normalizeReference(spec.ref).domain, access);
        try {
          await pushImage(client, image, spec.ref);
        } finally {
          await client.close();
        }
      } else {
        await saveLayoutDirectory([{ image, names: [] }], (spec as { dest: string }).dest);
      }
      done.push({ to, entries: (image.config as unknown as CacheDocument).entries.length, layers: image.layers.length });
      emit({ type: 'export', name, status: 'done', seconds: (performance.now() - started) / 1000 });
    } catch (err) {
      const message = (err as Error).message;
      if ('ignoreError' in spec && spec.ignoreError) {
        emit({ type: 'notice', text: `cache export to ${to} failed, ignored (ignore-error=true): ${message}` });
        continue;
      }
      throw new BuildError('CACHE_EXPORT', `cache export to ${to}: ${message}`, { cause: err });
    }
  }
  return done;
}

/** The cache of `recorded` as an image of the store's blobs: its layers compressed as `format` asks (gzip by default). */
async function cacheImage(store: Store, recorded: readonly RecordedEntry[], mode: 'min' | 'max', format: LayerFormat | undefined): Promise<Image> {
  const descriptors = recordedLayers(recorded);
  const doc = cacheDocument(recorded, descriptors, { byLayers: mode === 'max' });
  const rawConfig = Buffer.from(JSON.stringify(doc));
  const layers: Layer[] = descriptors.map((l) => ({ ...l, open: () => store.openBlob(l.digest, l.size) }));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: CACHE_CONFIG_TYPE, digest: digestOf(rawConfig), size: rawConfig.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const rawManifest = Buffer.from(JSON.stringify(manifest));
  const image: Image = {
    digest: digestOf(rawManifest),
    mediaType: MediaType.ociManifest,
    rawManifest,
    manifest,
    configDigest: manifest.config.digest,
    rawConfig,
    config: doc as unknown as Image['config'],
    layers,
  };
  // The store keeps its own layers uncompressed: they go out compressed, as an image's do.
  return distributable(store, image, format ? { format } : {});
}

// --- import -----------------------------------------------------------------------------------

/** An entry found in an imported cache: the entry, and its layer's bytes from where the cache is. */
export interface ImportedEntry {
  entry: CacheEntry;
  blob?: BlobSource;
  from: string;
}

/** The caches `--cache-from` names, read: their entries by key. `close` ends what they hold open (registry connections). */
export interface ImportedCache {
  entries: Map<string, ImportedEntry>;
  close(): Promise<void>;
}

/**
 * Read each cache `specs` names. One that cannot be read (unreachable, missing, of another
 * version, corrupted) is a warning and is left out: the build goes on without it.
 */
export async function importCache(specs: readonly CacheSpec[], access: RegistryAccess, warn: (text: string) => void): Promise<ImportedCache> {
  const entries = new Map<string, ImportedEntry>();
  const clients: RegistryClient[] = [];
  for (const spec of specs) {
    const from = spec.type === 'registry' ? spec.ref : spec.type === 'local' && 'src' in spec ? `local:${spec.src}` : 'inline';
    try {
      const found =
        spec.type === 'registry'
          ? await fromRegistry(spec.ref, access, clients)
          : spec.type === 'local' && 'src' in spec
            ? await fromLayout(spec.src, spec.digest)
            : undefined;
      for (const { doc, layers } of Array.isArray(found) ? found : found ? [found] : []) {
        for (const e of doc.entries) {
          if (entries.has(e.key)) continue; // the first cache named wins
          const layer = e.layer === null ? null : (layers[e.layer] as LayerDescriptor & BlobSource);
          const entry: CacheEntry = {
            layer: layer ? { digest: layer.digest, size: layer.size, mediaType: layer.mediaType, diffId: layer.diffId } : null,
            ...(e.next ? { next: e.next } : {}),
            created: e.created,
          };
          entries.set(e.key, { entry, ...(layer ? { blob: layer } : {}), from });
        }
      }
    } catch (err) {
      // Whatever went wrong (a document of another version, a missing file, a registry away), the build goes on without it.
      warn(`cache ${from} was not used: ${(err as Error).message}`);
    }
  }
  return {
    entries,
    close: async () => {
      for (const c of clients.splice(0)) await c.close();
    },
  };
}

/** A cache manifest's document and layers, checked; `what` names it in errors. */
function readDocument(manifest: Manifest, rawConfig: Buffer, what: string, open: (l: { digest: string; size: number; mediaType: string }) => BlobSource['open']): { doc: CacheDocument; layers: (LayerDescriptor & BlobSource)[] } {
  const shape = manifestProblem(manifest);
  if (shape !== undefined) throw new BuildError('CACHE_DOCUMENT', `${what}: its manifest ${shape}`);
  // A layer may not declare more than a layer may expand to (GANTRY_EXTRACT_LIMIT), as a base's.
  const too = manifest.layers.find((l) => l.size > settings.extractLimit);
  if (too) throw new BuildError('CACHE_DOCUMENT', `${what}: layer ${too.digest} says ${too.size} bytes, more than the extraction limit of ${settings.extractLimit}`);
  const parsed = parseDocument(rawConfig);
  const problem = 'problem' in parsed ? parsed.problem : cacheDocumentProblem(parsed.json, manifest.layers.length);
  if (problem !== undefined) throw new BuildError('CACHE_DOCUMENT', `${what}: the cache document is ${problem.startsWith('version') ? 'of ' : ''}${problem}; ignored`);
  const doc = (parsed as { json: unknown }).json as CacheDocument;
  for (const l of manifest.layers) {
    if (layerCompression(l.mediaType) === undefined) throw new BuildError('CACHE_DOCUMENT', `${what}: layer ${l.digest} has an unknown media type "${l.mediaType}"`);
  }
  const layers = manifest.layers.map((l, i) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: doc.diffIds[i] as string, open: open(l) }));
  return { doc, layers };
}

/**
 * A cache in a registry: a cache manifest, or an image whose config carries an inline cache (a
 * multi-platform image: each platform's image's).
 */
async function fromRegistry(ref: string, access: RegistryAccess, clients: RegistryClient[]): Promise<{ doc: CacheDocument; layers: (LayerDescriptor & BlobSource)[] }[]> {
  const r = normalizeReference(ref);
  const client = await clientFor(r.domain, access);
  clients.push(client);
  const top = await fetchManifest(client, r, r.digest ?? (r.tag as string));
  const manifest = top.json as Manifest;
  if (MANIFEST_TYPES.has(top.mediaType) && manifest.config?.mediaType === CACHE_CONFIG_TYPE) {
    const raw = await configBlob(client, r, manifest.config, 'cache document');
    return [readDocument(manifest, raw, ref, (l) => () => remoteBlob(client, r, l))];
  }
  if (INDEX_TYPES.has(top.mediaType)) {
    // A multi-platform image: the inline cache of each platform's image that has one.
    // A platform whose cache cannot be read is left out; the others are used.
    const platforms = ((top.json as Index).manifests ?? []).filter((d) => d.platform && d.platform.os !== 'unknown' && MANIFEST_TYPES.has(d.mediaType)).slice(0, MAX_INLINE_PLATFORMS);
    const found: { doc: CacheDocument; layers: (LayerDescriptor & BlobSource)[] }[] = [];
    let first: unknown;
    for (const d of platforms) {
      const one = await inlineCache(client, `${r.domain}/${r.path}@${d.digest}`, `${ref} (${d.platform?.os}/${d.platform?.architecture})`).catch((err: unknown) => void (first ??= err));
      if (one) found.push(one);
    }
    if (found.length === 0) throw first ?? new BuildError('CACHE_DOCUMENT', `${ref} is a multi-platform image with no platform images`);
    return found;
  }
  return [await inlineCache(client, ref, ref)];
}

/** An image's inline cache (`what` names the cache in errors). */
async function inlineCache(client: RegistryClient, ref: string, what: string): Promise<{ doc: CacheDocument; layers: (LayerDescriptor & BlobSource)[] }> {
  const image = await remoteImage(client, ref);
  const inline = (image.config as unknown as Record<string, unknown>)[INLINE_CACHE_KEY];
  if (inline === undefined) throw new BuildError('CACHE_DOCUMENT', `${what} is an image with no inline cache (build it with --cache-to type=inline)`);
  const problem = cacheDocumentProblem(inline, image.layers.length);
  if (problem !== undefined) throw new BuildError('CACHE_DOCUMENT', `${what}: its inline cache is ${problem}; ignored`);
  const doc = inline as CacheDocument;
  // The image's own diff IDs are the ones its layers are checked against.
  if (doc.diffIds.some((id, i) => id !== image.layers[i]?.diffId)) throw new BuildError('CACHE_DOCUMENT', `${what}: its inline cache names other layers than the image's; ignored`);
  return { doc, layers: image.layers };
}

/** A cache in an OCI layout directory (`type=local,src=DIR`): the manifest index.json names (`digest`, or the one with a cache document). */
async function fromLayout(dir: string, digest: string | undefined): Promise<{ doc: CacheDocument; layers: (LayerDescriptor & BlobSource)[] }> {
  const what = `local:${dir}`;
  const blobFile = (d: string): string => {
    const { algorithm, hex } = parseDigest(d);
    return path.join(dir, 'blobs', algorithm, hex);
  };
  const readBlob = async (d: string, size: number, limit: number): Promise<Buffer> => {
    if (!Number.isSafeInteger(size) || size < 0 || size > limit) throw new BuildError('CACHE_DOCUMENT', `${what}: blob ${d} says ${String(size)} bytes (at most ${limit} are read)`);
    const raw = await readBounded(blobFile(d), limit, `${what}: blob ${d}`);
    if (raw.length !== size || digestOf(raw, parseDigest(d).algorithm) !== d) throw new BuildError('CACHE_DOCUMENT', `${what}: blob ${d} is not what its digest says`);
    return raw;
  };
  const parsed = parseDocument(await readBounded(path.join(dir, 'index.json'), MANIFEST_SIZE_LIMIT, `${what}: index.json`));
  const problem = 'problem' in parsed ? parsed.problem : indexProblem(parsed.json);
  if (problem !== undefined) throw new BuildError('CACHE_DOCUMENT', `${what}: index.json is ${problem}`);
  const index = (parsed as { json: unknown }).json as Index;
  const candidates = index.manifests.filter((m) => MANIFEST_TYPES.has(m.mediaType) && (digest === undefined || m.digest === digest));
  for (const d of candidates) {
    const m = parseDocument(await readBlob(d.digest, d.size, MANIFEST_SIZE_LIMIT));
    const manifest = 'problem' in m ? undefined : (m.json as Manifest);
    if (!manifest || manifestProblem(manifest) !== undefined || manifest.config.mediaType !== CACHE_CONFIG_TYPE) continue;
    const rawConfig = await readBlob(manifest.config.digest, manifest.config.size, CONFIG_SIZE_LIMIT);
    return readDocument(manifest, rawConfig, what, (l) => () => verifiedFile(blobFile(l.digest), l.digest, l.size));
  }
  throw new BuildError('CACHE_NOT_FOUND', `${what}: index.json names no gantry cache${digest ? ` with digest ${digest}` : ''}`);
}

/** A regular file of at most `limit` bytes, read whole (a link, a FIFO, a device or a larger file is refused before a byte is read). */
async function readBounded(file: string, limit: number, what: string): Promise<Buffer> {
  const st = await lstat(file).catch((err: NodeJS.ErrnoException) => {
    throw new BuildError('CACHE_NOT_FOUND', `${what}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  if (!st.isFile()) throw new BuildError('CACHE_DOCUMENT', `${what}: not a regular file`);
  if (st.size > limit) throw new BuildError('CACHE_DOCUMENT', `${what}: ${st.size} bytes, more than the ${limit} read`);
  return readFile(file);
}

/** A layer file's bytes, checked against `digest` and `size` as they stream; anything but a regular file is refused. */
function verifiedFile(file: string, digest: string, size: number): Readable {
  const verify = new VerifyStream({ digest, size });
  let st: ReturnType<typeof lstatSync> | undefined;
  try {
    st = lstatSync(file);
  } catch (err) {
    verify.destroy(new BuildError('CACHE_LAYER', `${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`));
    return verify;
  }
  if (!st.isFile()) {
    verify.destroy(new BuildError('CACHE_LAYER', `${file}: not a regular file`));
    return verify;
  }
  // pipeline: a failure of either end destroys the other, and closes the file.
  return pipeline(createReadStream(file), verify, () => undefined);
}
