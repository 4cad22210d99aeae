/**
 * The build executor: walks a BuildPlan stage by stage. Config-only steps change the image
 * config and history. RUN, COPY, ADD and WORKDIR (when it creates the directory) change
 * the root filesystem and become a diff layer, unless the layer cache already has the
 * step: its key chains the parent key, the step as the planner resolved it, and for
 * COPY/ADD a checksum of the sources' names, modes, link targets and contents.
 *
 * Root filesystems are materialised lazily (a fully cached build never unpacks anything)
 * in the store's temp area and moved to its trash at the end (store/trash.ts).
 */
import { createHash } from 'node:crypto';
import { chmod, chown, cp, lstat, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { lstatSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Readable } from 'node:stream';
import { crashPoint, DockerfileError, GantryError, OptionError, trace, type SourceLocation } from '../errors/index.js';
import type { Image } from '../image/image.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import type { Descriptor, HistoryEntry, ImageConfig } from '../oci/types.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import { parseDockerfile } from '../dockerfile/stages.js';
import { DEFAULT_PATH, heredocRefName, planModel, type BaseImageInfo, type BuildPlan, type PlannedStage, type Step } from '../plan/planner.js';
import { applyLayer } from '../rootfs/apply.js';
import { mountOverlay, overlayWanted, unmount } from '../rootfs/overlay.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import { readXattrs, readXattrsTree } from '../rootfs/xattr.js';
import { chooseIsolation, prewarmSandbox, probeIsolation, runInSandbox, type Isolation, type SandboxMount } from '../sandbox/run.js';
import type { Ulimit } from '../sandbox/types.js';
import { diff, lowerIndex, snapshot, snapshotUpper, writeLayer, type Snapshot } from '../snapshot/diff.js';
import { loadSnapshot, saveSnapshot } from '../snapshot/persist.js';
import { TarWriter } from '../tar/writer.js';
import { LayerCache } from '../store/cache.js';
import { loadImage, writeImage } from '../store/images.js';
import { chainName, Store } from '../store/store.js';
import { collectTrash, discard, trashBudget } from '../store/trash.js';
import { SNAPSHOT_DEPTH, Snapshots, storeBudget, type View } from '../store/snapshots.js';
import { applyConfigStep, type ConfigState } from './config.js';
import { checksumSources, loadIgnore, resolveSources, type IgnoreFilter, type SourceItem } from './context.js';
import { StatCache } from './statcache.js';
import { copyInto, ensureDir, type CopyOptions } from './copy.js';
import { cloneSource, downloadSource, inlineSources, isArchive, isUrl, openFile } from './sources.js';
import { gitOptions, parseGitRef } from '../dockerfile/gitref.js';
import { decompress, layerTar } from '../tar/decompress.js';
import { ignoreMatcher } from './ignore.js';
import type { RegistryAccess } from './registry.js';
import { obtainImage, type PullEvent } from './bases.js';
import type { ExportEvent } from './outputs.js';
import { isLayoutRef, resolveNamedContexts, type NamedContexts, type NamedDir } from './named-contexts.js';
import { holdCacheMount } from './cache-mount.js';
import { createdBy, HISTORY_COMMENT } from './history.js';
import { resolveUser } from './users.js';
import { parseChmod } from '../dockerfile/chmod.js';
import { BuildError } from './errors.js';
import { runCommand } from './run-command.js';
import { forwardAgent } from '../sandbox/ssh-agent.js';

export type ProgressEvent =
  | { type: 'plan'; plan: BuildPlan }
  | { type: 'step'; id: number; name: string; status: 'start' | 'cached' | 'done'; seconds?: number }
  | { type: 'output'; id: number; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'image'; digest: string; configDigest: string; tags: string[] }
  /** Something the user should know that is not an error (the isolation chosen, a weaker guarantee). */
  | { type: 'notice'; text: string }
  /** A base image (or one COPY --from names) being pulled. */
  | PullEvent
  /** An output being written or pushed, after the build. */
  | ExportEvent;

/** What a build is asked to do, shared by the executor and the public build() API. */
export interface BuildSettings extends RegistryAccess {
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  platform?: string;
  noCache?: boolean;
  /** Pull every image the Dockerfile names, even those the store has (`--pull`). */
  pull?: boolean;
  /** Named contexts (`--build-context NAME=VALUE`): NAME → a directory, docker-image://REF, oci-layout://PATH[:TAG][@DIGEST], or a URL. */
  namedContexts?: Record<string, string>;
  /** Stages (by name) whose steps run again, the cache unused (`--no-cache-filter`). */
  noCacheFilter?: string[];
  sourceDateEpoch?: number;
  isolation?: Isolation;
  /** The network of every RUN that asks for none of its own (`--network`); default: a user-mode network. */
  network?: 'default' | 'none' | 'host';
  /** Entitlements granted (`--allow`): `network.host` lets RUN use the host's network. */
  allow?: string[];
  /** ssh-agent sockets for RUN --mount=type=ssh: id → socket (`--ssh`). */
  ssh?: Record<string, string>;
  /** Annotations of the image's manifest (`--annotation`). */
  annotations?: Record<string, string>;
  /** Extra /etc/hosts entries of every RUN (`--add-host`). */
  extraHosts?: { name: string; ip: string }[];
  /** The size of every RUN's /dev/shm in bytes (`--shm-size`). */
  shmSize?: number;
  /** Resource limits of every RUN (`--ulimit`). */
  ulimits?: Ulimit[];
  /** Labels of the image (`--label`), over those the Dockerfile sets. */
  labels?: Record<string, string>;
  /** A seccomp profile (Docker's format) for RUN, or 'unconfined'; default: Debian's containers profile. */
  seccomp?: string;
  /** Secrets for RUN --mount=type=secret: id → a file, or an environment variable of this process (`--secret id=ID,env=VAR`). */
  secrets?: Record<string, string | { env: string }>;
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface ExecuteOptions extends BuildSettings {
  root: string;
  context: string;
  /** Dockerfile path (for messages and <Dockerfile>.dockerignore). */
  dockerfile: string;
  text: string;
}

export interface ExecuteResult {
  /** Manifest digest of the target image. */
  digest: string;
  configDigest: string;
  descriptor: Descriptor;
  tags: string[];
  plan: BuildPlan;
  /**
   * Where the image was pushed, with the registry's manifest digest (layers are compressed on
   * the way up, so it differs from `digest`, the store's).
   */
  pushed?: { name: string; digest: string; mediaType: string; size: number }[];
}

interface LayerRef {
  digest: string;
  size: number;
  diffId: string;
  mediaType: string;
}

interface StageState {
  config: ImageConfig;
  layers: LayerRef[];
  key: string;
  rootfs?: string;
  /** How many of `layers`, from the first, are the base image's (an overlay's lower directory). */
  baseLayers: number;
  /** The rootfs as the last step left it (a step's "after" is the next one's "before"). */
  snapshot?: Snapshot;
  /**
   * When the rootfs is an overlay and its last step a RUN: the capabilities of every file in
   * the upper directory (relative path → name → value), as read for that step's layer.
   */
  upperCaps?: Promise<Map<string, Map<string, Buffer>>>;
  configState: ConfigState;
  /** Where overlays are used: the lower directories that show `layers` up to `view.covered` (workspace/snapshots.ts). */
  view?: View;
  /** Its stat index, as a fresh mount of the view shows it, when known. */
  viewIndex?: Snapshot;
  /** The overlay `rootfs` is, while mounted: its upper directory holds `layers` from `view.covered` on. */
  live?: { dir: string; merged: string; upper: string; view: View };
  /** The key of the last step that added a layer: what a snapshot of the rootfs is kept under. */
  layerKey?: string;
  /** A stage FROM an earlier one: that one's state, whose snapshot this one mounts. */
  from?: StageState;
}

/** What a build did to its file systems, for the tests that count it (GANTRY_STATS_OUT names a file). */
interface BuildStats {
  /** Layers unpacked: into a base chain, a plain rootfs, or an overlay's upper directory. */
  layersApplied: number;
  /** Base chains extracted into rootfs/. */
  chainsExtracted: number;
  /** Overlays mounted on a stack of one or more step snapshots. */
  snapshotsMounted: number;
  /** Step snapshots kept. */
  snapshotsCommitted: number;
  /** Whole walks of a rootfs for a step's "before". */
  walks: number;
}

export { BuildError };

const imageKey = (ref: string, platform: string): string => `${platform} ${ref}`;

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * What a COPY or bind mount reads from another stage or an image, for the cache key: that
 * rootfs's layers (content-addressed), so the key needs no unpacking, only a cache miss does.
 */
const layersOf = (s: StageState): string => `layers:${s.layers.map((l) => l.diffId).join(',')}`;

export async function execute(options: ExecuteOptions): Promise<ExecuteResult> {
  trace('build start');
  const store = await Store.open(options.root);
  trace('store open');
  trashBudget(); // a GANTRY_TRASH_BUDGET that is not a size stops the build here, not silently at its end
  storeBudget(store.root); // and so does a GANTRY_STORE_BUDGET
  const cache = new LayerCache(store);
  const snapshots = new Snapshots(store);
  const stats: BuildStats = { layersApplied: 0, chainsExtracted: 0, snapshotsMounted: 0, snapshotsCommitted: 0, walks: 0 };
  /** Every stage state of this build, for the snapshots kept when it ends. */
  const states: StageState[] = [];
  let succeeded = false;
  const temps: string[] = [];
  /** What each temp tree is estimated to hold (the layers applied and written there), for the trash's budget. */
  const tempBytes = new Map<string, number>();
  /** The temp tree each build rootfs lives in (an overlay's merged directory is inside it). */
  const tempOf = new Map<string, string>();
  const charge = (root: string, bytes: number): void => {
    const t = tempOf.get(root) ?? root;
    tempBytes.set(t, (tempBytes.get(t) ?? 0) + bytes);
  };
  /** Overlay mounts of this build, unmounted before its temp entries go. */
  const mounted: string[] = [];
  /** Their unmount, once started. */
  let unmounting: Promise<void> | undefined;
  /** Overlays mounted ahead for stages still to come (see mountAhead), by chain: one each. */
  const ahead = new Map<string, Promise<{ dir: string; merged: string | undefined }>>();
  /** Each overlay's upper directory, by its merged directory (a build rootfs). */
  const uppers = new Map<string, string>();
  let contextStats: StatCache | undefined;
  const emit = options.onProgress ?? (() => undefined);
  const created = new Date(options.sourceDateEpoch !== undefined ? options.sourceDateEpoch * 1000 : Date.now()).toISOString();
  const fixedTime = options.sourceDateEpoch !== undefined;
  /**
   * The date of what makes no layer of its own (ENV, CMD...: a history entry with no layer, and
   * the image itself): the newest date in the history so far, so that, as with BuildKit, a
   * rebuild that changes nothing gives the same image, and an image whose steps were all cached
   * is dated by when they ran. SOURCE_DATE_EPOCH dates everything.
   */
  const dated = (c: ImageConfig): string => {
    if (fixedTime) return created;
    const history = c.history ?? [];
    for (let i = history.length - 1; i >= 0; i--) if (history[i]?.created) return history[i]?.created as string;
    return c.created ?? created;
  };
  let named: NamedContexts | undefined;
  const namedDir = (key: string): NamedDir => named?.dirs.get(key) as NamedDir;
  try {
    // Named contexts first: a URL one is fetched before anything is planned on it.
    if (options.namedContexts && Object.keys(options.namedContexts).length > 0) named = await resolveNamedContexts(options.namedContexts);
    const planOptions = {
      file: options.dockerfile,
      ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
      ...(options.target ? { target: options.target } : {}),
      ...(options.platform ? { platform: options.platform } : {}),
      ...(named ? { namedContexts: named.plan } : {}),
    };
    // 1. The images the plan needs: from the store when there, else pulled.
    // Parsed once, planned twice: first for the images it names, then with what they say.
    const model = parseDockerfile(options.text, { file: options.dockerfile ?? 'Dockerfile' });
    trace('Dockerfile parsed');
    // Planned again while the images it names tell of more: a base's ONBUILD triggers can
    // name images (COPY --from=image) and stages (with bases of their own) nothing else uses.
    const images = new Map<string, Image>();
    const stageNames = model.stages.flatMap((st) => (st.name ? [st.name] : []));
    const layouts = new Set(Object.values(named?.plan ?? {}).flatMap((c) => (c.type === 'image' && isLayoutRef(c.ref) ? [c.ref] : [])));
    const baseImages: Record<string, BaseImageInfo> = {};
    // Until the last round the plan lacks what the images say (their SHELL, ENV…): no
    // check=error=true failure on a warning the full plan would not have.
    let plan = planModel(model, { ...planOptions, checkErrors: false });
    for (let round = 0; ; round++) {
      const missing = [...imagesWanted(plan)].filter(([key]) => !images.has(key));
      if (missing.length === 0) break;
      if (round === 10) throw new BuildError('BUILD_IMAGE', 'the base images\' ONBUILD triggers keep naming more images (10 rounds)');
      for (const [key, { ref, platform, where }] of missing) {
        // Errors are said with the Dockerfile line that named the image, as BuildKit points there.
        const image = await obtainImage(store, { ref, platform, ...(where ? { where } : {}), stageNames }, { ...options, onPull: emit, layouts });
        images.set(key, image);
        baseImages[ref] ??= baseImageInfo(image);
      }
      plan = planModel(model, { ...planOptions, baseImages, checkErrors: false });
    }
    plan = planModel(model, { ...planOptions, baseImages });
    warnPlatformMismatch(plan, (ref, platform) => images.get(imageKey(ref, platform)));
    trace('planned');
    checkEntitlements(plan, options);
    const uncachedStages = stagesNamed(plan, options.noCacheFilter ?? []);
    const hostname = options.buildArgs?.BUILDKIT_SANDBOX_HOSTNAME;
    // Empty: the default name, as BuildKit; else a name the kernel takes (at most 64 bytes).
    if (hostname && (hostname.length > 64 || !/^[A-Za-z0-9]([A-Za-z0-9-]*)(\.[A-Za-z0-9]([A-Za-z0-9-]*))*$/.test(hostname))) {
      throw new BuildError('BUILD_HOSTNAME', `BUILDKIT_SANDBOX_HOSTNAME "${hostname}" is not a valid host name`);
    }
    emit({ type: 'plan', plan });
    const ignore = await loadIgnore(options.context, options.dockerfile);
    contextStats = await StatCache.open(path.join(store.root, 'cache'), options.context, store.tempPath('stat'));
    trace('context stat cache open');
    const finished = new Map<number, StageState>();
    const imageStates = new Map<string, StageState>();

    const newRootfs = async (): Promise<string> => {
      const dir = store.tempPath('rootfs');
      temps.push(dir);
      await mkdir(dir, { recursive: true, mode: 0o755 });
      return dir;
    };
    const openLayer = (l: LayerRef): Readable => layerTar(store.openBlob(l.digest, l.size), layerCompression(l.mediaType), `layer ${l.digest}`);
    const extracting = new Map<string, Promise<string>>();
    /** One extraction per chain in this build, however many stages (or mounts ahead) ask. */
    const extractedChain = (chain: string, layers: LayerRef[]): Promise<string> => {
      let p = extracting.get(chain);
      if (!p) extracting.set(chain, (p = extractChain(chain, layers)));
      return p;
    };
    /** The base's layers extracted once into the store (rootfs/<chain>), for overlays to start from. */
    const extractChain = async (chain: string, layers: LayerRef[]): Promise<string> => {
      await store.lease(`rootfs:${chain}`); // prune keeps it while this build runs
      const dir = path.join(store.rootfsDir, chain);
      if (await lstat(dir).catch(() => undefined)) return dir;
      const tmp = store.tempPath('chain');
      temps.push(tmp);
      await mkdir(tmp, { recursive: true, mode: 0o755 });
      for (const l of layers) charge(tmp, (await applyLayer(tmp, openLayer(l), { what: `layer ${l.digest}` })).bytes);
      stats.chainsExtracted++;
      stats.layersApplied += layers.length;
      await store.privateDir('rootfs');
      // Another build may have finished the same chain first: then its copy is used.
      await rename(tmp, dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
      trace(`chain ${chain}: extracted`);
      return dir;
    };
    /** The snapshot of an extracted chain: kept in the cache, taken once. */
    const chainSnapshot = async (chain: string, dir: string): Promise<Snapshot> => {
      const file = store.chainSnapshotPath(chain);
      const kept = await loadSnapshot(file, dir);
      if (kept) return kept;
      const snap = await snapshot(dir);
      await saveSnapshot(file, store.tempPath('snapshot'), dir, snap);
      await rm(file.replace(/\.bin$/, '.json'), { force: true }); // a snapshot kept in the JSON format of earlier versions
      return snap;
    };
    /** An overlay on the extracted chain `lower`, in a new temp entry; `merged` is undefined where overlays cannot be used. */
    const overlayOn = async (lower: string): Promise<{ dir: string; merged: string | undefined }> => {
      const dir = await newRootfs();
      const merged = await mountOverlay(lower, dir);
      if (merged) {
        mounted.push(merged);
        uppers.set(merged, path.join(dir, 'upper'));
      }
      return { dir, merged };
    };
    /** The stages whose first step run has mounted ahead for the stages reading from them. */
    const aheadOf = new Set<number>();
    /**
     * Once a stage has run a step, the stages that read from it will run theirs too (their keys
     * follow its layers): their overlays are mounted meanwhile, while this stage's steps run.
     */
    const mountAhead = (stageIndex: number): void => {
      if (!overlayWanted()) return;
      for (const later of plan.stages) {
        if (later.index <= stageIndex || later.base.type !== 'image' || !later.dependsOn.includes(stageIndex)) continue;
        if (!later.steps.some((st) => st.op === 'run' || st.op === 'copy' || st.op === 'workdir')) continue;
        let s: StageState;
        try {
          s = stateOfImage(later.base.ref, later.platform);
        } catch {
          continue; // not resolved: the stage will say so itself
        }
        if (s.baseLayers === 0) continue;
        const base = s.layers.slice(0, s.baseLayers);
        const chain = chainName(base.map((l) => l.diffId));
        if (ahead.has(chain)) continue;
        const made = extractedChain(chain, base).then(overlayOn);
        made.catch(() => undefined); // a failure shows again when the stage mounts its own
        ahead.set(chain, made);
        trace(`stage ${later.index}: overlay mounted ahead`);
      }
    };
    const baseOf = (s: StageState): { chain: string; layers: LayerRef[] } => {
      const layers = s.layers.slice(0, s.baseLayers);
      return { chain: chainName(layers.map((l) => l.diffId)), layers };
    };
    /**
     * A mount of `s`'s view: the base chain extracted (once), the view's snapshots stacked on it
     * and a new upper directory. Undefined where overlays cannot be used.
     */
    const mountView = async (s: StageState, view: View): Promise<{ dir: string; merged: string } | undefined> => {
      const { chain, layers } = baseOf(s);
      const lower = await extractedChain(chain, layers);
      if (view.snapshots.length === 0) {
        const early = ahead.get(chain);
        ahead.delete(chain);
        const made = await (early?.catch(() => overlayOn(lower)) ?? overlayOn(lower));
        return made.merged ? { dir: made.dir, merged: made.merged } : undefined;
      }
      const dir = await newRootfs();
      const merged = await mountOverlay(snapshots.lowers(view, chain), dir, store.root);
      if (!merged) return undefined;
      mounted.push(merged);
      uppers.set(merged, path.join(dir, 'upper'));
      stats.snapshotsMounted++;
      return { dir, merged };
    };
    /** The stat index of a fresh mount of `s.view`: kept in memory, on disk, or walked. */
    const viewIndex = async (s: StageState, view: View, merged: string): Promise<Snapshot> => {
      if (s.viewIndex) return s.viewIndex;
      const top = view.snapshots[0];
      const { chain } = baseOf(s);
      const kept = top !== undefined ? await snapshots.index(top) : await chainSnapshot(chain, await extractedChain(chain, baseOf(s).layers));
      if (kept) return kept;
      stats.walks++;
      return snapshot(merged);
    };
    const materialise = async (s: StageState): Promise<string> => {
      if (s.rootfs) return s.rootfs;
      let dir: string | undefined;
      let root: string | undefined;
      let applied = 0;
      if (s.view && overlayWanted()) {
        // A stage FROM an earlier one mounts that one's snapshot, once it is kept.
        const from = s.from;
        delete s.from;
        if (from && (await seal(from)) && from.view && s.view.covered < from.view.covered && from.view.covered <= s.layers.length) {
          s.view = from.view;
          if (from.viewIndex) s.viewIndex = from.viewIndex;
          else delete s.viewIndex;
        }
        const view = s.view;
        let made = await mountView(s, view).catch((err: unknown) => {
          trace(`snapshot stack not mounted: ${(err as Error).message}`);
          return undefined;
        });
        if (!made && view.snapshots.length > 0 && overlayWanted()) {
          // A stack that cannot be mounted: the base alone, the rest unpacked.
          s.view = { snapshots: [], covered: s.baseLayers };
          delete s.viewIndex;
          made = await mountView(s, s.view);
        }
        if (made) {
          dir = made.dir;
          root = made.merged;
          applied = s.view.covered;
          s.live = { dir: made.dir, merged: made.merged, upper: path.join(made.dir, 'upper'), view: s.view };
          // Nothing is in the upper directory yet: the merged view's index is the view's.
          if (applied === s.layers.length) s.snapshot = await viewIndex(s, s.view, made.merged);
        }
      }
      dir ??= await newRootfs();
      root ??= dir;
      tempOf.set(root, dir);
      for (const l of s.layers.slice(applied)) {
        charge(root, (await applyLayer(root, openLayer(l), { what: `layer ${l.digest}` })).bytes);
        stats.layersApplied++;
      }
      s.rootfs = root;
      // Cached layers unpacked on an overlay become the snapshot of the step that made the last
      // of them: the next build mounts it instead of unpacking them again.
      if (s.live && applied < s.layers.length && s.layerKey !== undefined && (await seal(s))) return materialise(s);
      return root;
    };
    /**
     * Keep what `s`'s overlay holds as a snapshot and unmount it: afterwards `s.view` shows all
     * its layers and `s.rootfs` is mounted again when needed. False when the overlay stays as
     * it is (a stack at its depth): then it is the only place its layers are unpacked.
     */
    const seal = async (s: StageState): Promise<boolean> => {
      const live = s.live;
      if (!live) return true;
      const grown = s.layers.length > live.view.covered;
      if (grown && (live.view.snapshots.length >= SNAPSHOT_DEPTH - 1 || s.layerKey === undefined)) return false;
      const index = grown ? lowerIndex(s.snapshot ?? (stats.walks++, await snapshot(live.merged)), live.upper) : undefined;
      delete s.live;
      delete s.rootfs;
      delete s.snapshot;
      delete s.upperCaps;
      mounted.splice(mounted.indexOf(live.merged), 1);
      uppers.delete(live.merged);
      await unmount(live.merged);
      if (!index) return true;
      const { chain: base } = baseOf(s);
      const id = await snapshots
        .commit({ key: s.layerKey as string, chain: chainName(s.layers.map((l) => l.diffId)), base, parents: live.view.snapshots, layers: s.layers.length, upper: live.upper, index, bytes: tempBytes.get(live.dir) ?? 0 })
        .catch((err: unknown) => {
          trace(`snapshot not kept: ${(err as Error).message}`);
          return undefined;
        });
      if (id) {
        stats.snapshotsCommitted++;
        tempBytes.set(live.dir, 0); // what it held is the snapshot's now
        s.view = { snapshots: [id, ...live.view.snapshots], covered: s.layers.length };
        s.viewIndex = index;
        return true;
      }
      // Not kept (another build kept the same step first): that one, when it shows these layers.
      const kept = await snapshots.open(s.layerKey as string, chainName(s.layers.map((l) => l.diffId)), base, s.layers.length);
      if (kept) {
        s.view = kept;
        delete s.viewIndex;
      } else {
        s.view = live.view; // the layers above it are unpacked again when needed
        delete s.viewIndex;
      }
      return true;
    };
    /** When the build has succeeded: every overlay kept as its last step's snapshot (or only unmounted). */
    const sealAll = async (): Promise<void> => {
      for (const s of states) {
        await seal(s).catch((err: unknown) => trace(`snapshot not kept: ${(err as Error).message}`));
      }
      trace('snapshots kept');
    };
    const stateOfImage = (ref: string, platform: string): StageState => {
      const key = imageKey(ref, platform);
      const existing = imageStates.get(key);
      if (existing) return existing;
      const image = images.get(key);
      if (!image) throw new BuildError('BUILD_IMAGE', `image ${ref} (${platform}) was not resolved before the build`);
      const s: StageState = {
        config: JSON.parse(image.rawConfig.toString('utf8')) as ImageConfig,
        layers: image.layers.map((l) => ({ digest: l.digest, size: l.size, diffId: l.diffId, mediaType: l.mediaType })),
        key: sha(`image:${image.digest}`),
        baseLayers: image.layers.length,
        configState: { cmdSet: false },
        view: { snapshots: [], covered: image.layers.length },
      };
      imageStates.set(key, s);
      states.push(s);
      return s;
    };

    /** What a mount's `from=` names: an earlier stage by index, else an image. */
    const stateOfFrom = (from: string, platform: string): StageState =>
      /^\d+$/.test(from) ? (finished.get(Number(from)) as StageState) : stateOfImage(from, platform);
    const mountSourceRoot = async (from: string | undefined, platform: string): Promise<{ root: string; ignore: IgnoreFilter; context: boolean }> => {
      if (from === undefined) return { root: options.context, ignore, context: true };
      return { root: await materialise(stateOfFrom(from, platform)), ignore: () => false, context: false };
    };
    const platformOf = (stageIndex: number): string => plan.stages.find((st) => st.index === stageIndex)?.platform ?? plan.platform;
    /** The caches of a --no-cache build, by name: its own, made empty. */
    const noCacheMounts = new Map<string, string>();
    /**
     * A cache mount's directory, held for the RUN by its `sharing`. As in BuildKit, a cache is
     * named by its id and, when it has a base (uid, gid or mode given, or from=), by that base
     * too: the same id with another owner or source is another cache. `heldByRun` has the
     * caches this RUN holds already (the same cache mounted twice is held once).
     */
    const holdCache = async (
      step: Extract<Step, { op: 'run' }>,
      m: Extract<Step, { op: 'run' }>['mounts'][number],
      target: string,
      heldByRun: Map<string, string>,
    ): Promise<{ source: string; release: () => Promise<void> }> => {
      const id = m.id ?? target;
      // A directory inside a cache that other builds' RUNs write at the same time could be
      // swapped for a link between resolving it and mounting it: refused (docs/differences.md).
      if (m.from === undefined && m.source !== undefined) {
        throw new BuildError('BUILD_MOUNT', `${stepWhere(step)}: source= on a cache mount without from= is not supported (mount the cache and use the directory inside it)`);
      }
      const hasBase = m.uid !== undefined || m.gid !== undefined || m.mode !== undefined || m.from !== undefined;
      const base = hasBase
        ? JSON.stringify([m.uid ?? 0, m.gid ?? 0, m.mode ?? 0o755, m.from !== undefined ? stateOfFrom(m.from, platformOf(step.stage)).key : '', m.from !== undefined ? (m.source ?? '/') : ''])
        : '';
      const name = sha(hasBase ? `${id}\0${base}` : id);
      // --no-cache: a new cache for this build, the kept one neither read nor written (Docker 28.5).
      const already = heldByRun.get(name);
      if (already !== undefined) return { source: already, release: async () => undefined };
      let shared: string;
      if (!options.noCache) shared = path.join(await store.privateDir('cache-mounts'), name);
      else {
        shared = noCacheMounts.get(name) ?? path.join(await newRootfs(), 'cache');
        noCacheMounts.set(name, shared);
      }
      const hold = await holdCacheMount(shared, options.noCache ? 'shared' : (m.sharing ?? 'shared'), {
        onWait: () => emit({ type: 'output', id: step.id, stream: 'stderr', text: `waiting for cache mount ${id}: another RUN holds it (sharing=locked)\n` }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      try {
        // sharing=private while another RUN holds the cache: a new one of this RUN's own.
        const dir = hold.dir ?? path.join(await newRootfs(), 'cache');
        if (!(await lstat(dir).catch(() => undefined))) {
          await mkdir(dir, { recursive: true });
          await chmod(dir, m.mode ?? 0o755); // the mode asked for, whatever the umask
          if (m.from !== undefined) {
            const src = await mountSourceRoot(m.from, platformOf(step.stage));
            const { host } = await resolveInRoot(src.root, m.source ?? '/');
            await cp(host, dir, { recursive: true, verbatimSymlinks: true });
          }
          await chown(dir, m.uid ?? 0, m.gid ?? 0);
        }
        heldByRun.set(name, dir);
        return { source: dir, release: hold.release };
      } catch (err) {
        await hold.release();
        throw err;
      }
    };
    const prepareMounts = async (step: Extract<Step, { op: 'run' }>): Promise<{ mounts: SandboxMount[]; env: string[]; cleanup: (() => Promise<void>)[] }> => {
      const mounts: SandboxMount[] = [];
      const env: string[] = [];
      const cleanup: (() => Promise<void>)[] = [];
      let sshMounts = 0;
      const cachesHeld = new Map<string, string>();
      try {
        await addMounts();
      } catch (err) {
        for (const done of cleanup) await done();
        throw err;
      }
      return { mounts, env, cleanup };

      async function addMounts(): Promise<void> {
        for (const m of step.mounts) {
          const target = m.target ? path.posix.resolve(step.state.workdir, m.target) : undefined;
          if (m.type === 'tmpfs') {
            mounts.push({ type: 'tmpfs', target: target as string, ...(m.size ? { size: m.size } : {}) });
          } else if (m.type === 'bind') {
            const src = await mountSourceRoot(m.from, platformOf(step.stage));
            const { host } = await resolveInRoot(src.root, m.source ?? '/');
            if (!(await lstat(host).catch(() => undefined))) throw new BuildError('BUILD_MOUNT', `${stepWhere(step)}: bind mount source "${m.source ?? '/'}" not found`);
            let source = host;
            if (!m.readOnly) {
              // Writes to a read-write bind mount are thrown away, never written back to the source.
              source = path.join(await newRootfs(), 'bind');
              await cp(host, source, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
            }
            mounts.push({ type: 'bind', source, target: target as string, readOnly: m.readOnly });
          } else if (m.type === 'cache') {
            // Ids are keys (hashed into the store), never paths; one that reads as a climbing path
            // is refused all the same, so a Dockerfile cannot mean to reach a directory by it.
            if (m.id !== undefined && m.id.split('/').includes('..')) {
              throw new BuildError('BUILD_MOUNT', `${stepWhere(step)}: cache mount id "${m.id}" has a ".." component`);
            }
            const held = await holdCache(step, m, target as string, cachesHeld);
            cleanup.push(held.release);
            mounts.push({ type: 'bind', source: held.source, target: target as string, readOnly: m.readOnly });
          } else if (m.type === 'secret') {
            const file = options.secrets?.[m.id as string];
            if (file === undefined) {
              if (m.required) throw new BuildError('BUILD_SECRET', `${stepWhere(step)}: secret "${m.id}" is required but was not given (--secret id=${m.id},src=FILE)`);
              continue;
            }
            const bytes = await secretBytes(m.id as string, file);
            if (m.env) env.push(`${m.env}=${bytes.toString('utf8').replace(/\n$/, '')}`);
            if (target) {
              // A copy in the store's private work area with the mount's owner and mode (BuildKit:
              // 0:0 and 0400 unless given), not the caller's file with the caller's.
              const copy = path.join(await newRootfs(), 'secret');
              await writeFile(copy, bytes, { mode: 0o400, flag: 'wx' });
              await chown(copy, m.uid ?? 0, m.gid ?? 0);
              await chmod(copy, m.mode ?? 0o400);
              mounts.push({ type: 'bind', source: copy, target, readOnly: true });
            }
          } else if (m.type === 'ssh') {
            // As BuildKit: /run/buildkit/ssh_agent.<n> unless a target is given, SSH_AUTH_SOCK
            // names the first (unless the RUN's environment has one), an agent not given is
            // skipped unless the mount is required.
            const at = target ?? `/run/buildkit/ssh_agent.${sshMounts}`;
            sshMounts++;
            const id = m.id ?? 'default';
            const agent = options.ssh?.[id];
            if (agent === undefined) {
              if (m.required) throw new BuildError('BUILD_SSH', `${stepWhere(step)}: ssh agent "${id}" is required but was not given (--ssh ${id === 'default' ? 'default' : `${id}=SOCKET`})`);
              continue;
            }
            const forward = await forwardAgent(agent, path.join(await newRootfs(), 'agent.sock'), { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
            cleanup.push(() => forward.close());
            mounts.push({ type: 'bind', source: forward.path, target: at, readOnly: true });
            if (![...env, ...step.runEnv].some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${at}`);
          } else {
            throw new BuildError('BUILD_UNSUPPORTED', `${stepWhere(step)}: RUN --mount=type=${m.type} is not supported yet`);
          }
        }
      }
    };

    /**
     * For a COPY from a stage whose last step was a RUN on an overlay: the capabilities of its
     * files in the upper directory were read for that step's layer, so getfattr only runs for
     * the sources the lower directory supplies (in a build stage's output, mostly none).
     */
    const knownCaps = async (s: StageState, root: string | undefined): Promise<Pick<CopyOptions, 'knownXattrs'>> => {
      const upper = root !== undefined && s.rootfs === root ? uppers.get(root) : undefined;
      const caps = upper ? await s.upperCaps?.catch(() => undefined) : undefined;
      if (!upper || !caps) return {};
      const prefix = `${root}/`;
      return {
        knownXattrs: (src) => {
          if (!src.startsWith(prefix)) return undefined;
          const rel = src.slice(prefix.length);
          // A regular file in the upper directory is the one the merged view shows.
          return lstatSync(path.join(upper, rel), { throwIfNoEntry: false })?.isFile() ? (caps.get(rel) ?? new Map()) : undefined;
        },
      };
    };

    /** Said once, at the first RUN: the isolation RUN gets when it is weaker than a container, or was chosen by probing. */
    let isolationNotice: Promise<void> | undefined;
    let sandboxWarmed = false;
    const hasRun = plan.stages.some((st) => st.steps.some((x) => x.op === 'run'));
    let targetState: StageState | undefined;
    for (const stage of plan.stages) {
      const state = startStage(stage, finished, stateOfImage);
      states.push(state);
      // The base's ONBUILD triggers ran as this stage's first steps (the plan has them): they
      // are not passed on, as in BuildKit.
      if (state.config.config?.OnBuild) delete state.config.config.OnBuild;
      // An image without PATH gets the default one, in its config too (as BuildKit does).
      const env = state.config.config?.Env ?? [];
      if (!env.some((e) => e.startsWith('PATH='))) {
        state.config.config = { ...(state.config.config ?? {}), Env: [`PATH=${DEFAULT_PATH}`, ...env] };
      }
      let current: Step | undefined;
      try {
        for (const step of stage.steps) {
          current = step;
          options.signal?.throwIfAborted();
          // As BuildKit shows it: an ONBUILD trigger says so.
          const name = `${step.position} ${(step as { onbuild?: boolean }).onbuild ? 'ONBUILD ' : ''}${step.original.replace(/\s+/g, ' ').trim()}`;
          const started = Date.now();
          const text = createdBy(step);
          const history: HistoryEntry = { created, ...(text !== undefined ? { created_by: text } : {}), comment: HISTORY_COMMENT };
          if (step.op === 'arg' || (step.op !== 'workdir' && applyConfigStep(state.config, step, state.configState))) {
            if (text !== undefined) state.config.history = [...(state.config.history ?? []), { ...history, created: dated(state.config), empty_layer: true }];
            if (step.op !== 'arg') emit({ type: 'step', id: step.id, name, status: 'done', seconds: 0 });
            continue;
          }
          emit({ type: 'step', id: step.id, name, status: 'start' });
          // The steps that may change the filesystem: RUN, COPY/ADD, WORKDIR (it creates a missing directory).
          let extra = '';
          let sourceRoot: string | undefined;
          let items: Awaited<ReturnType<typeof resolveSources>> | undefined;
          let sourceIgnore: IgnoreFilter = () => false;
          const fromState =
            step.op !== 'copy' || step.source.type === 'context'
              ? undefined
              : step.source.type === 'stage'
                ? (finished.get(step.source.stage) as StageState)
                : stateOfImage(step.source.ref, stage.platform);
          const collectSources = async (copy: Extract<Step, { op: 'copy' }>): Promise<void> => {
            if (copy.source.type === 'context') {
              // The build context, or a named context's directory (with its own .dockerignore).
              const dir = copy.source.name !== undefined ? namedDir(copy.source.name) : undefined;
              sourceRoot = dir?.root ?? options.context;
              sourceIgnore = dir?.ignore ?? ignore;
            } else {
              sourceRoot = await materialise(fromState as StageState);
            }
            // --exclude leaves out what is under a source (its patterns start there), never a source named itself.
            if (copy.exclude.length > 0) {
              const excluded = await excludeFilter(copy.exclude);
              const base = sourceIgnore;
              sourceIgnore = (rel, item) => base(rel) || (item !== undefined && excluded(item === '' ? rel : rel.slice(item.length + 1)));
            }
            // A scratch directory for here-documents and downloads, made only when one is needed.
            let special: Promise<string> | undefined;
            const scratch = async (sub: string): Promise<string> => path.join(await (special ??= newRootfs()), sub);
            const inline = copy.inline.length > 0 ? await inlineSources(await scratch('inline'), copy.inline) : new Map<string, SourceItem>();
            items = [];
            for (const src of copy.sources) {
              const docName = heredocRefName(src, new Set(inline.keys()));
              const doc = docName !== undefined ? inline.get(docName) : undefined;
              const git = copy.kind === 'ADD' && !doc ? parseGitRef(src) : undefined;
              if (doc) items.push(doc);
              else if (git) items.push(await cloneSource(await scratch('git'), git, gitOptions(git, copy), stepWhere(copy)));
              else if (copy.kind === 'ADD' && isUrl(src)) items.push(await downloadSource(await scratch('url'), src, copy.checksum, stepWhere(copy)));
              else {
                const found = await resolveSources(sourceRoot, [src], sourceIgnore, stepWhere(copy), copy.source.type === 'context', copy.parents);
                // --parents: each keeps its path from the source root, or from the last `./` of its source (the pivot).
                if (copy.parents) for (const item of found) item.parentPath = parentPathOf(src, item.rel);
                items.push(...found);
              }
            }
          };
          if (step.op === 'copy') {
            if (fromState) {
              extra = layersOf(fromState);
            } else {
              await collectSources(step);
              extra = await checksumSources(items ?? [], sourceIgnore, step.source.type === 'context' && step.source.name === undefined ? contextStats : undefined);
            }
          }
          if (step.op === 'run') {
            // Bind mounts are inputs of the RUN: their content is in the key (cache mounts and secrets are not).
            for (const m of step.mounts) {
              if (m.type !== 'bind') continue;
              if (m.from !== undefined) {
                extra += `${layersOf(stateOfFrom(m.from, platformOf(step.stage)))}:${m.source ?? '/'}`;
                continue;
              }
              const src = await mountSourceRoot(m.from, platformOf(step.stage));
              const items2 = await resolveSources(src.root, [m.source ?? '/'], src.ignore, stepWhere(step), src.context);
              extra += await checksumSources(items2, src.ignore, src.context ? contextStats : undefined);
            }
          }
          const hostname = step.op === 'run' ? options.buildArgs?.BUILDKIT_SANDBOX_HOSTNAME : undefined;
          // What a RUN is run with beyond its instruction, as BuildKit keys its exec op's meta.
          const meta =
            step.op === 'run'
              ? {
                  ...(options.extraHosts?.length ? { hosts: options.extraHosts } : {}),
                  ...(options.shmSize !== undefined ? { shm: options.shmSize } : {}),
                  ...(options.ulimits?.length ? { ulimits: options.ulimits } : {}),
                }
              : {};
          const keyInput = JSON.stringify({ parent: state.key, platform: stage.platform, step: layerKeyFields(step), extra, ...(hostname ? { hostname } : {}), ...meta });
          const key = sha(keyInput);
          const hit = options.noCache || uncachedStages.has(stage.index) ? undefined : await cache.get(key);
          if (hit) {
            if (hit.layer) {
              // The step's snapshot, when kept: mounted when needed, nothing unpacked.
              const kept =
                state.view && overlayWanted()
                  ? await snapshots.open(key, chainName([...state.layers, hit.layer].map((l) => l.diffId)), baseOf(state).chain, state.layers.length + 1)
                  : undefined;
              if (kept && (await seal(state))) {
                state.view = kept;
                delete state.viewIndex;
                delete state.from;
              }
              state.layers.push(hit.layer);
              state.layerKey = key;
              if (state.rootfs) {
                charge(state.rootfs, (await applyLayer(state.rootfs, openLayer(hit.layer), { what: `layer ${hit.layer.digest}` })).bytes);
                stats.layersApplied++;
                delete state.snapshot;
                delete state.upperCaps;
              }
            }
            // Dated when the step ran, as BuildKit dates a cached layer: a rebuild that changes nothing is the same image.
            const then = { ...history, created: fixedTime ? created : hit.created };
            state.config.history = [...(state.config.history ?? []), hit.layer ? then : { ...then, empty_layer: true }];
            if (step.op === 'workdir') state.config.config = { ...(state.config.config ?? {}), WorkingDir: step.path };
            state.key = key;
            emit({ type: 'step', id: step.id, name, status: 'cached' });
            continue;
          }
          let layer: LayerRef | null = null;
          /** The step made no file with capabilities (a COPY of files that had none). */
          let capsKnownNone = false;
          try {
            trace(`step ${step.id}: start`);
            // The first step that does work: the sandbox gets ready meanwhile, when a RUN is to come.
            if (!sandboxWarmed && hasRun) {
              sandboxWarmed = true;
              prewarmSandbox({ ...(options.isolation ? { isolation: options.isolation } : {}), ...(options.network ? { network: options.network } : {}) });
            }
            if (!aheadOf.has(stage.index)) {
              aheadOf.add(stage.index);
              mountAhead(stage.index);
            }
            // The overlay's upper directory becomes the last step's snapshot; this step gets a new one.
            if (state.live && state.layers.length > state.live.view.covered) await seal(state);
            const rootfs = await materialise(state);
            delete state.upperCaps; // this step changes the rootfs
            trace(`step ${step.id}: rootfs ready`);
            const before = state.snapshot ?? (stats.walks++, await snapshot(rootfs));
            trace(`step ${step.id}: snapshot before`);
            if (step.op === 'run') {
              isolationNotice ??= noticeIsolation(options, emit);
              await isolationNotice;
              // The run's work directory is a temp entry of the store, so a killed build's is cleaned by the next command.
              const prepared = await prepareMounts(step);
              try {
                await runStep(step, rootfs, options, emit, prepared, store.tempPath('run'));
              } finally {
                for (const done of prepared.cleanup) await done();
              }
            } else if (step.op === 'copy') {
              if (!items) await collectSources(step);
              const owner = step.chown !== undefined ? await resolveUser(rootfs, step.chown) : step.source.type === 'context' ? { uid: 0, gid: 0 } : undefined;
              const mode = step.chmod !== undefined ? parseChmod(step.chmod) : undefined;
              const dest = path.posix.resolve(step.state.workdir, step.dest) + (step.dest.endsWith('/') || step.dest.endsWith('/.') ? '/' : '');
              // ADD unpacks local archives unless --unpack=false, and one from a URL with --unpack=true (BuildKit 28).
              const archives = step.kind === 'ADD' && step.unpack !== false ? await archivesAmong(items ?? [], step.unpack === true) : new Set<string>();
              for (const item of items ?? []) {
                if (!archives.has(item.host)) continue;
                // Made with --chown's owner where missing, as BuildKit's unpack makes it.
                const target = await ensureDir(rootfs, dest.endsWith('/') ? dest : dest + '/', step.chown !== undefined ? owner : undefined);
                const what = `${stepWhere(step)}: ${item.rel}`;
                const { stream } = await decompress(openFile(item.host), what);
                // --chown owns what the archive holds (BuildKit); --chmod does not apply to it.
                await applyLayer(target.host, stream, { what, ...(step.chown !== undefined && owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}) });
              }
              items = (items ?? []).filter((i) => !archives.has(i.host));
              // A copy of files without capabilities makes a layer without them: no need to read them back.
              if (archives.size === 0) capsKnownNone = true;
              const copyOptions: CopyOptions = {
                ...(owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}),
                ...(mode !== undefined ? { mode } : {}),
                ignore: sourceIgnore,
                what: stepWhere(step),
                ...(step.source.type === 'context' && step.source.name === undefined && contextStats ? { stats: contextStats } : {}),
                ...(fromState ? await knownCaps(fromState, sourceRoot) : {}),
              };
              // With --parents each source goes to its own place under the destination (a directory).
              const groups = step.parents
                ? items.map((item) => ({ items: [item], to: path.posix.join(dest, item.parentPath ?? item.rel) + (item.isDir ? '/' : '') }))
                : items.length > 0 ? [{ items, to: dest }] : [];
              for (const group of groups) capsKnownNone &&= (await copyInto(rootfs, group.items, group.to, copyOptions)).capabilities === 0;
              // --parents makes its destination even when its patterns matched nothing (BuildKit).
              if (step.parents && groups.length === 0) await ensureDir(rootfs, dest.endsWith('/') ? dest : `${dest}/`, step.chown !== undefined ? owner : undefined);
            } else if (step.op === 'workdir') {
              // Every level it makes is the USER's, as BuildKit's mkdir with parents makes them.
              const ids = step.state.user ? await resolveUser(rootfs, step.state.user).catch(() => undefined) : undefined;
              await ensureDir(rootfs, step.path, ids);
              state.config.config = { ...(state.config.config ?? {}), WorkingDir: step.path };
            }
            trace(`step ${step.id}: ${step.op} done`);
            const upper = uppers.get(rootfs);
            // After a RUN on an overlay, what it may have set capabilities on is all in the upper
            // directory: read them there meanwhile, while the snapshot below keeps this thread busy.
            const upperCaps = upper && step.op === 'run' ? readXattrsTree(upper) : undefined;
            upperCaps?.catch(() => undefined); // awaited below, or not needed
            if (upperCaps) state.upperCaps = upperCaps;
            const touched = upper ? new Set<string>() : undefined;
            const after = upper ? snapshotUpper(rootfs, upper, before, touched) : await snapshot(rootfs);
            trace(`step ${step.id}: snapshot after`);
            const changes = diff(before, after, { overlay: upper !== undefined, ...(touched ? { touched } : {}) });
            state.snapshot = after;
            trace(`step ${step.id}: diff (${changes.length} changes)`);
            if (changes.length > 0) {
              const xattrs = capsKnownNone
                ? new Map<string, Map<string, Buffer>>()
                : upperCaps
                  ? layerFilesOnly(await upperCaps, after, changes)
                  : await layerXattrs(rootfs, after, changes);
              trace(`step ${step.id}: xattrs`);
              const blob = await store.writeWith((out) =>
                writeLayer(new TarWriter(out), rootfs, after, changes, {
                  ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}),
                  xattrs,
                }),
              );
              layer = { digest: blob.digest, size: blob.size, diffId: blob.digest, mediaType: MediaType.ociLayer };
              charge(rootfs, blob.size);
              trace(`step ${step.id}: layer stored`);
              state.layers.push(layer);
              state.layerKey = key;
            }
            state.config.history = [...(state.config.history ?? []), layer ? history : { ...history, empty_layer: true }];
            await cache.put(key, { layer, created });
          } catch (err) {
            throw atStep(step, err);
          }
          state.key = key;
          emit({ type: 'step', id: step.id, name, status: 'done', seconds: (Date.now() - started) / 1000 });
        }
      } catch (err) {
        // Whatever a step's inputs made fail (its sources, its mounts), said at its line.
        throw current ? atStep(current, err) : err;
      }
      finished.set(stage.index, state);
      targetState = state;
    }
    const final = targetState as StageState;
    if (options.labels && Object.keys(options.labels).length > 0) {
      // As BuildKit: the command line's labels go on the image's config, with no history entry.
      final.config.config = { ...(final.config.config ?? {}), Labels: { ...(final.config.config?.Labels ?? {}), ...options.labels } };
    }
    const config: ImageConfig = {
      ...final.config,
      created: dated(final.config),
      architecture: parsePlatform(plan.target.platform).architecture,
      os: parsePlatform(plan.target.platform).os,
      rootfs: { type: 'layers', diff_ids: final.layers.map((l) => l.diffId) },
    };
    const variant = parsePlatform(plan.target.platform).variant;
    if (variant) config.variant = variant;
    else delete config.variant;
    trace('steps done');
    // The image is made of stored blobs: the overlays are detached (each kept as its last step's
    // snapshot) while it is written.
    succeeded = true;
    unmounting = sealAll();
    const annotations = options.annotations && Object.keys(options.annotations).length > 0 ? options.annotations : undefined;
    const descriptor = await writeImage(store, { config, layers: final.layers, ...(annotations ? { annotations } : {}) });
    crashPoint('commit');
    const tags = (options.tags ?? []).map((t) => formatReference(normalizeReference(t)));
    for (const t of tags) await store.tag(t, descriptor);
    if (tags.length === 0) await store.addUntagged(descriptor);
    const image = await loadImage(store, descriptor);
    trace('image written');
    await unmounting;
    emit({ type: 'image', digest: descriptor.digest, configDigest: image.configDigest, tags });
    return { digest: descriptor.digest, configDigest: image.configDigest, descriptor, tags, plan };
  } finally {
    await named?.cleanup();
    await contextStats?.save();
    await unmounting;
    await Promise.allSettled(ahead.values()); // one still being mounted is in `mounted` once it is
    await unmount(...mounted.reverse());
    trace('unmounted');
    // Scratch trees go to the trash (a rename each), removed in bulk once it is over budget.
    for (const t of temps) await discard(store, t, tempBytes.get(t) ?? 0);
    await collectTrash(store).catch(() => undefined);
    trace('temps discarded');
    // Snapshots over the budget go, the least recently used first (not those this build leased).
    if (succeeded) await snapshots.collect({ budget: storeBudget(store.root) }).catch((err: unknown) => trace(`snapshots not collected: ${(err as Error).message}`));
    if (process.env.GANTRY_STATS_OUT) writeFileSync(process.env.GANTRY_STATS_OUT, JSON.stringify(stats));
    await store.releaseLease();
    trace('lease released');
  }
}

/**
 * BuildKit's InvalidBaseImagePlatform warning: a stage's base came for another platform than the
 * stage's (an image with no variant for it). The build goes on, as BuildKit's does, and the
 * image is labelled with the stage's platform; the warning says so.
 */
function warnPlatformMismatch(plan: BuildPlan, imageOf: (ref: string, platform: string) => Image | undefined): void {
  for (const st of plan.stages) {
    if (st.base.type !== 'image') continue;
    const config = imageOf(st.base.ref, st.platform)?.config;
    if (!config?.architecture || !config.os) continue;
    const want = parsePlatform(st.platform);
    if (config.os === want.os && config.architecture === want.architecture && (!config.variant || !want.variant || config.variant === want.variant)) continue;
    const got = formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
    const expected = formatPlatform(want);
    plan.warnings.push({
      rule: 'InvalidBaseImagePlatform',
      message: `Base image ${st.base.ref} was pulled with platform "${got}", expected "${expected}" for current build`,
      location: st.location,
    });
  }
}

/**
 * A store, rootfs or sandbox error during a step, prefixed with the step's Dockerfile line; a
 * system error (ENOTDIR, EACCES… on what the Dockerfile named) becomes a BuildError that says
 * where, not an internal error.
 */
function atStep(step: Step, err: unknown): unknown {
  const where = `${step.location.file}:${step.location.line}:`;
  if (err instanceof GantryError && !(err instanceof DockerfileError) && !err.message.startsWith(where)) {
    err.message = `${stepWhere(step)}: ${err.message}`;
  }
  if (!(err instanceof GantryError) && err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall) {
    return new BuildError('BUILD_STEP_IO', `${stepWhere(step)}: ${err.message}`, { cause: err });
  }
  return err;
}

function stepWhere(step: Step): string {
  const l = step.location;
  return `${l.file}:${l.line}: ${step.original.replace(/\s+/g, ' ').trim().split(' ')[0]}`;
}

/** What of a step decides its layer (not its position, text or id). */
function layerKeyFields(step: Step): unknown {
  // ADD's --checksum only verifies what is fetched: the content is in the key, not the flag (as BuildKit).
  const { id: _id, position: _p, original: _o, location: _l, onbuild: _b, checksum: _c, state, ...rest } = step as Step & { onbuild?: boolean; checksum?: string };
  if (step.op === 'run') {
    const { proxyEnv: _proxy, ...run } = rest as Extract<Step, { op: 'run' }>;
    return { ...run, user: state.user, workdir: state.workdir, shell: state.shell };
  }
  return { ...rest, user: state.user, workdir: state.workdir };
}

function startStage(stage: PlannedStage, finished: Map<number, StageState>, stateOfImage: (ref: string, platform: string) => StageState): StageState {
  const base = stage.base;
  if (base.type === 'stage') {
    const parent = finished.get(base.stage) as StageState;
    return {
      config: structuredClone(parent.config),
      layers: [...parent.layers],
      key: parent.key,
      baseLayers: parent.baseLayers,
      configState: { cmdSet: false },
      // The parent's rootfs stays the parent's: this stage mounts the parent's snapshot when it needs a rootfs.
      ...(parent.view ? { view: parent.view, from: parent } : {}),
      ...(parent.viewIndex ? { viewIndex: parent.viewIndex } : {}),
      ...(parent.layerKey ? { layerKey: parent.layerKey } : {}),
    };
  }
  if (base.type === 'image') {
    const s = stateOfImage(base.ref, stage.platform);
    return { config: structuredClone(s.config), layers: [...s.layers], key: s.key, baseLayers: s.baseLayers, configState: { cmdSet: false }, view: { snapshots: [], covered: s.baseLayers } };
  }
  const p = parsePlatform(stage.platform);
  return {
    // BuildKit's empty image: WorkingDir "/" (a FROM scratch image says so in its config).
    config: { architecture: p.architecture, os: p.os, config: { WorkingDir: '/' }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
    layers: [],
    key: sha(`scratch:${stage.platform}`),
    baseLayers: 0,
    configState: { cmdSet: false },
    view: { snapshots: [], covered: 0 },
  };
}

/** The indexes of the stages `names` name (--no-cache-filter); a name no stage has is an error. */
function stagesNamed(plan: BuildPlan, names: string[]): Set<number> {
  const out = new Set<number>();
  for (const n of names) {
    const found = plan.stages.find((st) => st.name?.toLowerCase() === n.toLowerCase());
    if (found) out.add(found.index);
    else if (!plan.skippedStages.some((s) => s.name?.toLowerCase() === n.toLowerCase())) throw new BuildError('BUILD_NO_CACHE_FILTER', `--no-cache-filter: the Dockerfile has no stage named "${n}"`);
  }
  return out;
}

/** The images a plan needs, by key (imageKey), each for the platform of the stage that uses it (FROM --platform). */
function imagesWanted(plan: BuildPlan): Map<string, { ref: string; platform: string; where?: string }> {
  const wanted = new Map<string, { ref: string; platform: string; where?: string }>();
  const want = (ref: string, platform: string, where?: SourceLocation) => {
    const key = imageKey(ref, platform);
    if (!wanted.has(key)) wanted.set(key, { ref, platform, ...(where ? { where: `${where.file}:${where.line}` } : {}) });
  };
  for (const st of plan.stages) {
    if (st.base.type === 'image') want(st.base.ref, st.platform, st.location);
    for (const step of st.steps) {
      if (step.op === 'copy' && step.source.type === 'image') want(step.source.ref, st.platform, step.location);
      if (step.op === 'run') for (const m of step.mounts) if (m.from !== undefined && !/^\d+$/.test(m.from)) want(m.from, st.platform, step.location);
    }
  }
  for (const ref of plan.images) if (![...wanted.values()].some((w) => w.ref === ref)) want(ref, plan.platform);
  return wanted;
}

/** What the planner reads of a base image: its config's env, workdir, user, shell, triggers. */
function baseImageInfo(image: Image): BaseImageInfo {
  const c = image.config.config ?? {};
  return {
    ...(c.Env ? { env: c.Env } : {}),
    ...(c.WorkingDir ? { workingDir: c.WorkingDir } : {}),
    ...(c.User ? { user: c.User } : {}),
    ...(c.Shell ? { shell: c.Shell } : {}),
    ...(c.OnBuild ? { onBuild: c.OnBuild } : {}),
  };
}

/** A secret's value: its file's bytes, or its environment variable's (never on a command line). */
async function secretBytes(id: string, source: string | { env: string }): Promise<Buffer> {
  if (typeof source === 'string') {
    return readFile(source).catch((err: NodeJS.ErrnoException) => {
      throw new OptionError('SECRET_INVALID', `secret "${id}": cannot read ${source}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
  }
  const value = process.env[source.env];
  if (value === undefined) throw new OptionError('SECRET_INVALID', `secret "${id}": the environment variable ${source.env} is not set`);
  return Buffer.from(value);
}

/**
 * The xattrs a layer records for its files (security.capability, as BuildKit): a RUN's
 * `setcap` survives. Relative path → name → value.
 */
async function layerXattrs(rootfs: string, after: Snapshot, changes: { path: string; kind: string }[]): Promise<Map<string, Map<string, Buffer>>> {
  const files = changes.filter((c) => c.kind === 'add' && after.get(c.path)?.type === 'file').map((c) => c.path);
  const found = await readXattrs(files.map((p) => path.resolve(rootfs, p)));
  const out = new Map<string, Map<string, Buffer>>();
  const prefix = path.resolve(rootfs) + '/';
  for (const [host, x] of found) if (host.startsWith(prefix)) out.set(host.slice(prefix.length), x);
  return out;
}

/** Of attributes read by relative path, those of the files the layer adds. */
function layerFilesOnly(found: Map<string, Map<string, Buffer>>, after: Snapshot, changes: { path: string; kind: string }[]): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  for (const c of changes) {
    const x = found.get(c.path);
    if (x && c.kind === 'add' && after.get(c.path)?.type === 'file') out.set(c.path, x);
  }
  return out;
}

/**
 * Store a step's layer uncompressed: its digest is its diff ID, and no time goes to gzip here.
 * It is compressed when it leaves the store (push, OCI output: store/compress.ts).
 */

async function runStep(
  step: Extract<Step, { op: 'run' }>,
  rootfs: string,
  options: ExecuteOptions,
  emit: (e: ProgressEvent) => void,
  extra: { mounts: SandboxMount[]; env: string[] },
  workDir: string,
): Promise<void> {
  const { argv, pipes } = runCommand(step);
  if (argv.length === 0) throw new BuildError('BUILD_RUN', `${stepWhere(step)}: nothing to run`);
  const ids = await resolveUser(rootfs, step.state.user || '0', 'run');
  const tail: string[] = [];
  const keep = (s: string) => {
    tail.push(...s.split('\n'));
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  const r = await runInSandbox({
    rootfs,
    argv,
    ...(pipes.length > 0 ? { pipes } : {}),
    env: [...step.runEnv, ...step.proxyEnv, ...extra.env],
    mounts: extra.mounts,
    cwd: step.state.workdir,
    uid: ids.uid,
    gid: ids.gid,
    groups: ids.groups,
    network: runNetwork(step, options),
    // BuildKit's build argument for the RUN's host name.
    ...(options.buildArgs?.BUILDKIT_SANDBOX_HOSTNAME ? { hostname: options.buildArgs.BUILDKIT_SANDBOX_HOSTNAME } : {}),
    ...(options.isolation ? { isolation: options.isolation } : {}),
    ...(options.seccomp ? { seccomp: options.seccomp } : {}),
    ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
    ...(options.shmSize !== undefined ? { shmSize: options.shmSize } : {}),
    ...(options.ulimits?.length ? { ulimits: options.ulimits } : {}),
    workDir,
    ...(options.signal ? { signal: options.signal } : {}),
    onStdout: (d) => {
      keep(d.toString());
      emit({ type: 'output', id: step.id, stream: 'stdout', text: d.toString() });
    },
    onStderr: (d) => {
      keep(d.toString());
      emit({ type: 'output', id: step.id, stream: 'stderr', text: d.toString() });
    },
  });
  if (r.exitCode !== 0) {
    const last = tail.filter((l) => l !== '').slice(-10).map((l) => `  ${l}`).join('\n');
    throw new BuildError(
      'BUILD_RUN_FAILED',
      `${step.location.file}:${step.location.line}: step ${step.position} RUN ${argv.slice(step.command.form === 'shell' ? step.state.shell.length : 0).join(' ')} failed with exit code ${r.exitCode}${last ? `\n${last}` : ''}`,
    );
  }
}

/** The network a RUN gets: its own `--network`, else the build's. */
function runNetwork(step: Extract<Step, { op: 'run' }>, options: BuildSettings): 'default' | 'none' | 'host' {
  return step.network !== 'default' ? step.network : (options.network ?? 'default');
}

/**
 * The entitlements the plan's RUNs need, checked before any step runs: host networking only with
 * `--allow network.host`; `--security=insecure` never (BuildKit runs it with every capability and
 * no seccomp under the security.insecure entitlement, which gantry does not grant, and it is
 * never run sandboxed as if it were).
 */
function checkEntitlements(plan: BuildPlan, options: BuildSettings): void {
  for (const step of plan.stages.flatMap((st) => st.steps)) {
    if (step.op !== 'run') continue;
    if (step.security === 'insecure') {
      throw new BuildError('BUILD_ENTITLEMENT', `${stepWhere(step)}: RUN --security=insecure needs the security.insecure entitlement, which gantry does not grant`);
    }
    if (runNetwork(step, options) === 'host' && !(options.allow ?? []).includes('network.host')) {
      throw new BuildError(
        'BUILD_ENTITLEMENT',
        `${stepWhere(step)}: ${step.network === 'host' ? 'RUN --network=host' : '--network host'} needs the network.host entitlement: pass --allow network.host to let RUN reach the host's network`,
      );
    }
  }
}

/** A notice of the isolation RUN gets, once per build, when it is the chroot one (weaker than a container). */
async function noticeIsolation(options: ExecuteOptions, emit: (e: ProgressEvent) => void): Promise<void> {
  const mode = await chooseIsolation(options.isolation);
  if (mode !== 'chroot') return;
  const why = (options.isolation ?? 'auto') === 'auto' ? ` (${(await probeIsolation()).reason})` : '';
  emit({ type: 'notice', text: `RUN uses the chroot isolation${why}: no namespaces of its own, weaker than a container (docs/security.md)` });
}

/**
 * Where `COPY --parents` puts a source found at `rel` (relative to the source root) from the
 * source text `src`: its whole path, or, when `src` has a `/./` pivot, what follows the first
 * one (BuildKit: `/a/./b/./c` keeps `b/c`; the part before may hold wildcards, `/a/b*` then
 * stands for as many components). A `.` at either end is no pivot.
 */
function parentPathOf(src: string, rel: string): string {
  const parts = src.split('/').filter((p) => p !== '');
  const pivot = parts.findIndex((p, i) => p === '.' && i > 0 && i < parts.length - 1);
  if (pivot < 0) return rel;
  const before = parts.slice(0, pivot).filter((p) => p !== '.');
  // How many components the part before the pivot stands for must be plain to count.
  if (before.some((p) => p === '..' || p === '**')) {
    throw new GantryError('COPY_PARENTS', `COPY --parents ${src}: ".." or "**" before the ./ pivot is not supported`);
  }
  const skip = before.length;
  const relParts = rel.split('/');
  return relParts.length > skip ? relParts.slice(skip).join('/') : rel;
}

/** `--exclude` patterns, with .dockerignore's matching rules, for a path relative to the source it is under. */
async function excludeFilter(patterns: string[]): Promise<(rel: string) => boolean> {
  const ignores = ignoreMatcher(patterns);
  return (rel: string) => rel !== '' && ignores(rel);
}

/** Local files (not from a URL or a heredoc) among ADD's sources that are tar archives. */
async function archivesAmong(items: { host: string; isDir: boolean; origin?: string }[], downloaded: boolean): Promise<Set<string>> {
  const out = new Set<string>();
  for (const item of items) {
    if (item.isDir || item.origin === 'inline' || (item.origin === 'url' && !downloaded)) continue;
    if (await isArchive(item.host).catch(() => false)) out.add(item.host);
  }
  return out;
}

