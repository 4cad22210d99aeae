/**
 * The images a build names (FROM, COPY --from, RUN --mount from=): taken from the store when
 * it has them for the wanted platform, else pulled (always pulled with `pull: true`, as
 * `docker build --pull`). Each pull is told as progress, and a failure says what it means for
 * the build: an image that does not exist, a registry that cannot be reached, a stage name
 * mistyped.
 */
import { GantryError, RegistryError } from '../errors/index.js';
import { trace } from '../support/process.js';
import type { Image } from '../image/image.js';
import { configPlatform, formatPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { formatReference, normalizeReference, parseReference } from '../oci/reference.js';
import type { ImageConfig } from '../oci/types.js';
import { didYouMean } from '../dockerfile/checks.js';
import { findEntries, loadAny, loadImage } from '../store/images.js';
import { isIndex } from '../image/image.js';
import type { Store } from '../store/store.js';
import { pull, type RegistryAccess } from './registry.js';
import { isLayoutRef, layoutImage } from './named-contexts.js';

/** What a pull tells while it runs. */
export type PullEvent = { type: 'pull'; ref: string; status: 'start' } | { type: 'pull'; ref: string; status: 'done'; seconds: number; layers: number; bytes: number };

export interface ObtainOptions extends RegistryAccess {
  /** Pull even when the store has the image (`--pull`). */
  pull?: boolean;
  /** The oci-layout references `--build-context` gave: the only ones read. */
  layouts?: ReadonlySet<string>;
  signal?: AbortSignal;
  onPull?: (e: PullEvent) => void;
}

export interface ImageUse {
  ref: string;
  platform: string;
  /** `FILE:LINE` of the instruction that names the image. */
  where?: string;
  /** The stages of the Dockerfile, for "did you mean" when the name is close to one. */
  stageNames?: readonly string[];
}

/** The image `use.ref` for `use.platform`, from the store or pulled; errors said at `use.where`. */
export async function obtainImage(store: Store, use: ImageUse, options: ObtainOptions): Promise<Image> {
  try {
    return await obtain(store, use.ref, use.platform, options);
  } catch (err) {
    throw explain(err, use);
  }
}

async function obtain(store: Store, ref: string, platform: string, options: ObtainOptions): Promise<Image> {
  options.signal?.throwIfAborted();
  // A named context's image from an OCI layout on this host (named-contexts.ts): only one the
  // command line gave; a Dockerfile cannot name a host directory this way.
  if (isLayoutRef(ref)) {
    if (!options.layouts?.has(ref)) throw new GantryError('OCI_LAYOUT_REFUSED', `${ref}: an OCI layout is read only when --build-context names it`);
    return layoutImage(store, ref, platform);
  }
  if (!options.pull) {
    const found = await findEntries(store, ref).catch(() => []);
    const entry = found[0];
    if (entry) {
      // The store's image under this name serves when it is for the wanted platform (a
      // multi-platform image's, when it holds one); another platform's image is pulled (as
      // `gantry pull --platform` would).
      const want = parsePlatform(platform);
      const found = await loadAny(store, entry.descriptor);
      const images = isIndex(found) ? found.images : [found];
      trace?.(`image ${ref} read from the store`);
      const image = images.find((im) => samePlatform(im.config, want));
      if (image) return image;
    }
  }
  const name = formatReference(normalizeReference(ref));
  const started = performance.now();
  options.onPull?.({ type: 'pull', ref: name, status: 'start' });
  const pulled = await pull({
    root: store.root,
    reference: ref,
    platform,
    ...(options.insecureRegistries ? { insecureRegistries: options.insecureRegistries } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.caCertFile ? { caCertFile: options.caCertFile } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const image = await loadImage(store, pulled.descriptor);
  options.onPull?.({
    type: 'pull',
    ref: name,
    status: 'done',
    seconds: (performance.now() - started) / 1000,
    layers: image.layers.length,
    bytes: image.layers.reduce((n, l) => n + l.size, 0),
  });
  return image;
}

/** A failure to obtain an image, said for the build: where, what it means, then the registry's answer. */
function explain(err: unknown, use: ImageUse): unknown {
  if (!(err instanceof GantryError)) return err;
  // An oci-layout value is no reference to normalise; its errors are no registry's.
  const name = isLayoutRef(use.ref) ? use.ref : formatReference(normalizeReference(use.ref));
  let meaning = '';
  if (err instanceof RegistryError) {
    if (err.code === 'REGISTRY_NOT_FOUND') meaning = `image ${name} not found in its registry`;
    else if (err.code === 'REGISTRY_UNREACHABLE') meaning = `cannot reach the registry ${parseReference(name).domain} for ${name}`;
    else if (err.code === 'REGISTRY_DENIED' || err.code === 'REGISTRY_AUTH') meaning = `cannot pull ${name}`;
  }
  // A short name one or two letters from a stage's: most likely the stage was meant.
  const bare = !/[/:@]/.test(use.ref);
  const close = bare && use.stageNames ? /^ \(did you mean (.*)\?\)$/.exec(didYouMean(use.ref, use.stageNames))?.[1] : undefined;
  const hint = close ? `no stage is named "${use.ref}"; did you mean the stage "${close}"?` : '';
  const prefix = [use.where, meaning && hint ? `${meaning} (${hint})` : meaning || hint].filter(Boolean).join(': ');
  if (prefix && !err.message.startsWith(prefix)) err.message = `${prefix}: ${err.message}`;
  return err;
}

export function samePlatform(config: ImageConfig, want: Platform): boolean {
  return configPlatform(config) === formatPlatform(want);
}
