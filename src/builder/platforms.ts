/**
 * A multi-platform build (`--platform linux/amd64,linux/arm64`): the Dockerfile planned and
 * executed once per platform, in one store scope, and the images made into one OCI index,
 * which is what the build's names and outputs then name. What the platforms share (the
 * context, the stages on `$BUILDPLATFORM`) is shared through the layer cache: the second
 * platform's run of a stage on the build platform finds every step cached.
 */
import type { DockerfileModel } from '../dockerfile/stages.js';
import { indexOf, type Image } from '../image/image.js';
import { OptionError } from '../errors/index.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import { loadImage, storeIndex } from '../store/images.js';
import type { Store } from '../store/store.js';
import { execute, nameImage } from './execute.js';
import type { NamedContexts } from './named-contexts.js';
import { resolvePlan } from './resolve.js';
import type { BuildSettings, ExecuteOptions, ExecuteResult, ProgressEvent } from './types.js';

/**
 * The platforms a `--platform` value names, normalised, each once (buildx takes a
 * comma-separated list; a platform given twice is built once).
 */
export function platformList(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    if (part.trim() === '') continue;
    const p = formatPlatform(parsePlatform(part));
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

/**
 * The platforms a build is for (`settings.platform`, each once), and whether its image is an
 * index: for several, or for one with BuildKit's BUILDKIT_MULTI_PLATFORM=true (none given: this
 * host's). Refused as BuildKit refuses them: BUILDKIT_MULTI_PLATFORM=false with several, and
 * `index:` annotations without an index.
 */
export function buildPlatforms(settings: Pick<BuildSettings, 'platform' | 'buildArgs' | 'indexAnnotations'>): { platforms: string[]; index: boolean } {
  const platforms = platformList(settings.platform);
  const forced = multiPlatformArg(settings.buildArgs?.BUILDKIT_MULTI_PLATFORM);
  if (forced === false && platforms.length > 1) throw new OptionError('BUILD_ARG_INVALID', `BUILDKIT_MULTI_PLATFORM=false conflicts with several platforms (${platforms.join(', ')})`);
  if (forced && platforms.length === 0) platforms.push(formatPlatform(hostPlatform()));
  const index = platforms.length > 1 || forced === true;
  if (!index && Object.keys(settings.indexAnnotations ?? {}).length > 0) {
    throw new OptionError('ANNOTATION_INVALID', 'index annotations need a multi-platform index: build for several platforms (--platform a,b) or use manifest:KEY=VALUE');
  }
  return { platforms, index };
}

/** BUILDKIT_MULTI_PLATFORM's value as BuildKit reads it (Go's strconv.ParseBool); unset: undefined. */
function multiPlatformArg(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(value)) return false;
  throw new OptionError('BUILD_ARG_INVALID', `BUILDKIT_MULTI_PLATFORM=${value}: expected true or false`);
}

/**
 * Build `model` for each of `platforms` and name the index of their images. Each platform's
 * run records its own cache entries (for `--cache-to`); they are exported together.
 */
export async function executePlatforms(
  store: Store,
  model: DockerfileModel,
  platforms: string[],
  options: ExecuteOptions,
  named: NamedContexts | undefined,
): Promise<ExecuteResult> {
  const emit: (e: ProgressEvent) => void = options.onProgress ?? (() => undefined);
  const results: ExecuteResult[] = [];
  const shared = options.shared;
  const recorded: NonNullable<ExecuteOptions['shared']>['recorded'] = [];
  const leaving = new Set<number>();
  // A step one platform ran is not run again for the next under --no-cache (BuildKit solves it once).
  const ranThisBuild = new Set<string>();
  for (const platform of platforms) {
    options.signal?.throwIfAborted();
    const one: ExecuteOptions = { ...options, platform, onePlatform: true, ranThisBuild, ...(shared ? { shared: { ...shared, recorded: [] } } : {}) };
    const resolved = await resolvePlan(store, model, one, named, emit);
    results.push(await execute(store, resolved, one, named));
    if (shared && one.shared) {
      recorded.push(...one.shared.recorded);
      // A stage leaves the build when it does for any platform (FROM base-$TARGETARCH picks one each).
      for (const s of one.shared.leaving) leaving.add(s);
    }
  }
  if (shared) {
    shared.recorded = recorded;
    shared.leaving = leaving;
  }
  const images: Image[] = [];
  for (const r of results) images.push(await loadImage(store, r.descriptor));
  const descriptor = await storeIndex(store, indexOf(images, options.indexAnnotations));
  const tags = await nameImage(store, descriptor, options.tags);
  emit({ type: 'image', digest: descriptor.digest, configDigest: descriptor.digest, tags });
  return {
    digest: descriptor.digest,
    configDigest: descriptor.digest,
    descriptor,
    tags,
    plan: (results[0] as ExecuteResult).plan,
    platforms: results.map((r, i) => ({ platform: platforms[i] as string, digest: r.digest, configDigest: r.configDigest })),
  };
}
