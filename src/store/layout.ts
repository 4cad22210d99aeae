/**
 * The store's layout, in one place: where a store's root is (resolveRoot), every path under it
 * is named here, and the kinds of file that share cache/ are told apart here (the files in blobs/ are named by the blob store,
 * blobs.ts, as the OCI image layout names them). The store (store.ts, blobs.ts, work.ts) and the
 * modules that keep files in it (the layer cache, layer sizes, the context stat cache, snapshots,
 * the compiled seccomp program) ask for their paths; fsck, prune and usage ask what a file is.
 *
 *   <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
 *   <root>/index.json          the images; names in org.opencontainers.image.ref.name
 *   <root>/index.json.lock     the lock of index.json and of the leases (proper-lockfile's protocol)
 *   <root>/blobs/<alg>/<hex>   content, written once
 *   <root>/tmp/                the work area: temp files, leases, build trees (0700)
 *   <root>/rootfs/<chain>/     base images' layers extracted once, by chain (0700)
 *   <root>/snapshots/<id>/     step snapshots: fs/, meta.json, index.bin (0700)
 *   <root>/cache-mounts/<id>/  RUN --mount=type=cache directories (0700)
 *   <root>/trash/              build trees set aside, removed in bulk (0700)
 *   <root>/containers/<id>/    working containers: container.json, rootfs/, base.bin (0700; store/containers.ts)
 *   <root>/cache/              the build's small files, by kind (cacheFileKind)
 */
import os from 'node:os';
import path from 'node:path';
import { StoreError } from '../errors/index.js';

export const LAYOUT_VERSION = '1.0.0';

/** Whether an oci-layout file's text names the layout version gantry reads and writes. */
export function isCurrentLayout(text: string): boolean {
  try {
    return (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion === LAYOUT_VERSION;
  } catch {
    return false;
  }
}

/** The store's directories that only its owner may enter (see WorkArea.closePrivateDirs). */
export const PRIVATE_DIRS = ['tmp', 'rootfs', 'snapshots', 'cache-mounts', 'trash', 'containers'] as const;

/** Every entry a store's root may hold; anything else is not gantry's (fsck says so and leaves it). */
export const LAYOUT_ENTRIES: ReadonlySet<string> = new Set(['oci-layout', 'index.json', 'index.json.lock', 'blobs', 'tmp', 'cache', ...PRIVATE_DIRS]);

/**
 * The kinds of file in cache/, each kept by one module:
 * - `entry`: a layer cache entry, `<key>.json` (store/cache.ts);
 * - `size`: a layer's unpacked content size, `size-<hex>.json` (store/sizes.ts);
 * - `stat`: a build context's stat cache, `stat-<hex>.json` (builder/statcache.ts);
 * - `seccomp`: a compiled seccomp program, `seccomp-<key>.json` (sandbox/runtime.ts);
 * - `chain-snapshot`: an extracted chain's stat index, `snapshot-<chain>.bin` (snapshot/persist.ts);
 * - `old-chain-snapshot`: the same in the JSON format of earlier versions, `snapshot-<chain>.json`.
 */
export type CacheFileKind = 'entry' | 'size' | 'stat' | 'seccomp' | 'chain-snapshot' | 'old-chain-snapshot';

const CACHE_FILES: readonly [CacheFileKind, RegExp, (id: string) => string][] = [
  ['entry', /^([0-9a-f]{64})\.json$/, (id) => `${id}.json`],
  ['size', /^size-([0-9a-f]{64})\.json$/, (id) => `size-${id}.json`],
  ['stat', /^stat-([0-9a-f]{64})\.json$/, (id) => `stat-${id}.json`],
  ['seccomp', /^seccomp-([0-9a-f]{64})\.json$/, (id) => `seccomp-${id}.json`],
  ['chain-snapshot', /^snapshot-([0-9a-f]{64})\.bin$/, (id) => `snapshot-${id}.bin`],
  ['old-chain-snapshot', /^snapshot-([0-9a-f]{64})\.json$/, (id) => `snapshot-${id}.json`],
];

/** What a file of cache/ is, and the id its name carries (a key, a hex digest, a chain); undefined: not gantry's. */
export function cacheFileKind(name: string): { kind: CacheFileKind; id: string } | undefined {
  for (const [kind, re] of CACHE_FILES) {
    const m = re.exec(name);
    if (m) return { kind, id: m[1] as string };
  }
  return undefined;
}

/** The paths of a store at `root`. */
export class Layout {
  readonly layoutFile: string;
  readonly indexFile: string;
  readonly lockFile: string;
  readonly tmpDir: string;
  /** Base images' layers extracted once, by chain: the lower directories of build overlays. */
  readonly rootfsDir: string;
  readonly cacheDir: string;
  /** blobs/: the blob store (blobs.ts) names the files in it, blobs/<algorithm>/<hex>, as the OCI image layout does. */
  readonly blobsDir: string;

  constructor(readonly root: string) {
    this.layoutFile = path.join(root, 'oci-layout');
    this.indexFile = path.join(root, 'index.json');
    this.lockFile = path.join(root, 'index.json.lock');
    this.tmpDir = path.join(root, 'tmp');
    this.rootfsDir = path.join(root, 'rootfs');
    this.cacheDir = path.join(root, 'cache');
    this.blobsDir = path.join(root, 'blobs');
  }

  /**
   * The path of the cache/ file of `kind` for `id` (a key, a hex digest or a chain: 64 hex
   * digits when gantry made it). Any other id still names a file in cache/ (prune asks for the
   * snapshot of every name it finds in rootfs/, a stray one included), never one elsewhere.
   */
  cachePath(kind: CacheFileKind, id: string): string {
    if (id === '' || id.includes('/') || id === '.' || id === '..') throw new StoreError('STORE_INVALID', `cache/ ${kind}: "${id}" cannot name a file there`);
    const name = (CACHE_FILES.find(([k]) => k === kind) as (typeof CACHE_FILES)[number])[2](id);
    return path.join(this.cacheDir, name);
  }

  /** Where a compiled seccomp program is kept for later builds (sandbox/runtime.ts), by its key. */
  seccompProgramPath(key: string): string {
    return this.cachePath('seccomp', key);
  }

  /** Where the snapshot of the extracted chain `chain` is kept (snapshot/persist.ts). */
  chainSnapshotPath(chain: string): string {
    return this.cachePath('chain-snapshot', chain);
  }
}

// --- where a store is --------------------------------------------------------------------------

/**
 * Where the store lives: `--root`, else `$GANTRY_ROOT`, else `$XDG_DATA_HOME/gantry`,
 * else `~/.local/share/gantry` (the XDG default for XDG_DATA_HOME).
 */
export function resolveRoot(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.GANTRY_ROOT) return path.resolve(env.GANTRY_ROOT);
  const data = env.XDG_DATA_HOME || path.join(env.HOME || os.homedir(), '.local', 'share');
  return path.resolve(data, 'gantry');
}
