/**
 * A stage's state while the builder walks it: its image config, its layers, the cache key of
 * its last step, and where its root filesystem is (the workspace's business: a view of
 * snapshots, a mounted overlay, a plain tree); and how a step's cache key is made.
 */
import { createHash } from 'node:crypto';
import type { Image, LayerDescriptor } from '../image/image.js';
import { scratchConfig } from '../image/mutate.js';
import { parsePlatform } from '../oci/platform.js';
import type { ImageConfig } from '../oci/types.js';
import type { PlannedStage, Step } from '../plan/planner.js';
import type { Snapshot } from '../snapshot/diff.js';
import type { View } from '../store/snapshots.js';
import { chainName } from '../store/store.js';
import type { ConfigState } from './config.js';
import type { BuildSettings } from './types.js';

export interface LayerRef extends LayerDescriptor {
  /**
   * A step of a stage whose layers never leave the build (read only by COPY --from, a bind mount):
   * no layer was made, its change is kept only as a snapshot. `digest` and `diffId` are then a
   * stand-in, `kept:<hex>` (new at each run of the step), that names the snapshot's chain.
   */
  keptOnly?: true;
}

/** A stand-in layer for a step whose change is kept only as its snapshot, named `id` (`kept:<hex>`). */
export const keptLayer = (id: string): LayerRef => ({ digest: id, size: 0, diffId: id, mediaType: 'application/vnd.gantry.kept-only', keptOnly: true });

export interface StageState {
  config: ImageConfig;
  layers: LayerRef[];
  key: string;
  rootfs?: string;
  /** How many of `layers`, from the first, are the base image's (the extracted chain at the bottom of an overlay). */
  baseLayers: number;
  /** The rootfs as the last step left it (a step's "after" is the next one's "before"). */
  snapshot?: Snapshot;
  /** The last step's "before" and the only paths its "after" (`snapshot`) may differ in, on an overlay. */
  changed?: { before: Snapshot; paths: ReadonlySet<string> };
  /**
   * When the rootfs is an overlay and its last step a RUN: the capabilities of every file in
   * the upper directory (relative path → name → value), as read for that step's layer.
   */
  upperCaps?: Promise<Map<string, Map<string, Buffer>>>;
  configState: ConfigState;
  /** Where overlays are used: the lower directories that show `layers` up to `view.covered` (store/snapshots.ts). */
  view?: View;
  /** Its stat index, as a fresh mount of the view shows it, when known. */
  viewIndex?: Snapshot;
  /** The overlay `rootfs` is, while mounted: its upper directory holds `layers` from `view.covered` on. */
  /** The overlay the stage's steps run on; `below`: the index of its lower directories, when known. */
  live?: { dir: string; merged: string; upper: string; view: View; below?: Snapshot };
  /** The key of the last step that added a layer: what a snapshot of the rootfs is kept under. */
  layerKey?: string;
  /** A stage FROM an earlier one: that one's state, whose snapshot this one mounts. */
  from?: StageState;
  /**
   * Cache hits whose snapshots are not looked up yet (oldest first): the newest of them that is
   * kept becomes the view when the rootfs is made (a build whose steps all hit looks none up).
   */
  hits?: { key: string; chain: string; layers: number }[];
}

export const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The name of an image for a platform, as the builder keeps the images a plan names. */
export const imageKey = (ref: string, platform: string): string => `${platform} ${ref}`;

/** The chain name of layers (store/store.ts: what rootfs/ and snapshots name them by). */
export const chainOf = (layers: readonly LayerRef[]): string => chainName(layers.map((l) => l.diffId));

/** The base image's layers of a state, and their chain: the extracted tree at the bottom of its overlays. */
export function baseOf(s: StageState): { chain: string; layers: LayerRef[] } {
  const layers = s.layers.slice(0, s.baseLayers);
  return { chain: chainOf(layers), layers };
}

/**
 * What a COPY or bind mount reads from another stage or an image, for the cache key: that
 * rootfs's layers (content-addressed), so the key needs no unpacking, only a cache miss does.
 */
export const layersOf = (s: StageState): string => `layers:${s.layers.map((l) => l.diffId).join(',')}`;

/** The state of an image a stage starts from (or a COPY --from reads). */
export function imageState(image: Image): StageState {
  return {
    config: JSON.parse(image.rawConfig.toString('utf8')) as ImageConfig,
    layers: image.layers.map((l) => ({ digest: l.digest, size: l.size, diffId: l.diffId, mediaType: l.mediaType })),
    key: sha(`image:${image.digest}`),
    baseLayers: image.layers.length,
    configState: { cmdSet: false },
    view: { snapshots: [], covered: image.layers.length },
  };
}

/** The state a stage starts in: its base stage's (finished), its base image's, or scratch. */
export function startStage(stage: PlannedStage, finished: Map<number, StageState>, stateOfImage: (ref: string, platform: string) => StageState): StageState {
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
      ...(parent.hits ? { hits: [...parent.hits] } : {}),
    };
  }
  if (base.type === 'image') {
    const s = stateOfImage(base.ref, stage.platform);
    return { config: structuredClone(s.config), layers: [...s.layers], key: s.key, baseLayers: s.baseLayers, configState: { cmdSet: false }, view: { snapshots: [], covered: s.baseLayers } };
  }
  const p = parsePlatform(stage.platform);
  return {
    // BuildKit's empty image: WorkingDir "/" (a FROM scratch image says so in its config).
    config: scratchConfig(p),
    layers: [],
    key: sha(`scratch:${stage.platform}`),
    baseLayers: 0,
    configState: { cmdSet: false },
    view: { snapshots: [], covered: 0 },
  };
}

// --- a step's cache key ------------------------------------------------------------------------

/**
 * A filesystem step's cache key, apart from running it (BuildKit's CacheMap beside its Exec):
 * the parent's key, the platform, the step as the planner resolved it (not its position, text
 * or id), what it reads beyond its instruction (`inputs`: the sum of its sources, another
 * stage's layers), and for a RUN what it is run with (host name, extra hosts, /dev/shm,
 * ulimits). The same inputs give the same key in every build.
 */

/** What of a step decides its layer (not its position, text or id). */
export function layerKeyFields(step: Step): unknown {
  // ADD's --checksum only verifies what is fetched: the content is in the key, not the flag (as BuildKit).
  const { id: _id, position: _p, original: _o, location: _l, onbuild: _b, checksum: _c, state, ...rest } = step as Step & { onbuild?: boolean; checksum?: string };
  if (step.op === 'run') {
    const { proxyEnv: _proxy, ...run } = rest as Extract<Step, { op: 'run' }>;
    return { ...run, user: state.user, workdir: state.workdir, shell: state.shell };
  }
  return { ...rest, user: state.user, workdir: state.workdir };
}

export function stepKey(parent: string, platform: string, step: Step, inputs: string, options: BuildSettings): string {
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
  return sha(JSON.stringify({ parent, platform, step: layerKeyFields(step), extra: inputs, ...(hostname ? { hostname } : {}), ...meta }));
}
