/**
 * What the planner makes: the plan, its stages and their steps, and the options it takes. The
 * planner (planner.ts) walks the stages; each instruction is dispatched to its kind's function
 * (dispatch.ts, dispatch-run.ts, dispatch-copy.ts), which adds its step.
 */
import type { SourceLocation } from '../errors/index.js';
import type { CommandLine, CopyInstruction, HealthcheckInstruction, KeyValue, NetworkMode, SecurityMode } from '../dockerfile/instructions.js';
import type { Mount } from '../dockerfile/mounts.js';
import type { Heredoc } from '../dockerfile/parser.js';
import type { Warning } from '../dockerfile/warnings.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

export interface BaseImageInfo {
  env?: string[];
  onBuild?: string[];
  workingDir?: string;
  user?: string;
  shell?: string[];
}

export interface PlanOptions {
  /** The Dockerfile's name in messages. */
  file?: string;
  buildArgs?: Readonly<Record<string, string>>;
  /** Build this stage (by name) and what it needs; default: the last stage. */
  target?: string;
  /** The platform to build for (`os/arch[/variant]`); default: the build platform. */
  platform?: string;
  /** The platform the build runs on; default: this machine. */
  buildPlatform?: string;
  /** Configs of base images the caller already has, keyed by the reference as written after expansion. */
  baseImages?: Readonly<Record<string, BaseImageInfo>>;
  /** False: `# check=error=true` does not fail the plan (a lint of every target decides at the end). */
  checkErrors?: boolean;
  /**
   * Named contexts (`--build-context NAME=…`), by `contextKey(NAME)`: an image that takes the
   * place of an image or a stage of that name, or a directory that COPY --from reads.
   */
  namedContexts?: Readonly<Record<string, NamedContextRef>>;
}

/** What a named context is to the plan: an image (its reference, or scratch), or a directory. */
export type NamedContextRef = { type: 'image'; ref: string } | { type: 'dir' };

/** The end of a planned stage, as a stage FROM it starts. */
export interface StageEnd {
  args: Map<string, string | undefined>;
  shellSet: boolean;
  /** The state the stage starts with (its base's env, workdir, user, shell): a stage FROM it that has no steps ends there. */
  initial: StepState;
}

export type BaseRef = { type: 'scratch' } | { type: 'image'; ref: string } | { type: 'stage'; stage: number };

/** Where COPY reads: the build context, a named context (`--build-context NAME=DIR`), a stage, an image. */
export type CopySource = { type: 'context'; name?: string } | { type: 'stage'; stage: number } | { type: 'image'; ref: string };

/** What is in effect when a step starts; part of every step's cache key. */
export interface StepState {
  /** The persisted environment (image env + ENV), in order. */
  env: string[];
  /** ARG values in scope (not persisted), in declaration order. */
  args: string[];
  workdir: string;
  user: string;
  shell: string[];
}

export interface StepBase {
  /** 1-based position in the plan. */
  id: number;
  stage: number;
  /** `[builder 2/5]`-style position within the stage. */
  position: string;
  original: string;
  location: SourceLocation;
  state: StepState;
  /** From a base image's ONBUILD trigger. */
  onbuild?: boolean;
}

export type Step = StepBase &
  (
    | { op: 'env'; pairs: KeyValue[] }
    | { op: 'arg'; args: ResolvedArg[] }
    | { op: 'label'; pairs: KeyValue[] }
    | { op: 'maintainer'; maintainer: string }
    | { op: 'expose'; ports: string[] }
    | { op: 'volume'; volumes: string[] }
    | { op: 'user'; user: string }
    | { op: 'workdir'; path: string }
    | { op: 'stopsignal'; signal: string }
    | { op: 'shell'; shell: string[] }
    | { op: 'cmd' | 'entrypoint'; command: CommandLine }
    | { op: 'onbuild'; expression: string }
    | ({ op: 'healthcheck' } & Pick<
        HealthcheckInstruction,
        'test' | 'interval' | 'timeout' | 'startPeriod' | 'startInterval' | 'retries'
      >)
    | {
        op: 'run';
        command: CommandLine;
        heredocs: Heredoc[];
        mounts: Mount[];
        network: NetworkMode;
        security: SecurityMode;
        /** The environment the command sees: state.env, then ARGs not shadowed by ENV. */
        runEnv: string[];
        /** Proxy build args passed to the command but kept out of the cache key. */
        proxyEnv: string[];
        /** Every ARG declared in the stage as NAME=value (ENV wins; unset is empty), as BuildKit's history shows them. */
        historyArgs: string[];
      }
    | ({
        op: 'copy';
        source: CopySource;
        /** Inline files from heredocs, by name, with variables expanded where the delimiter was unquoted. */
        inline: { name: string; content: string }[];
      } & Pick<
        CopyInstruction,
        'kind' | 'sources' | 'dest' | 'chown' | 'chmod' | 'link' | 'parents' | 'exclude' | 'checksum' | 'keepGitDir' | 'unpack'
      >)
  );

/** A step before it is numbered (Omit that distributes over the union). */
export type PendingStep = Step extends infer S ? (S extends unknown ? Omit<S, 'id'> : never) : never;

export interface ResolvedArg {
  name: string;
  value?: string;
  source: 'build-arg' | 'default' | 'global' | 'predefined' | 'unset';
}

export interface PlannedStage {
  index: number;
  name?: string;
  base: BaseRef;
  /** The FROM line's platform, resolved. */
  platform: string;
  /** Stages this one reads from (FROM, COPY --from, RUN --mount from=). */
  dependsOn: number[];
  steps: Step[];
  location: SourceLocation;
  original: string;
  /** False when a base image's env was not given: its variables were unknown. */
  baseEnvKnown: boolean;
}

export interface BuildPlan {
  file: string;
  /** Stages to build, dependencies first; the last one is the target. */
  stages: PlannedStage[];
  target: PlannedStage;
  /** Stages in the Dockerfile that the target does not need. */
  skippedStages: { index: number; name?: string }[];
  /** Registry images the build will need (FROM, COPY --from, --mount from=). */
  images: string[];
  platform: string;
  buildPlatform: string;
  warnings: Warning[];
  unusedBuildArgs: string[];
}

