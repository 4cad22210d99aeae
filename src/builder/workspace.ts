/**
 * A build's workspace: the only owner of its root filesystems and of everything they are made
 * of. It extracts base chains once into the store (`rootfs/<chain>`), mounts overlays on them
 * with step snapshots stacked between (store/snapshots.ts), keeps a step's overlay as its
 * snapshot before the next step runs, unpacks cached layers where no snapshot shows them (or
 * where overlays cannot be used: a plain tree), makes the temp entries a step needs (a cache
 * mount of a --no-cache build, a secret's copy, a scratch directory), and when the build ends
 * unmounts, sets the temp trees aside in the store's trash and collects what is over budget.
 *
 * A rootfs is made lazily, when a step runs or a stage is read: a build whose every step is
 * cached mounts and unpacks nothing.
 */
import { createHash } from 'node:crypto';
import { lstat, mkdir, rename, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { trace } from '../support/process.js';
import type { BlobSource } from '../image/image.js';
import { parseDigest } from '../oci/digest.js';
import { layerCompression } from '../oci/media-types.js';
import type { BuildPlan } from '../plan/planner.js';
import { applyLayer } from '../rootfs/apply.js';
import { kernelCalls } from '../rootfs/kernel.js';
import { mountOverlay, overlayWanted, unmount, unmountUnder } from '../rootfs/overlay.js';
import { killRootedIn } from '../rootfs/processes.js';
import { indexChange, lowerIndex, snapshot, type Snapshot } from '../snapshot/diff.js';
import { loadSnapshot, saveSnapshot } from '../snapshot/persist.js';
import { collectBuildCache } from '../store/cache.js';
import { SNAPSHOT_DEPTH, Snapshots, storeBudget, type View } from '../store/snapshots.js';
import type { Store } from '../store/store.js';
import { collectTrash, discard } from '../store/trash.js';
import { setTreeReleaser } from '../store/trash.js';
import { layerTar } from '../tar/decompress.js';
import { BuildError } from './errors.js';
import { baseOf, chainOf, type LayerRef, type StageState } from './state.js';
import { settings } from '../support/settings.js';

/**
 * How the store makes a build's tree safe to remove (store/trash.ts): the processes a chroot RUN
 * left rooted in it killed (they have no namespace that died with their gantry), then every
 * mount below it detached.
 */
export async function releaseTree(dir: string): Promise<void> {
  killRootedIn(dir);
  await unmountUnder(dir);
}
setTreeReleaser(releaseTree);

/** What a build did to its file systems, for the tests that count it (GANTRY_STATS_OUT names a file). */
export interface BuildStats {
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
  /** Snapshots looked up for cache hits (a build whose steps all hit looks none up). */
  snapshotsLookedUp: number;
  /** Layers written by the steps that ran. */
  layersWritten: number;
  /** Steps that ran whose change was kept only as a snapshot (their stage's layers do not leave the build). */
  keptOnly: number;
  /** Calls this process made through the kernel helper (rootfs/kernel.ts), builds before this one included. */
  kernelCalls?: number;
}

export class Workspace {
  /** Filesystem steps run (not cache hits): what may have grown the store. */
  private stepsRun = 0;
  readonly stats: BuildStats = { layersApplied: 0, chainsExtracted: 0, snapshotsMounted: 0, snapshotsCommitted: 0, walks: 0, snapshotsLookedUp: 0, layersWritten: 0, keptOnly: 0 };
  private readonly snapshots: Snapshots;
  /** Every state whose rootfs this workspace made or may make, for the snapshots kept when the build ends. */
  private readonly states: StageState[] = [];
  private readonly temps: string[] = [];
  /** What each temp tree is estimated to hold (the layers applied and written there), for the trash's budget. */
  private readonly tempBytes = new Map<string, number>();
  /** The temp tree each build rootfs lives in (an overlay's merged directory is inside it). */
  private readonly tempOf = new Map<string, string>();
  /** Overlay mounts of this build, unmounted before its temp entries go. */
  private readonly mounted: string[] = [];
  /** Overlays mounted ahead for stages still to come (see mountAhead), by chain: one each. */
  private readonly ahead = new Map<string, Promise<{ dir: string; merged: string | undefined }>>();
  /** The stages whose first step run has mounted ahead for the stages reading from them. */
  private readonly aheadOf = new Set<number>();
  /** Each overlay's upper directory, by its merged directory (a build rootfs). */
  private readonly uppers = new Map<string, string>();
  /** One extraction per chain in this build, however many stages (or mounts ahead) ask. */
  private readonly extracting = new Map<string, Promise<string>>();
  /** What was last asked of each state (serial): its turn ends when that is done. */
  private readonly turns = new WeakMap<StageState, Promise<unknown>>();
  /** The overlays' release when the build has succeeded (each kept as its last step's snapshot). */
  private releasing: Promise<void> | undefined;
  /** Layers an imported cache gave that the store may lack, by digest and diff ID: their bytes, and what to do once they are checked. */
  private readonly fromCache = new Map<string, { blob: BlobSource; from: string; then: (() => void)[] }>();
  /** Those being fetched and checked, and those checked, by digest and diff ID. */
  private readonly fetching = new Map<string, Promise<void>>();
  private readonly verified = new Set<string>();

  private constructor(private readonly store: Store) {
    this.snapshots = new Snapshots(store);
  }

  /** A workspace in `store`; a budget variable that is not a size stops the build here, not silently at its end. */
  static open(store: Store): Workspace {
    void settings.trashBudget;
    storeBudget(store.root);
    return new Workspace(store);
  }

  /** Note a state whose rootfs this workspace may make. */
  track(s: StageState): StageState {
    this.states.push(s);
    return s;
  }

  /** A new temp entry of the store (a directory), set aside when the build ends. */
  async newTemp(): Promise<string> {
    const dir = this.store.tempPath('rootfs');
    this.temps.push(dir);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return dir;
  }

  /** Count `bytes` against the temp tree `root` is in (the trash's estimate of what it holds). */
  charge(root: string, bytes: number): void {
    const t = this.tempOf.get(root) ?? root;
    this.tempBytes.set(t, (this.tempBytes.get(t) ?? 0) + bytes);
  }

  /** Whether `s`'s overlay was mounted for the step about to run: its upper directory holds no earlier layer. */
  freshUpper(s: StageState): boolean {
    return s.live !== undefined && s.live.view.covered === s.layers.length;
  }

  /** The upper directory of the overlay `root` is, when it is one. */
  upperOf(root: string): string | undefined {
    return this.uppers.get(root);
  }

  /**
   * A layer an imported cache (`--cache-from`, named `from`) gave: fetched from `blob` when the
   * build first needs its bytes (`ensureLayer`), if the store lacks it; `then` runs once it is
   * stored and its tar is the diff ID the cache says (at once if it was checked already).
   */
  layerFromCache(l: LayerRef, blob: BlobSource, from: string, then: () => void): void {
    const id = `${l.digest} ${l.diffId}`;
    if (this.verified.has(id)) return then();
    const known = this.fromCache.get(id);
    if (known) known.then.push(then);
    else this.fromCache.set(id, { blob, from, then: [then] });
  }

  /**
   * Make sure the store has layer `l`: one an imported cache gave is fetched now (verified
   * against its digest as it streams), and its tar checked against the diff ID the cache says
   * before anything uses it (a digest and a diff ID are checked together: one cache entry cannot
   * vouch for another's). A layer that is not what the cache said fails the build, naming the cache.
   */
  ensureLayer(l: LayerRef): Promise<void> {
    const id = `${l.digest} ${l.diffId}`;
    const pending = this.fromCache.get(id);
    if (!pending || l.keptOnly) return Promise.resolve();
    let p = this.fetching.get(id);
    if (!p) {
      p = (async () => {
        try {
          if (!(await this.store.hasBlob(l.digest))) await this.store.writeBlob(pending.blob.open(), { digest: l.digest, size: l.size });
          else await this.store.lease(l.digest);
          const { algorithm } = parseDigest(l.diffId);
          const hash = createHash(algorithm);
          for await (const chunk of this.openLayer(l)) hash.update(chunk as Buffer);
          const actual = `${algorithm}:${hash.digest('hex')}`;
          if (actual !== l.diffId) throw new Error(`its content has diff ID ${actual}, where the cache says ${l.diffId}`);
        } catch (err) {
          throw new BuildError('CACHE_LAYER', `layer ${l.digest} of the cache ${pending.from}: ${(err as Error).message}; nothing of it was used`, { cause: err });
        }
        this.verified.add(id);
        for (const then of pending.then.splice(0)) then();
      })();
      this.fetching.set(id, p);
    }
    return p;
  }

  /** `ensureLayer` of each of `layers`, a few at a time; all have settled when it returns. */
  async ensureLayers(layers: readonly LayerRef[]): Promise<void> {
    const queue = [...layers];
    let failed: unknown;
    await Promise.all(
      Array.from({ length: 3 }, async () => {
        for (let l = queue.shift(); l && failed === undefined; l = queue.shift()) await this.ensureLayer(l).catch((err: unknown) => void (failed ??= err));
      }),
    );
    if (failed !== undefined) throw failed;
  }

  private openLayer(l: LayerRef): Readable {
    return layerTar(this.store.openBlob(l.digest, l.size), layerCompression(l.mediaType), `layer ${l.digest}`);
  }

  private async unpack(root: string, l: LayerRef): Promise<void> {
    // Its change is only in its snapshot (kept when its step ran), which this build mounts.
    if (l.keptOnly) throw new BuildError('BUILD_SNAPSHOT_LOST', `a step's result was kept only as a snapshot (${l.diffId}), and that snapshot could not be mounted or kept`);
    await this.ensureLayer(l);
    this.charge(root, (await applyLayer(root, this.openLayer(l), { what: `layer ${l.digest}` })).bytes);
    this.stats.layersApplied++;
  }

  private extractedChain(chain: string, layers: LayerRef[]): Promise<string> {
    let p = this.extracting.get(chain);
    if (!p) this.extracting.set(chain, (p = this.extractChain(chain, layers)));
    return p;
  }

  /** The base's layers extracted once into the store (rootfs/<chain>), for overlays to start from. */
  private async extractChain(chain: string, layers: LayerRef[]): Promise<string> {
    await this.store.lease(`rootfs:${chain}`); // prune keeps it while this build runs
    const dir = path.join(this.store.rootfsDir, chain);
    if (await lstat(dir).catch(() => undefined)) return dir;
    const tmp = this.store.tempPath('chain');
    this.temps.push(tmp);
    await mkdir(tmp, { recursive: true, mode: 0o755 });
    for (const l of layers) await this.unpack(tmp, l);
    this.stats.chainsExtracted++;
    await this.store.privateDir('rootfs');
    // Another build may have finished the same chain first: then its copy is used.
    await rename(tmp, dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
    });
    trace?.(`chain ${chain}: extracted`);
    return dir;
  }

  /** The snapshot of an extracted chain: kept in the cache, taken once. */
  private async chainSnapshot(chain: string, dir: string): Promise<Snapshot> {
    const file = this.store.layout.chainSnapshotPath(chain);
    const kept = await loadSnapshot(file, dir);
    if (kept) return kept;
    const snap = await snapshot(dir);
    await saveSnapshot(file, this.store.tempPath('snapshot'), dir, snap);
    await rm(file.replace(/\.bin$/, '.json'), { force: true }); // a snapshot kept in the JSON format of earlier versions
    return snap;
  }

  /** An overlay on the extracted chain `lower`, in a new temp entry; `merged` is undefined where overlays cannot be used. */
  private async overlayOn(lower: string): Promise<{ dir: string; merged: string | undefined }> {
    const dir = await this.newTemp();
    const merged = await mountOverlay(lower, dir);
    if (merged) {
      this.mounted.push(merged);
      this.uppers.set(merged, path.join(dir, 'upper'));
    }
    return { dir, merged };
  }

  /**
   * Once a stage has run a step, the stages that read from it will run theirs too (their keys
   * follow its layers): their overlays are mounted meanwhile, while this stage's steps run.
   */
  mountAhead(plan: BuildPlan, stageIndex: number, stateOfImage: (ref: string, platform: string) => StageState): void {
    if (this.aheadOf.has(stageIndex)) return;
    this.aheadOf.add(stageIndex);
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
      const { chain, layers } = baseOf(s);
      if (this.ahead.has(chain)) continue;
      const made = this.extractedChain(chain, layers).then((lower) => this.overlayOn(lower));
      made.catch(() => undefined); // a failure shows again when the stage mounts its own
      this.ahead.set(chain, made);
      trace?.(`stage ${later.index}: overlay mounted ahead`);
    }
  }

  /**
   * A mount of `s`'s view: the base chain extracted (once), the view's snapshots stacked on it
   * and a new upper directory. Undefined where overlays cannot be used.
   */
  private async mountView(s: StageState, view: View): Promise<{ dir: string; merged: string } | undefined> {
    const { chain, layers } = baseOf(s);
    const lower = await this.extractedChain(chain, layers);
    if (view.snapshots.length === 0) {
      const early = this.ahead.get(chain);
      this.ahead.delete(chain);
      const made = await (early?.catch(() => this.overlayOn(lower)) ?? this.overlayOn(lower));
      return made.merged ? { dir: made.dir, merged: made.merged } : undefined;
    }
    const dir = await this.newTemp();
    const merged = await mountOverlay(this.snapshots.lowers(view, chain), dir, this.store.root);
    if (!merged) return undefined;
    this.mounted.push(merged);
    this.uppers.set(merged, path.join(dir, 'upper'));
    this.stats.snapshotsMounted++;
    return { dir, merged };
  }

  /** The stat index of a fresh mount of `s.view`: kept in memory, on disk, or walked. */
  private async viewIndex(s: StageState, view: View, merged: string): Promise<Snapshot> {
    if (s.viewIndex) return s.viewIndex;
    const top = view.snapshots[0];
    const { chain, layers } = baseOf(s);
    const kept = top !== undefined ? await this.snapshots.index(top) : await this.chainSnapshot(chain, await this.extractedChain(chain, layers));
    if (kept) return kept;
    this.stats.walks++;
    const walked = await snapshot(merged);
    // Kept whole for the next build, which then need not walk (an index lost, or written by an earlier version).
    if (top !== undefined) await this.snapshots.saveIndex(top, walked).catch(() => undefined);
    return walked;
  }

  /**
   * `fn` on `s` once what was asked of `s` before is done: a finished stage is read by the stages
   * after it, which run side by side (one mounts its rootfs to copy from while another mounts it
   * for a stage FROM it).
   */
  private serial<T>(s: StageState, fn: () => Promise<T>): Promise<T> {
    const turn = (this.turns.get(s) ?? Promise.resolve()).then(fn);
    this.turns.set(s, turn.catch(() => undefined));
    return turn;
  }

  /**
   * A stage that has finished, kept as a snapshot that shows all its layers (when its stack has
   * room): the stages FROM it mount that, whatever mounts of it others are reading meanwhile. Only
   * an overlay that holds layers its view does not show is sealed; a mount of the view is left
   * as it is. False as seal says it.
   */
  settle(s: StageState): Promise<boolean> {
    return this.serial(s, async () => (s.live && s.layers.length > s.live.view.covered ? this.seal(s) : true));
  }

  /**
   * `s`'s rootfs: mounted (or unpacked) when it has none yet. In `s`'s turn, always: while it is
   * being made, `s.rootfs` may name a mount that is about to be sealed (cached layers unpacked
   * on an overlay become a snapshot, mounted anew).
   */
  materialise(s: StageState): Promise<string> {
    return this.serial(s, () => this.materialiseNow(s));
  }

  private async materialiseNow(s: StageState): Promise<string> {
    if (s.rootfs) return s.rootfs;
    let dir: string | undefined;
    let root: string | undefined;
    let applied = 0;
    if (s.view && overlayWanted()) {
      await this.lookUpHits(s);
      // A stage FROM an earlier one mounts that one's snapshot, once it is kept.
      const from = s.from;
      delete s.from;
      if (from && (await this.settle(from)) && from.view && s.view.covered < from.view.covered && from.view.covered <= s.layers.length) {
        s.view = from.view;
        if (from.viewIndex) s.viewIndex = from.viewIndex;
        else delete s.viewIndex;
      }
      const view = s.view;
      let made = await this.mountView(s, view).catch((err: unknown) => {
        trace?.(`snapshot stack not mounted: ${(err as Error).message}`);
        return undefined;
      });
      if (!made && view.snapshots.length > 0 && overlayWanted()) {
        // A stack that cannot be mounted: the base alone, the rest unpacked.
        s.view = { snapshots: [], covered: s.baseLayers };
        delete s.viewIndex;
        made = await this.mountView(s, s.view);
      }
      if (made) {
        dir = made.dir;
        root = made.merged;
        applied = s.view.covered;
        s.live = { dir: made.dir, merged: made.merged, upper: path.join(made.dir, 'upper'), view: s.view };
        // Nothing is in the upper directory yet: the merged view's index is the view's.
        if (applied === s.layers.length) s.snapshot = s.live.below = await this.viewIndex(s, s.view, made.merged);
      }
    }
    dir ??= await this.newTemp();
    root ??= dir;
    this.tempOf.set(root, dir);
    for (const l of s.layers.slice(applied)) await this.unpack(root, l);
    s.rootfs = root;
    // Cached layers unpacked on an overlay become the snapshot of the step that made the last
    // of them: the next build mounts it instead of unpacking them again.
    if (s.live && applied < s.layers.length && s.layerKey !== undefined && (await this.seal(s))) return this.materialiseNow(s);
    return root;
  }

  /**
   * The rootfs a step of `s` runs on: the overlay's upper directory, when it holds what earlier
   * steps did, becomes their snapshot first, and the step gets a new one.
   */
  async forStep(s: StageState): Promise<string> {
    this.stepsRun++;
    if (s.live && s.layers.length > s.live.view.covered) await this.seal(s);
    return this.materialise(s);
  }

  /**
   * Keep what `s`'s overlay holds as a snapshot and unmount it: afterwards `s.view` shows all
   * its layers and `s.rootfs` is mounted again when needed. False when the overlay stays as
   * it is (a stack at its depth): then it is the only place its layers are unpacked.
   */
  private async seal(s: StageState): Promise<boolean> {
    const live = s.live;
    if (!live) return true;
    const grown = s.layers.length > live.view.covered;
    if (grown && (live.view.snapshots.length >= SNAPSHOT_DEPTH - 1 || s.layerKey === undefined)) return false;
    let index: Snapshot | undefined;
    let delta: { entries: Snapshot; removed: string[] } | undefined;
    if (grown) {
      const after = s.snapshot ?? (this.stats.walks++, await snapshot(live.merged));
      // The last step's index is this stage's alone: changed in place, not copied.
      index = lowerIndex(after, live.upper, { inPlace: after !== live.below && after !== s.viewIndex, ...(live.below ? { below: live.below } : {}) });
      // Kept as what the step changes in the view below it (when that view's index is known):
      // a few entries written, not the whole view; found among the paths the step touched when
      // it was the only one on this upper directory, over that view.
      const one = s.changed?.before === live.below && s.layers.length === live.view.covered + 1;
      if (live.below) delta = indexChange(live.below, index, one ? s.changed?.paths : undefined);
    }
    delete s.live;
    delete s.rootfs;
    delete s.snapshot;
    delete s.changed;
    delete s.upperCaps;
    this.mounted.splice(this.mounted.indexOf(live.merged), 1);
    this.uppers.delete(live.merged);
    await unmount(live.merged);
    if (!index) return true;
    const { chain: base } = baseOf(s);
    const chain = chainOf(s.layers);
    const id = await this.snapshots
      .commit({ key: s.layerKey as string, chain, base, parents: live.view.snapshots, layers: s.layers.length, upper: live.upper, index, ...(delta ? { delta } : {}), bytes: this.tempBytes.get(live.dir) ?? 0 })
      .catch((err: unknown) => {
        trace?.(`snapshot not kept: ${(err as Error).message}`);
        return undefined;
      });
    if (id) {
      this.stats.snapshotsCommitted++;
      this.tempBytes.set(live.dir, 0); // what it held is the snapshot's now
      s.view = { snapshots: [id, ...live.view.snapshots], covered: s.layers.length };
      s.viewIndex = index;
      return true;
    }
    // Not kept (another build kept the same step first): that one; else the layers above the
    // view are unpacked again when needed (a step's change kept only as a snapshot cannot be).
    s.view = (await this.snapshots.open(s.layerKey as string, chain, base, s.layers.length)) ?? live.view;
    if (s.layers.slice(s.view.covered).some((l) => l.keptOnly)) throw new BuildError('BUILD_SNAPSHOT_LOST', `the snapshot of a step whose change is kept only as a snapshot could not be kept (${chain})`);
    delete s.viewIndex;
    return true;
  }

  /**
   * A cache hit of step `key`, whose layer is `layer` (or none): its snapshot, when one is kept,
   * becomes `s`'s view (mounted when needed, nothing unpacked); else the layer is unpacked into
   * `s`'s rootfs if it has one, or when it is next made. False for a step whose change is kept
   * only as a snapshot (no layer) when that snapshot cannot be mounted here: the step runs again.
   */
  async cacheHit(s: StageState, key: string, layer: LayerRef | null): Promise<boolean> {
    if (!layer) return true;
    // A plain tree (no overlay) can only take a layer.
    if (layer.keptOnly && (!overlayWanted() || !s.view || (s.rootfs !== undefined && !s.live))) return false;
    const chain = chainOf([...s.layers, layer]);
    const mountable = s.view !== undefined && overlayWanted();
    if (!layer.keptOnly && !s.rootfs && !s.live && mountable) {
      // Nothing mounted: its snapshot is looked up when the rootfs is made, if ever.
      (s.hits ??= []).push({ key, chain, layers: s.layers.length + 1 });
    } else {
      // A change kept only as a snapshot must be there now (else the step runs again).
      if (mountable) this.stats.snapshotsLookedUp++;
      const kept = mountable ? await this.snapshots.open(key, chain, baseOf(s).chain, s.layers.length + 1) : undefined;
      if (kept && (await this.seal(s))) this.adoptView(s, kept);
      else if (layer.keptOnly) return false;
    }
    s.layers.push(layer);
    s.layerKey = key;
    if (s.rootfs) {
      await this.unpack(s.rootfs, layer);
      delete s.snapshot;
      delete s.changed;
      delete s.upperCaps;
    }
    return true;
  }

  /**
   * Whether step results of `s` may be kept only as snapshots (no layer made): on an overlay whose
   * stack has room for their snapshots, so that what they changed is there for later steps.
   */
  canKeepOnly(s: StageState): boolean {
    return s.live !== undefined && s.live.view.snapshots.length < SNAPSHOT_DEPTH - 2;
  }

  /**
   * The newest of `s`'s cache hits whose snapshot is kept (and newer than its view) becomes its
   * view, as if each had been looked up when it hit.
   */
  private async lookUpHits(s: StageState): Promise<void> {
    const hits = s.hits ?? [];
    delete s.hits;
    const base = baseOf(s).chain;
    for (let i = hits.length - 1; i >= 0; i--) {
      const h = hits[i] as { key: string; chain: string; layers: number };
      if (s.view && h.layers <= s.view.covered) return;
      this.stats.snapshotsLookedUp++;
      const kept = await this.snapshots.open(h.key, h.chain, base, h.layers);
      if (kept) return this.adoptView(s, kept);
    }
  }

  /** A kept snapshot that shows more of `s`'s layers than its view becomes the view (no hit older than it is looked up). */
  private adoptView(s: StageState, view: View): void {
    s.view = view;
    delete s.viewIndex;
    delete s.from;
    delete s.hits;
  }

  /** Step `key` made `layer` on `s`'s rootfs. */
  stepLayer(s: StageState, key: string, layer: LayerRef): void {
    s.layers.push(layer);
    s.layerKey = key;
  }

  /**
   * The build has succeeded and its image is being written from stored blobs: the overlays are
   * detached meanwhile, each kept as its last step's snapshot (or, holding nothing new, only
   * unmounted).
   */
  release(): void {
    this.releasing = (async () => {
      for (const s of this.states) await this.seal(s).catch((err: unknown) => trace?.(`snapshot not kept: ${(err as Error).message}`));
      // Hits never looked up: the newest one's snapshot marked used, with the parents it stacks on.
      for (const s of this.states) {
        const h = s.hits?.[s.hits.length - 1];
        if (h) this.snapshots.touch(h.key, h.chain);
      }
      trace?.('snapshots kept');
    })();
  }

  /**
   * The end of the build, whatever its outcome: everything unmounted, the temp trees set aside in
   * the trash (removed in bulk once it is over budget), and after a success the snapshots over
   * the store budget collected. GANTRY_STATS_OUT gets the counts.
   */
  async close(): Promise<void> {
    const succeeded = this.releasing !== undefined;
    await this.releasing;
    await Promise.allSettled(this.ahead.values()); // one still being mounted is in `mounted` once it is
    await unmount(...this.mounted.reverse());
    trace?.('unmounted');
    for (const t of this.temps) await discard(this.store, t, this.tempBytes.get(t) ?? 0);
    await collectTrash(this.store).catch(() => undefined);
    trace?.('temps discarded');
    // The build cache over its budget: the least recently used snapshots and cache entries go
    // (not what this build leased; a snapshot of another boot, or without its meta, is older
    // than any other). A build that ran no step added nothing to collect: a no-op rebuild
    // skips it (28 ms with 180 snapshots kept).
    if (succeeded && this.stepsRun > 0) {
      await collectBuildCache(this.store, storeBudget(this.store.root)).catch((err: unknown) => trace?.(`build cache not collected: ${(err as Error).message}`));
      trace?.('build cache collected');
    }
    const statsOut = settings.statsOut;
    if (statsOut) writeFileSync(statsOut, JSON.stringify({ ...this.stats, kernelCalls: kernelCalls() }));
  }
}
