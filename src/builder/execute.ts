/**
 * A build's execution: the plan that resolve.ts made (with the images it names) run stage by
 * stage, independent stages side by side, and the image written. Config-only steps change the image config and history.
 * RUN, COPY, ADD and WORKDIR (when it creates the directory) change the root filesystem and
 * become a diff layer, unless the layer cache already has the step: each is a step (steps/)
 * whose cache key (keys.ts: the parent key, the step as the planner resolved it, what it reads)
 * is made apart from its execution, which runs only on a miss, on the rootfs the workspace
 * (workspace.ts) mounts for it.
 */
import { crashPoint, trace } from '../support/process.js';
import type { Image } from '../image/image.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import type { Descriptor, HistoryEntry, ImageConfig } from '../oci/types.js';
import { configPlatform, parsePlatform } from '../oci/platform.js';
import { DEFAULT_PATH, type BuildPlan, type PlannedStage, type Step } from '../plan/planner.js';
import { prewarmSandbox } from '../sandbox/run.js';
import { LayerCache, type CacheEntry } from '../store/cache.js';
import { loadImage, writeImage } from '../store/images.js';
import type { Store } from '../store/store.js';
import { withContainerConfig, withHistory, withLabels } from '../image/mutate.js';
import { loadIgnore } from './context.js';
import { atStep, BuildError } from './errors.js';
import { configAfterStep, createdBy, HISTORY_COMMENT } from './config.js';
import { doStep } from './layer.js';
import type { NamedContexts, NamedDir } from './named-contexts.js';
import type { Resolved } from './resolve.js';
import { imageKey, imageState, keptLayer, startStage, stepKey, type LayerRef, type StageState } from './state.js';
import { byStage, cacheDocument, INLINE_CACHE_KEY, recordedLayers } from './shared-cache.js';
import { StatCache } from './statcache.js';
import { copyStepOf } from './steps/copy.js';
import { checkEntitlements, noticeIsolation, runStepOf } from './steps/run.js';
import type { FsStep, StepEnv } from './steps/step.js';
import { workdirStepOf } from './steps/workdir.js';
import type { ExecuteOptions, ExecuteResult } from './types.js';
import { Workspace } from './workspace.js';

export { BuildError };
export type { BuildSettings, ExecuteOptions, ExecuteResult, ProgressEvent } from './types.js';

/**
 * Execute a resolved plan (resolve.ts: the plan and the images it names) in a command's store
 * scope (`withStore`), and write its image to the store. `named`: the build's named contexts,
 * read by COPY --from.
 */
export async function execute(store: Store, resolved: Resolved, options: ExecuteOptions, named?: NamedContexts): Promise<ExecuteResult> {
  const ws = Workspace.open(store);
  const run: PlanRun = { options, store, ws, named, contextStats: undefined };
  try {
    return await executePlan(resolved.plan, resolved.images, run);
  } finally {
    await run.contextStats?.save();
    await ws.close();
  }
}

/** What executePlan works with: the build's options, its store and workspace, its named contexts; the context stat cache it opens. */
interface PlanRun {
  options: ExecuteOptions;
  store: Store;
  ws: Workspace;
  named: NamedContexts | undefined;
  contextStats: StatCache | undefined;
}

/**
 * What the stages of one plan's execution share: the build's options (its signal also stops the
 * build when a stage fails), its store, workspace and layer cache, the stages finished so far
 * and the states of the images the plan names.
 */
interface PlanExecution {
  plan: BuildPlan;
  /** The build's options (with the signal that also stops it when a stage fails), store, workspace, progress. */
  env: StepEnv;
  cache: LayerCache;
  /** When the steps that run are dated (now, or SOURCE_DATE_EPOCH); `fixedTime`: the latter. */
  created: string;
  fixedTime: boolean;
  /** The stages --no-cache-filter names, and those whose layers leave the build (stagesLeaving). */
  uncachedStages: Set<number>;
  leaving: Set<number>;
  /** Stages with a later stage built FROM them: kept as a snapshot when they finish (runStage). */
  parents: Set<number>;
  finished: Map<number, StageState>;
  stateOfImage(ref: string, platform: string): StageState;
  /** The sandbox is made ready at the first step that runs, when a RUN is to come. */
  sandbox: { wanted: boolean; warmed: boolean };
  /** Imported cache entries the local cache takes once the image is written (`imported`). */
  adopted: Map<string, CacheEntry>;
}

/**
 * The date of what makes no layer of its own (ENV, CMD...: a history entry with no layer, and the
 * image itself): the newest date in the history so far, so that, as with BuildKit, a rebuild that
 * changes nothing gives the same image, and an image whose steps were all cached is dated by when
 * they ran. SOURCE_DATE_EPOCH dates everything.
 */
function dated(x: PlanExecution, c: ImageConfig): string {
  if (x.fixedTime) return x.created;
  const history = c.history ?? [];
  for (let i = history.length - 1; i >= 0; i--) if (history[i]?.created) return history[i]?.created as string;
  return c.created ?? x.created;
}

/** Execute `plan` (what planBuild returns, with the images it names, by imageKey) and write its image. */
async function executePlan(plan: BuildPlan, images: Map<string, Image>, run: PlanRun): Promise<ExecuteResult> {
  const { store, ws } = run;
  // A stage that fails stops the others (their RUNs are killed) through the build's signal.
  const failed = new AbortController();
  const options: ExecuteOptions = { ...run.options, signal: run.options.signal ? AbortSignal.any([run.options.signal, failed.signal]) : failed.signal };
  const emit = options.onProgress ?? (() => undefined);
  checkEntitlements(plan, options);
  const hostname = options.buildArgs?.BUILDKIT_SANDBOX_HOSTNAME;
  // Empty: the default name, as BuildKit; else a name the kernel takes (at most 64 bytes).
  if (hostname && (hostname.length > 64 || !/^[A-Za-z0-9]([A-Za-z0-9-]*)(\.[A-Za-z0-9]([A-Za-z0-9-]*))*$/.test(hostname))) {
    throw new BuildError('BUILD_HOSTNAME', `BUILDKIT_SANDBOX_HOSTNAME "${hostname}" is not a valid host name`);
  }
  const uncachedStages = stagesNamed(plan, options.noCacheFilter ?? []);
  emit({ type: 'plan', plan });
  const ignore = await loadIgnore(options.context, options.dockerfile);
  run.contextStats = await StatCache.open((key) => store.layout.cachePath('stat', key), options.context, store.tempPath('stat'));
  trace?.('context stat cache open');
  const finished = new Map<number, StageState>();
  const imageStates = new Map<string, StageState>();
  const stateOfImage = (ref: string, platform: string): StageState => {
    const key = imageKey(ref, platform);
    const existing = imageStates.get(key);
    if (existing) return existing;
    const image = images.get(key);
    if (!image) throw new BuildError('BUILD_IMAGE', `image ${ref} (${platform}) was not resolved before the build`);
    const s = ws.track(imageState(image));
    imageStates.set(key, s);
    return s;
  };
  let isolationNotice: Promise<void> | undefined;
  const env: StepEnv = {
    options,
    store,
    ws,
    emit,
    ignore,
    contextStats: run.contextStats,
    namedDir: (name) => run.named?.dirs.get(name) as NamedDir,
    // What a `from=` names: an earlier stage by index, else an image.
    stateOfFrom: (from, platform) => (/^\d+$/.test(from) ? (finished.get(Number(from)) as StageState) : stateOfImage(from, platform)),
    platformOf: (stageIndex) => plan.stages.find((st) => st.index === stageIndex)?.platform ?? plan.platform,
    noCacheMounts: new Map(),
    noticeIsolation: () => (isolationNotice ??= noticeIsolation(options, emit)),
  };
  const created = new Date(options.sourceDateEpoch !== undefined ? options.sourceDateEpoch * 1000 : Date.now()).toISOString();
  const x: PlanExecution = {
    plan,
    env,
    cache: new LayerCache(store),
    created,
    fixedTime: options.sourceDateEpoch !== undefined,
    uncachedStages,
    // A mode=max cache export shares every stage's layers: every stage makes them.
    leaving: options.shared?.exported === 'max' ? new Set(plan.stages.map((st) => st.index)) : stagesLeaving(plan),
    parents: new Set(plan.stages.flatMap((st) => (st.base.type === 'stage' ? [st.base.stage] : []))),
    finished,
    stateOfImage,
    sandbox: { wanted: plan.stages.some((st) => st.steps.some((s) => s.op === 'run')), warmed: false },
    adopted: new Map(),
  };
  if (options.shared) options.shared.leaving = stagesLeaving(plan);
  const final = await runStages(x, failed);
  return writeTarget(x, final);
}

/**
 * Run the plan's stages, each once the stages it reads have finished: independent stages run side
 * by side (as BuildKit's solver runs independent vertices). The first stage to fail stops the
 * others; its error is the build's. The target stage's state, when all have finished.
 */
async function runStages(x: PlanExecution, failed: AbortController): Promise<StageState> {
  const tasks = new Map<number, Promise<StageState>>();
  let first: { err: unknown } | undefined;
  for (const stage of x.plan.stages) {
    // The planner lists a stage after every stage it depends on.
    const deps = stage.dependsOn.map((d) => tasks.get(d) as Promise<StageState>);
    const task = (async () => {
      await Promise.all(deps);
      try {
        return await runStage(x, stage);
      } catch (err) {
        first ??= { err };
        // A reason of its own: the stages it stops say where they were on it (atStep), not on this error.
        failed.abort(new BuildError('BUILD_STOPPED', 'stopped: another stage of the build failed'));
        throw err;
      }
    })();
    task.catch(() => undefined); // reported below, after every stage has stopped
    tasks.set(stage.index, task);
  }
  await Promise.allSettled(tasks.values());
  if (first) throw first.err;
  const last = x.plan.stages[x.plan.stages.length - 1];
  return (await tasks.get(last?.index ?? -1)) as StageState;
}

/** Run `stage`'s steps on its state: config steps change its config, filesystem steps its rootfs (or hit the cache). */
async function runStage(x: PlanExecution, stage: PlannedStage): Promise<StageState> {
  const { options, ws } = x.env;
  const state = ws.track(startStage(stage, x.finished, x.stateOfImage));
  // The base's ONBUILD triggers ran as this stage's first steps (the plan has them): they
  // are not passed on, as in BuildKit.
  if (state.config.config?.OnBuild) state.config = withContainerConfig(state.config, { OnBuild: undefined });
  // An image without PATH gets the default one, in its config too (as BuildKit does; not on Windows).
  const stageEnv = state.config.config?.Env ?? [];
  if (!stage.platform.startsWith('windows/') && !stageEnv.some((e) => e.startsWith('PATH='))) state.config = withContainerConfig(state.config, { Env: [`PATH=${DEFAULT_PATH}`, ...stageEnv] });
  let current: Step | undefined;
  try {
    for (const step of stage.steps) {
      current = step;
      options.signal?.throwIfAborted();
      await runStep(x, stage, state, step);
    }
  } catch (err) {
    // Whatever a step's inputs made fail (its sources, its mounts), said at its line.
    throw current ? atStep(current, err) : err;
  }
  // A stage that others are built FROM is kept as a snapshot now, before they start: they mount
  // it while stages that COPY from it may be reading its rootfs.
  if (x.parents.has(stage.index)) await ws.settle(state);
  x.finished.set(stage.index, state);
  return state;
}

/** One step of `stage`: a config change, a cache hit, or a filesystem step run into a layer. */
async function runStep(x: PlanExecution, stage: PlannedStage, state: StageState, step: Step): Promise<void> {
  const { options, ws, emit } = x.env;
  // As BuildKit shows it: an ONBUILD trigger says so.
  const position = options.onePlatform ? `[${stage.platform} ${step.position.slice(1)}` : step.position;
  const name = `${position} ${(step as { onbuild?: boolean }).onbuild ? 'ONBUILD ' : ''}${step.original.replace(/\s+/g, ' ').trim()}`;
  const started = Date.now();
  const text = createdBy(step);
  const history: HistoryEntry = { created: x.created, ...(text !== undefined ? { created_by: text } : {}), comment: HISTORY_COMMENT };
  const configured = step.op === 'workdir' ? undefined : configAfterStep(state.config, step, state.configState);
  if (step.op === 'arg' || configured) {
    if (configured) state.config = configured;
    if (text !== undefined) state.config = withHistory(state.config, { ...history, created: dated(x, state.config), empty_layer: true });
    if (step.op !== 'arg') emit({ type: 'step', id: step.id, name, status: 'done', seconds: 0 });
    return;
  }
  emit({ type: 'step', id: step.id, name, status: 'start' });
  // The steps that may change the filesystem: RUN, COPY/ADD, WORKDIR (it creates a missing directory).
  const work = fsStepOf(x, step, state, stage.platform);
  const key = stepKey(state.key, stage.platform, step, await work.inputs(), options);
  // The second key of a COPY from a stage (the files it copies), made once, when needed.
  let byContent: Promise<string> | undefined;
  const contentInputs = work.contentInputs;
  const contentKey = contentInputs ? () => (byContent ??= contentInputs().then((c) => stepKey(state.key, stage.platform, step, c, options))) : undefined;
  // --no-cache (or --no-cache-filter): run again, unless this build ran the step already (an
  // earlier platform's run of a $BUILDPLATFORM stage), as BuildKit solves a vertex once per build.
  const uncached = options.noCache || x.uncachedStages.has(stage.index);
  const fresh = !uncached || options.ranThisBuild?.has(key) === true;
  // (Run by this build: by its key only, never by content an earlier build recorded.)
  const hit = fresh ? await cachedResult(x, state, x.leaving.has(stage.index), key, uncached ? undefined : contentKey) : undefined;
  if (hit) {
    // Dated when the step ran, as BuildKit dates a cached layer: a rebuild that changes nothing is the same image.
    const then = { ...history, created: x.fixedTime ? x.created : hit.entry.created };
    state.config = withHistory(state.config, hit.layer ? then : { ...then, empty_layer: true });
    if (step.op === 'workdir') state.config = withContainerConfig(state.config, { WorkingDir: step.path });
    state.key = hit.chain;
    record(x, stage, key, hit.chain !== key ? { ...hit.entry, next: hit.chain } : hit.entry);
    emit({ type: 'step', id: step.id, name, status: 'cached' });
    return;
  }
  let chain = key;
  try {
    trace?.(`step ${step.id}: start`);
    // The first step that does work: the sandbox gets ready meanwhile, when a RUN is to come.
    if (!x.sandbox.warmed && x.sandbox.wanted) {
      x.sandbox.warmed = true;
      prewarmSandbox({
        ...(options.isolation ? { isolation: options.isolation } : {}),
        ...(options.network ? { network: options.network } : {}),
        keepProgram: (key) => ({ file: x.env.store.layout.seccompProgramPath(key), temp: x.env.store.tempPath('seccomp') }),
      });
    }
    ws.mountAhead(x.plan, stage.index, x.stateOfImage);
    // A COPY from a stage chains on its content key, so that the steps after it are hits
    // whenever the files it copies are the same.
    if (contentKey) chain = await contentKey();
    const stepCtx = { ws, store: x.env.store, keepOnly: !x.leaving.has(stage.index), ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}) };
    const layer = await doStep(stepCtx, state, step, work);
    if (layer) ws.stepLayer(state, chain, layer);
    state.config = withHistory(state.config, layer ? history : { ...history, empty_layer: true });
    const next = chain !== key ? { next: chain } : {};
    const made: CacheEntry = layer?.keptOnly ? { layer: null, kept: layer.diffId, ...next, created: x.created } : { layer, ...next, created: x.created };
    await x.cache.put(key, made);
    options.ranThisBuild?.add(key);
    record(x, stage, key, made);
    // Found by content in later builds; not a change kept only as a snapshot (named by the run that made it).
    if (chain !== key && !layer?.keptOnly) {
      await x.cache.put(chain, { layer, created: x.created });
      record(x, stage, chain, { layer, created: x.created });
    }
  } catch (err) {
    throw atStep(step, err);
  }
  state.key = chain;
  emit({ type: 'step', id: step.id, name, status: 'done', seconds: (Date.now() - started) / 1000 });
}

/** The filesystem step `step` is, on `state`. */
function fsStepOf(x: PlanExecution, step: Step, state: StageState, platform: string): FsStep {
  // A RUN runs the binaries the stage's root filesystem has: its base's architecture (which is
  // the stage's platform unless the base was another's: InvalidBaseImagePlatform).
  if (step.op === 'run') {
    const p = parsePlatform(platform);
    return runStepOf(step, x.env, configPlatform({ os: state.config.os || p.os, architecture: state.config.architecture || p.architecture }));
  }
  if (step.op === 'workdir') return workdirStepOf(step, state);
  if (step.op !== 'copy') throw new BuildError('BUILD_UNSUPPORTED', `step ${step.position}: ${step.op} does not change the filesystem`);
  const fromState = step.source.type === 'context' ? undefined : step.source.type === 'stage' ? (x.finished.get(step.source.stage) as StageState) : x.stateOfImage(step.source.ref, platform);
  return copyStepOf(step, fromState, x.env);
}

/**
 * A usable cache hit of a step of `state`: by `key`, else, for a COPY from a stage, by the content
 * it copies (`contentKey`: a hit there is recorded under `key` too). A step whose change was kept
 * only as a snapshot is a hit where that snapshot mounts, and only in a stage whose layers stay
 * in the build (`leaves` false); else it runs again and makes its layer. `chain`: the key later
 * steps chain on, which also names its snapshot.
 */
async function cachedResult(
  x: PlanExecution,
  state: StageState,
  leaves: boolean,
  key: string,
  contentKey: (() => Promise<string>) | undefined,
): Promise<{ entry: CacheEntry; layer: LayerRef | null; chain: string } | undefined> {
  const usable = async (entry: CacheEntry | undefined, chain: string) => {
    if (!entry) return undefined;
    const layer: LayerRef | null = entry.kept !== undefined ? keptLayer(entry.kept) : entry.layer;
    if (layer?.keptOnly && leaves) return undefined;
    return (await x.env.ws.cacheHit(state, chain, layer)) ? { entry, layer, chain } : undefined;
  };
  const entry = (await x.cache.get(key)) ?? imported(x, key, (e) => e);
  const byKey = await usable(entry, entry?.next ?? key);
  if (byKey || !contentKey) return byKey;
  const chain = await contentKey();
  // Found by content: recorded under `key` too, chaining on it (once checked, when imported).
  const local = await x.cache.get(chain);
  const byContent = await usable(local ?? imported(x, chain, (e) => ({ ...e, next: chain }), key), chain);
  if (byContent && local) await x.cache.put(key, { ...byContent.entry, next: chain });
  return byContent;
}

/**
 * The entry an imported cache (`--cache-from`) has for `key`. Its layer is fetched when the build
 * first needs its files (Workspace.ensureLayer). The local cache takes it (`adopt` of it, under
 * `as`) only when the build has written its image, and one with a layer only once that layer
 * was stored and checked: a cache caught lying leaves nothing behind.
 */
function imported(x: PlanExecution, key: string, adopt: (e: CacheEntry) => CacheEntry, as = key): CacheEntry | undefined {
  const found = x.env.options.shared?.imported?.entries.get(key);
  if (!found) return undefined;
  const { entry, blob, from } = found;
  const keep = (): void => void x.adopted.set(as, adopt(entry));
  if (entry.layer && blob) x.env.ws.layerFromCache(entry.layer, blob, from, keep);
  else keep();
  return entry;
}

/** Note a filesystem step's entry for a cache export (`--cache-to`), when there is one. */
function record(x: PlanExecution, stage: PlannedStage, key: string, entry: CacheEntry): void {
  const shared = x.env.options.shared;
  if (!shared) return;
  shared.recorded.push({ key, entry, stage: stage.index });
  // A hit that chains on another key (a COPY from a stage, by content): that entry goes too.
  if (entry.next && entry.layer !== undefined && entry.kept === undefined) shared.recorded.push({ key: entry.next, entry: { layer: entry.layer, created: entry.created }, stage: stage.index });
}

/** Write the target stage's image (with the command line's labels) to the store, and tag it. */
async function writeTarget(x: PlanExecution, final: StageState): Promise<ExecuteResult> {
  const { options, ws, emit, store } = x.env;
  const { plan } = x;
  if (options.labels && Object.keys(options.labels).length > 0) {
    // As BuildKit: the command line's labels go on the image's config, with no history entry.
    final.config = withLabels(final.config, options.labels);
  }
  if (final.layers.some((l) => l.keptOnly)) throw new BuildError('BUILD_INTERNAL', 'the image would name a layer that was not made');
  const platform = parsePlatform(plan.target.platform);
  const config: ImageConfig = {
    ...final.config,
    created: dated(x, final.config),
    architecture: platform.architecture,
    os: platform.os,
    rootfs: { type: 'layers', diff_ids: final.layers.map((l) => l.diffId) },
  };
  if (platform.variant) config.variant = platform.variant;
  else delete config.variant;
  trace?.('steps done');
  const shared = options.shared;
  if (shared) {
    // Layers only an imported cache had: fetched now, for the image and for an export.
    const exported = shared.exported === 'none' ? [] : shared.recorded.filter((r) => shared.exported === 'max' || shared.leaving.has(r.stage));
    await ws.ensureLayers([...final.layers, ...recordedLayers(exported)]);
    // type=inline: the target's cache in the image's config, its layers the image's own.
    if (shared.inline) (config as unknown as Record<string, unknown>)[INLINE_CACHE_KEY] = cacheDocument(byStage(shared.recorded).filter((r) => shared.leaving.has(r.stage)), final.layers, { byLayers: false });
  }
  // A base's inline cache names the base's steps: an image built on it does not carry it.
  if (!shared?.inline) delete (config as unknown as Record<string, unknown>)[INLINE_CACHE_KEY];
  // The image is made of stored blobs: the overlays are detached (each kept as its last step's
  // snapshot) while it is written.
  ws.release();
  const annotations = options.annotations && Object.keys(options.annotations).length > 0 ? options.annotations : undefined;
  const descriptor = await writeImage(store, { config, layers: final.layers, ...(annotations ? { annotations } : {}) });
  crashPoint?.('commit');
  // One platform of several: the index is named, by the caller (the image is leased till then).
  const tags = options.onePlatform ? [] : await nameImage(store, descriptor, options.tags);
  const image = await loadImage(store, descriptor);
  for (const [key, entry] of x.adopted) await x.cache.put(key, entry);
  trace?.('image written');
  if (!options.onePlatform) emit({ type: 'image', digest: descriptor.digest, configDigest: image.configDigest, tags });
  return { digest: descriptor.digest, configDigest: image.configDigest, descriptor, tags, plan };
}

/** Name a built image (or index) with `tags`, normalised; with none, an untagged entry. The names given. */
export async function nameImage(store: Store, descriptor: Descriptor, tags: readonly string[] = []): Promise<string[]> {
  const names = tags.map((t) => formatReference(normalizeReference(t)));
  for (const n of names) await store.tag(n, descriptor);
  if (names.length === 0) await store.addUntagged(descriptor);
  return names;
}

/**
 * The stages whose layers leave the build: the target and the stages it is built FROM, in turn.
 * The others are only read (COPY --from, a bind mount): their steps need no layers.
 */
function stagesLeaving(plan: BuildPlan): Set<number> {
  const out = new Set<number>();
  let stage = plan.stages[plan.stages.length - 1];
  while (stage && !out.has(stage.index)) {
    out.add(stage.index);
    const base = stage.base;
    stage = base.type === 'stage' ? plan.stages.find((st) => st.index === base.stage) : undefined;
  }
  return out;
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
