/**
 * Resolve: a Dockerfile's plan with the images it names. The Dockerfile is parsed once and
 * planned until the images it names tell of nothing more: the bases come from the store when it
 * has them for the stage's platform, else from a registry (bases.ts), and a base's ONBUILD
 * triggers can name more images and stages. The last plan is made with everything the images
 * say (their SHELL, ENV, WORKDIR), so check=error=true fails only on what the full plan warns of.
 */
import { type SourceLocation } from '../errors/index.js';
import { trace } from '../support/process.js';
import type { Image } from '../image/image.js';
import { formatPlatform, parsePlatform } from '../oci/platform.js';
import type { DockerfileModel } from '../dockerfile/stages.js';
import { planModel, type BaseImageInfo, type BuildPlan } from '../plan/planner.js';
import type { Store } from '../store/store.js';
import { obtainImage } from './bases.js';
import { BuildError } from './errors.js';
import { isLayoutRef, type NamedContexts } from './named-contexts.js';
import { imageKey } from './state.js';
import type { ExecuteOptions, ProgressEvent } from './types.js';

/** What resolving reads of the build's options: the plan's inputs, and how bases are obtained. */
export type ResolveOptions = Omit<ExecuteOptions, 'text'>;

export interface Resolved {
  plan: BuildPlan;
  /** The images the plan names, by imageKey(ref, platform). */
  images: Map<string, Image>;
}

/** Plan the parsed Dockerfile `model` until the images it names are all at hand; those images beside the last plan. */
export async function resolvePlan(
  store: Store,
  model: DockerfileModel,
  options: ResolveOptions,
  named: NamedContexts | undefined,
  emit: (e: ProgressEvent) => void,
): Promise<Resolved> {
  const planOptions = {
    file: options.dockerfile,
    ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}),
    ...(options.target ? { target: options.target } : {}),
    ...(options.platform ? { platform: options.platform } : {}),
    ...(named ? { namedContexts: named.plan } : {}),
  };
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
  trace?.('planned');
  return { plan, images };
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

