/**
 * The filesystem steps (RUN, COPY/ADD, WORKDIR), each in two parts as BuildKit splits an op's
 * CacheMap from its Exec: `inputs` says what the step reads beyond its instruction, for its cache
 * key (the sum of a COPY's sources, another stage's layers, a bind mount's content), and needs
 * no rootfs; `exec` does the step on the rootfs the workspace gives it, only on a cache miss.
 */
import type { Step } from '../../plan/planner.js';
import type { Store } from '../../store/store.js';
import type { IgnoreFilter } from '../context.js';
import type { NamedDir } from '../named-contexts.js';
import type { StageState } from '../state.js';
import type { StatCache } from '../statcache.js';
import type { ExecuteOptions, ProgressEvent } from '../types.js';
import type { Workspace } from '../workspace.js';

/** What a step needs of the build it is part of. */
export interface StepEnv {
  options: ExecuteOptions;
  store: Store;
  ws: Workspace;
  emit: (e: ProgressEvent) => void;
  /** The build context's .dockerignore. */
  ignore: IgnoreFilter;
  /** The build context's stat cache (its files' sums kept between builds). */
  contextStats: StatCache | undefined;
  /** A named context's directory (`--build-context NAME=DIR`). */
  namedDir(name: string): NamedDir;
  /** What a `from=` names: an earlier stage (by index) or an image. */
  stateOfFrom(from: string, platform: string): StageState;
  /** The platform of a stage (by index). */
  platformOf(stageIndex: number): string;
  /** The caches of a --no-cache build, by name: its own, made empty. */
  noCacheMounts: Map<string, Promise<string>>;
  /** Said once, at the first RUN: the isolation RUN gets when it is weaker than a container. */
  noticeIsolation(): Promise<void>;
}

export interface FsStep {
  /** What the step reads beyond its instruction, for its cache key. */
  inputs(): Promise<string>;
  /**
   * For a second key, tried when the first misses (BuildKit's content-based key): what the step
   * reads, by content. A COPY from another stage has it (the sum of the files it copies), so
   * that a source stage that ran again and made the same files leaves the COPY a hit.
   */
  contentInputs?(): Promise<string>;
  /** Do the step on `rootfs`. `capsKnownNone`: it made no file with capabilities (none need reading back). */
  exec(rootfs: string): Promise<{ capsKnownNone: boolean }>;
}

export type RunStep = Extract<Step, { op: 'run' }>;
export type CopyStep = Extract<Step, { op: 'copy' }>;
export type WorkdirStep = Extract<Step, { op: 'workdir' }>;
