/** What the image commands do to the store: list, tag, remove, inspect, history. */
import { StoreError } from '../errors/index.js';
import { familiarName, formatReference, normalizeReference, parseReference } from '../oci/reference.js';
import { REF_NAME_ANNOTATION, type Descriptor, type ImageConfig, type Manifest } from '../oci/types.js';
import { findEntries, loadIndex, resolveImage } from './images.js';
import { INDEX_TYPES } from '../oci/media-types.js';
import { configPlatform } from '../oci/platform.js';
import { LayerSizes } from './sizes.js';
import { withStore, type Store } from './store.js';
import { listContainers, type ContainerRecord } from './containers.js';

export interface ImageSummary {
  /** Familiar repository (`alpine`, `localhost:5000/app`), or `<none>`. */
  repository: string;
  tag: string;
  /** The full normalised name, when tagged. */
  name?: string;
  /** docker's IMAGE ID: the config digest. */
  id: string;
  /** The manifest digest. */
  digest: string;
  created?: string;
  /**
   * docker's SIZE: the layers' unpacked content (store/sizes.ts). A layer gantry cannot read
   * (zstd) counts with its stored size, and `sizeEstimated` is set. Without sizes asked for
   * (`listImages`' `sizes: false`), the stored size.
   */
  size: number;
  sizeEstimated?: boolean;
  /** The bytes the image's blobs take in the store: layers as stored (compressed or not) and config. */
  storedSize: number;
  labels: Record<string, string>;
  dangling: boolean;
  /** The image's platform, as `os/arch[/variant]`. */
  platform: string;
  /** A multi-platform image's platforms (those the store holds). */
  platforms?: string[];
}

/** What a row says of an image's content: its config, its blobs' stored size, its layers' content size (with `sizes`). */
interface Measured {
  config: ImageConfig;
  storedSize: number;
  content: { size: number; estimated: boolean };
}

async function measure(manifest: Manifest, config: ImageConfig, sizes: LayerSizes | undefined): Promise<Measured> {
  const storedSize = manifest.layers.reduce((n, l) => n + l.size, 0) + manifest.config.size;
  const content = sizes
    ? await sizes.total(manifest.layers.map((l, i) => ({ ...l, diffId: config.rootfs?.diff_ids?.[i] ?? '' })))
    : { size: storedSize, estimated: false };
  return { config, storedSize, content };
}

/**
 * A multi-platform image is one row, as in Docker's containerd store: its ID the index's digest,
 * its sizes those of the platform images the store holds, its config (date, labels) the newest's.
 */
async function measureIndex(store: Store, d: Descriptor, sizes: LayerSizes | undefined): Promise<Measured & { platforms: string[] }> {
  const ix = await loadIndex(store, d);
  const each = await Promise.all(ix.images.map((im) => measure(im.manifest, im.config, sizes)));
  const newest = [...each].sort((a, b) => (b.config.created ?? '').localeCompare(a.config.created ?? ''))[0];
  return {
    config: newest?.config ?? { architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] } },
    storedSize: each.reduce((n, e) => n + e.storedSize, 0),
    content: { size: each.reduce((n, e) => n + e.content.size, 0), estimated: each.some((e) => e.content.estimated) },
    platforms: ix.images.map((im) => configPlatform(im.config)),
  };
}

async function summarise(store: Store, d: Descriptor, name: string | undefined, sizes: LayerSizes | undefined): Promise<ImageSummary> {
  let measured: Measured & { platforms?: string[] };
  let id: string;
  if (INDEX_TYPES.has(d.mediaType)) {
    measured = await measureIndex(store, d, sizes);
    id = d.digest;
  } else {
    const manifest = await store.readJSON<Manifest>(d.digest);
    measured = await measure(manifest, await store.readJSON<ImageConfig>(manifest.config.digest), sizes);
    id = manifest.config.digest;
  }
  const { config, storedSize, content, platforms } = measured;
  let repository = '<none>';
  let tag = '<none>';
  if (name) {
    const ref = parseReference(name);
    repository = familiarName(ref);
    tag = ref.tag ?? '<none>';
  }
  return {
    repository,
    tag,
    ...(name ? { name } : {}),
    id,
    digest: d.digest,
    platform: platforms ? platforms.join(',') : configPlatform(config),
    ...(platforms ? { platforms } : {}),
    ...(config.created ? { created: config.created } : {}),
    size: content.size,
    ...(content.estimated ? { sizeEstimated: true } : {}),
    storedSize,
    labels: config.config?.Labels ?? {},
    dangling: !name,
  };
}

export interface ListFilter {
  dangling?: boolean;
  /** `key` or `key=value`. */
  label?: string[];
  /** Glob on the familiar or full `repository:tag`, like docker's reference filter. */
  reference?: string[];
}

export interface ListOptions {
  /** Work out docker's SIZE (layers' content sizes), reading layers not read before (default true). */
  sizes?: boolean;
}

export async function listImages(root: string, filter: ListFilter = {}, options: ListOptions = {}): Promise<ImageSummary[]> {
  return withStore(root, async (store) => {
    const sizes = options.sizes === false ? undefined : new LayerSizes(store);
    const rows = await Promise.all((await store.entries()).map((e) => summarise(store, e.descriptor, e.name, sizes)));
    return rows
      .filter((r) => filter.dangling === undefined || r.dangling === filter.dangling)
      .filter((r) =>
        (filter.label ?? []).every((l) => {
          const eq = l.indexOf('=');
          return eq < 0 ? l in r.labels : r.labels[l.slice(0, eq)] === l.slice(eq + 1);
        }),
      )
      .filter((r) => {
        const patterns = filter.reference ?? [];
        if (patterns.length === 0) return true;
        if (!r.name) return false;
        const candidates = [`${r.repository}:${r.tag}`, r.repository, r.name];
        return patterns.some((p) => candidates.some((c) => globMatch(p, c)));
      })
      .sort((a, b) => (b.created ?? '').localeCompare(a.created ?? '') || a.repository.localeCompare(b.repository) || a.tag.localeCompare(b.tag));
  });
}

function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(
    '^' + pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$',
  );
  return re.test(text);
}

export async function tagImage(root: string, source: string, target: string): Promise<string> {
  return withStore(root, async (store) => {
    const { entry } = await resolveImage(store, source);
    const ref = normalizeReference(target);
    if (ref.digest !== undefined) throw new StoreError('TAG_INVALID', `cannot tag with a digest: ${target}`);
    const name = formatReference(ref);
    await store.tag(name, entry.descriptor);
    return name;
  });
}

export interface RemoveResult {
  untagged: string[];
  /** Manifest digests of images that no name refers to any more (removed from the index). */
  deleted: string[];
}

/**
 * `rmi`: a name is untagged; an image whose last name goes is removed. By ID, an image
 * with several names needs `force` (then every name goes), as in docker.
 */
export async function removeImages(root: string, refs: string[], force = false): Promise<RemoveResult> {
  return withStore(root, async (store) => {
    const result: RemoveResult = { untagged: [], deleted: [] };
    for (const ref of refs) {
      const found = await findEntries(store, ref);
      if (found.length === 0) throw new StoreError('IMAGE_NOT_FOUND', `no such image: ${ref}`);
      const digests = new Set(found.map((e) => e.descriptor.digest));
      if (digests.size > 1) throw new StoreError('IMAGE_AMBIGUOUS', `"${ref}" matches ${digests.size} images; give more of the ID`);
      const digest = [...digests][0] as string;
      const users = await containersUsing(store, found[0]?.descriptor as Descriptor);
      let byName: string | undefined;
      try {
        const norm = normalizeReference(ref);
        const full = formatReference(norm);
        if (found.some((e) => e.name === full)) byName = full;
      } catch {
        byName = undefined;
      }
      await store.updateIndex((manifests) => {
        const names = manifests.filter((m) => m.digest === digest).map((m) => m.annotations?.[REF_NAME_ANNOTATION]).filter((n): n is string => !!n);
        if (byName) {
          const i = manifests.findIndex((m) => m.annotations?.[REF_NAME_ANNOTATION] === byName);
          manifests.splice(i, 1);
          result.untagged.push(byName);
        } else {
          if (names.length > 1 && !force) {
            throw new StoreError(
              'IMAGE_IN_USE',
              `unable to delete ${ref} (must be forced): the image is referenced by ${names.length} names: ${names.join(', ')}`,
            );
          }
          for (let i = manifests.length - 1; i >= 0; i--) if ((manifests[i] as Descriptor).digest === digest) manifests.splice(i, 1);
          result.untagged.push(...names);
        }
        if (!manifests.some((m) => m.digest === digest)) {
          // As docker: the last name of an image a container was made from goes only when forced
          // (the image stays, unnamed, for the container: prune keeps it).
          const user = users[0];
          if (user && !force) {
            throw new StoreError(
              'IMAGE_IN_USE',
              `conflict: unable to remove repository reference "${ref}" (must force) - container ${user.id.slice(0, 12)} (${user.name}) is using its referenced image ${user.image.id.slice(7, 19)}`,
            );
          }
          result.deleted.push(digest);
        }
      });
    }
    return result;
  });
}

/** The working containers made from the image `d` names (itself, or one of its platforms). */
async function containersUsing(store: Store, d: Descriptor): Promise<ContainerRecord[]> {
  const records = listContainers(store);
  if (records.length === 0) return [];
  const digests = new Set([d.digest]);
  if (INDEX_TYPES.has(d.mediaType)) for (const m of (await store.readJSON<{ manifests: Descriptor[] }>(d.digest)).manifests) digests.add(m.digest);
  return records.filter((r) => digests.has(r.image.digest));
}

export interface InspectResult {
  Id: string;
  RepoTags: string[];
  RepoDigests: string[];
  Created?: string;
  Author?: string;
  Config: ImageConfig['config'];
  Architecture: string;
  Os: string;
  Variant?: string;
  Size: number;
  RootFS: { Type: string; Layers: string[] };
  History: NonNullable<ImageConfig['history']>;
  Descriptor: Descriptor;
  /** A multi-platform image's manifests: each with its platform, and whether the store holds it. */
  Manifests?: { ID: string; Descriptor: Descriptor; Available: boolean; Kind: 'image' | 'attestation' }[];
}

export async function inspectImage(root: string, ref: string): Promise<InspectResult> {
  return withStore(root, async (store) => {
    const { entry, names, repoDigests, image, index } = await resolveImage(store, ref);
    const c = image.config;
    const repoTags = names.map((n) => {
      const r = parseReference(n);
      return `${familiarName(r)}:${r.tag ?? 'latest'}`;
    });
    return {
      // A multi-platform image: its ID is the index's digest (Docker's containerd store); the
      // rest is this host's platform's image, and Manifests lists them all.
      Id: index ? index.digest : image.configDigest,
      RepoTags: repoTags,
      // As docker: only what a registry is known to hold (a pushed image's digest is the registry's).
      RepoDigests: repoDigests.map((r) => `${familiarName(parseReference(r.slice(0, r.lastIndexOf('@'))))}${r.slice(r.lastIndexOf('@'))}`),
      ...(c.created ? { Created: c.created } : {}),
      ...(c.author ? { Author: c.author } : {}),
      Config: c.config ?? {},
      Architecture: c.architecture,
      Os: c.os,
      ...(c.variant ? { Variant: c.variant } : {}),
      // docker's Size: the layers' unpacked content (a layer gantry cannot read counts as stored).
      Size: (await new LayerSizes(store).total(image.layers)).size,
      RootFS: { Type: c.rootfs.type, Layers: [...c.rootfs.diff_ids] },
      History: c.history ?? [],
      Descriptor: entry.descriptor,
      ...(index
        ? {
            Manifests: index.index.manifests.map((d) => ({
              ID: d.digest,
              Descriptor: d,
              Available: index.images.some((im) => im.digest === d.digest),
              Kind: d.platform?.os === 'unknown' ? 'attestation' : 'image',
            })),
          }
        : {}),
    };
  });
}

export interface HistoryRow {
  /** The image ID for the newest row, `<missing>` for the rest (as docker shows them). */
  image: string;
  created?: string;
  createdBy: string;
  /** The layer's unpacked content, as docker history shows it; 0 for a step that made no layer. */
  size: number;
  /** Set when the layer could not be read (zstd) and `size` is its stored size. */
  sizeEstimated?: boolean;
  comment: string;
  emptyLayer: boolean;
}

export async function imageHistory(root: string, ref: string): Promise<HistoryRow[]> {
  return withStore(root, async (store) => {
    const { image } = await resolveImage(store, ref);
    const history = image.config.history ?? [];
    const sizes = new LayerSizes(store);
    const content = await Promise.all(image.layers.map((l) => sizes.of(l)));
    let layer = 0;
    const rows: HistoryRow[] = history.map((h) => {
      const empty = h.empty_layer === true;
      const i = empty ? -1 : layer++;
      const size = i < 0 ? 0 : (content[i] ?? image.layers[i]?.size ?? 0);
      return {
        image: '<missing>',
        ...(h.created ? { created: h.created } : {}),
        createdBy: h.created_by ?? '',
        size,
        ...(i >= 0 && image.layers[i] && content[i] === undefined ? { sizeEstimated: true } : {}),
        comment: h.comment ?? '',
        emptyLayer: empty,
      };
    });
    rows.reverse();
    if (rows[0]) rows[0].image = image.configDigest;
    return rows;
  });
}
