/**
 * The planner: Dockerfile text + build options → an ordered build plan. Pure: no file
 * system, no network, no clock. Everything a step's cache key needs is resolved here
 * (ARG values, expanded words, working directory, user, shell, mounts); only what
 * depends on bytes (base image digests, context checksums) is left to the executor.
 *
 * Base images are unknown to a pure function; a caller that has pulled them passes
 * their config in `baseImages` (env, ONBUILD triggers). Without it the plan is still
 * complete, but variables a base image would define are left unset and not warned about.
 */
import { parseChmod } from '../dockerfile/chmod.js';
import { suggest } from '../dockerfile/flags.js';
import path from 'node:path';
import { DockerfileError, OptionError, type SourceLocation } from '../errors/index.js';
import {
  toInstruction,
  type ArgInstruction,
  type CommandLine,
  type CopyInstruction,
  type EnvInstruction,
  type FromInstruction,
  type LabelInstruction,
  type HealthcheckInstruction,
  type Instruction,
  type KeyValue,
  type NetworkMode,
  type SecurityMode,
} from '../dockerfile/instructions.js';
import { MountError, parseMount, type Mount } from '../dockerfile/mounts.js';
import { heredocBody, parse, type Heredoc } from '../dockerfile/parser.js';
import { expand, ShellSyntaxError, type EnvLookup, type ExpandResult } from '../dockerfile/shell.js';
import { parseDockerfile, type DockerfileModel, type Stage } from '../dockerfile/stages.js';
import { checkSecretName, didYouMean } from '../dockerfile/checks.js';
import { gitOptions, parseGitRef } from '../dockerfile/gitref.js';
import { WarningSink, type Warning } from '../dockerfile/warnings.js';
import { CHECK_BUILD_ARG, checkViolation, filterWarnings, withCheckBuildArg, withWarnings, type CheckScope } from '../dockerfile/lint.js';
import { formatPlatform, hostPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { familiarName, parseReference } from '../oci/reference.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];

/** Build args every Dockerfile may use in RUN without declaring them; never in the cache key. */
/** The proxy variables BuildKit passes to RUN from build args, each in both spellings. */
const PROXY_NAMES = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'] as const;

export const PROXY_ARGS: readonly string[] = PROXY_NAMES.flatMap((n) => [n.toUpperCase(), n]);

/**
 * The proxy variables a RUN gets from the build args, as BuildKit sets them: a build arg whose
 * name is one of the five proxy names in either case (`http_proxy`, `HTTP_PROXY`...) gives the
 * RUN both spellings with its value; when both spellings are given, the lower-case one (the
 * later of the names sorted) wins.
 */
export function proxyEnvOf(buildArgs: ReadonlyMap<string, string>): string[] {
  const values = new Map<string, string>();
  for (const k of [...buildArgs.keys()].sort()) {
    const lower = k.toLowerCase();
    if ((PROXY_NAMES as readonly string[]).includes(lower)) values.set(lower, buildArgs.get(k) as string);
  }
  const out: string[] = [];
  for (const name of PROXY_NAMES) {
    const v = values.get(name);
    if (v) out.push(`${name.toUpperCase()}=${v}`, `${name}=${v}`);
  }
  return out;
}

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

/**
 * The name a named context is looked up by, as BuildKit's: the image name in its familiar form
 * without `:latest` (`docker.io/library/alpine:latest` and `alpine` are both `alpine`); a name
 * that is not an image reference, as written.
 */
export function contextKey(name: string): string {
  try {
    const r = parseReference(name.toLowerCase() === name ? name : name.toLowerCase());
    const familiar = familiarName(r);
    const tag = r.tag !== undefined && r.tag !== 'latest' ? `:${r.tag}` : '';
    return `${familiar}${tag}${r.digest ? `@${r.digest}` : ''}`;
  } catch {
    return name;
  }
}

/** The end of a planned stage, as a stage FROM it starts. */
interface StageEnd {
  args: Map<string, string | undefined>;
  shellSet: boolean;
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

interface StepBase {
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
type PendingStep = Step extends infer S ? (S extends unknown ? Omit<S, 'id'> : never) : never;

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

function platformArgs(prefix: 'TARGET' | 'BUILD', p: Platform): [string, string][] {
  return [
    [`${prefix}PLATFORM`, formatPlatform(p)],
    [`${prefix}OS`, p.os],
    [`${prefix}ARCH`, p.architecture],
    [`${prefix}VARIANT`, p.variant ?? ''],
  ];
}

class Scope {
  readonly env = new Map<string, string>();
  readonly args = new Map<string, string | undefined>();

  lookup: EnvLookup = (name) => {
    if (this.env.has(name)) return this.env.get(name);
    return this.args.get(name);
  };

  /** Every name in scope, for suggestions. */
  names = (): string[] => [...new Set([...this.env.keys(), ...this.args.keys()])];
}

export function plan(source: string, options: PlanOptions = {}): BuildPlan {
  const file = options.file ?? 'Dockerfile';
  const model = parseDockerfile(source, { file, ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}) });
  return planModel(model, options);
}

/**
 * Plan a parsed Dockerfile. Warnings go through the model's check configuration; with
 * `check=error=true` the remaining ones fail the plan (unless `checkErrors` is false). An error
 * carries the warnings found before it.
 */
export function planModel(model: DockerfileModel, options: PlanOptions = {}): BuildPlan {
  const sink = new WarningSink();
  sink.items.push(...model.warnings);
  const checks = withCheckBuildArg(model.checks, options.buildArgs);
  let planned: BuildPlan;
  try {
    planned = planWith(model, options, sink, checks);
  } catch (err) {
    throw withWarnings(err as Error, filterWarnings(sink.items, checks));
  }
  const violation = options.checkErrors === false ? undefined : checkViolation(planned.warnings, checks);
  if (violation) throw violation;
  return planned;
}

function planWith(model: DockerfileModel, options: PlanOptions, sink: WarningSink, checks: CheckScope): BuildPlan {
  const buildArgs = new Map(Object.entries(options.buildArgs ?? {}));
  const buildPlatform = options.buildPlatform ? parsePlatform(options.buildPlatform) : hostPlatform();
  const targetPlatform = options.platform ? parsePlatform(options.platform) : buildPlatform;
  const predefined = new Map<string, string>([
    ...platformArgs('TARGET', targetPlatform),
    ...platformArgs('BUILD', buildPlatform),
    // The target as asked for; without one, the last stage's name, or "default" (BuildKit 28).
    ['TARGETSTAGE', options.target ?? model.stages.at(-1)?.name ?? 'default'],
  ]);
  const consumed = new Set<string>();
  const escapeToken = model.escapeToken;

  const expandWith = (
    word: string,
    lookup: EnvLookup,
    where: SourceLocation,
    keyword: string,
    warnUndefined: boolean,
    known: (name: string) => boolean = () => false,
    names: () => string[] = () => [],
  ): ExpandResult => {
    try {
      const r = expand(word, lookup, { escapeToken });
      if (warnUndefined) {
        for (const name of r.unmatched) {
          if (!known(name)) sink.add('UndefinedVar', `Usage of undefined variable '$${name}'${didYouMean(`$${name}`, names().map((n) => `$${n}`))}`, where);
        }
      }
      return r;
    } catch (err) {
      if (err instanceof ShellSyntaxError) {
        throw new DockerfileError('DOCKERFILE_EXPANSION', err.message, where, keyword);
      }
      throw err;
    }
  };

  // Global scope: ARGs before the first FROM, usable in FROM lines.
  const global = new Scope();
  const expandDefault = (word: string, lookup: EnvLookup, where: SourceLocation): string => expandWith(word, lookup, where, 'ARG', false).word;
  for (const [k, v] of globalArgValues(model.globalArgs, predefined, buildArgs, expandDefault)) global.args.set(k, v);
  const globalDeclared = new Set(model.globalArgs.flatMap((ins) => ins.args.map((a) => a.name)));
  for (const name of globalDeclared) consumed.add(name);
  checkDefaultBaseNames(model, predefined, escapeToken, sink);

  // Resolve each stage's FROM (pure: global args only) and its dependencies.
  const stages = model.stages;
  const byName = new Map<string, Stage>();
  for (const s of stages) if (s.name) byName.set(s.name, s);

  const resolveStageRef = (ref: string, current: Stage, where: SourceLocation, keyword: string): Stage | undefined => {
    if (/^\d+$/.test(ref)) {
      const idx = Number(ref);
      const st = stages[idx];
      if (!st) {
        throw new DockerfileError(
          'DOCKERFILE_STAGE',
          `invalid stage index ${ref}: the Dockerfile has ${stages.length} stage(s)`,
          where,
          keyword,
        );
      }
      if (idx === current.index) {
        throw new DockerfileError('DOCKERFILE_STAGE', `stage ${ref} cannot refer to itself`, where, keyword);
      }
      return st;
    }
    const st = byName.get(ref.toLowerCase());
    if (st === current) {
      throw new DockerfileError('DOCKERFILE_STAGE', `stage "${ref}" cannot refer to itself`, where, keyword);
    }
    return st;
  };

  interface StageHead {
    base: BaseRef;
    platform: string;
    /** The named context that takes this stage's place. */
    replaced?: NamedContextRef;
  }
  const named = (name: string): NamedContextRef | undefined => options.namedContexts?.[contextKey(name)];
  const imageBase = (ref: string): BaseRef => (ref.toLowerCase() === 'scratch' ? { type: 'scratch' } : { type: 'image', ref });
  const replacedByDir = (st: Stage): boolean => st.name !== undefined && named(st.name)?.type === 'dir';
  const dirNotAnImage = (name: string, where: SourceLocation, keyword: string): DockerfileError =>
    new DockerfileError(
      'DOCKERFILE_STAGE',
      `the named context "${name}" is a directory: COPY --from can read it, but ${keyword === 'FROM' ? 'a stage cannot start FROM it' : 'RUN --mount cannot mount it yet'} (give it as docker-image:// or oci-layout://)`,
      where,
      keyword,
    );
  const heads: StageHead[] = stages.map((stage) => {
    const from = stage.from;
    const known = [...globalDeclared, ...predefined.keys()];
    const fromWord = (word: string): ExpandResult => {
      const r = expandWith(word, global.lookup, from.location, 'FROM', false);
      for (const name of r.unmatched) {
        if (known.includes(name)) continue;
        sink.add('UndefinedArgInFrom', `FROM argument '${name}' is not declared${didYouMean(name, known)}`, from.location);
      }
      return r;
    };
    const ref = fromWord(from.image).word;
    if (ref === '' || /\s/.test(ref)) {
      throw new DockerfileError(
        'DOCKERFILE_FROM',
        `invalid base image reference "${ref}" (from "${from.image}")`,
        from.location,
        'FROM',
      );
    }
    let platform = formatPlatform(targetPlatform);
    if (from.platform !== undefined) {
      const r = fromWord(from.platform);
      checkFromPlatform(from, r, global.lookup('TARGETPLATFORM'), sink);
      platform = formatPlatform(fromPlatform(from, r, known));
    }
    let base: BaseRef;
    const earlier = byName.get(ref.toLowerCase());
    // A stage that a named context replaces starts from it, and none of its instructions run (BuildKit).
    const replacing = stage.name !== undefined ? named(stage.name) : undefined;
    if (replacing) return { base: replacing.type === 'image' ? imageBase(replacing.ref) : { type: 'scratch' }, platform, replaced: replacing };
    if (ref.toLowerCase() === 'scratch') base = { type: 'scratch' };
    else if (earlier && earlier.index < stage.index) {
      if (replacedByDir(earlier)) throw dirNotAnImage(earlier.name as string, from.location, 'FROM');
      base = { type: 'stage', stage: earlier.index };
    } else {
      const ctx = named(ref);
      if (ctx?.type === 'dir') throw dirNotAnImage(ref, from.location, 'FROM');
      base = ctx ? imageBase(ctx.ref) : { type: 'image', ref };
    }
    return { base, platform };
  });

  // Dependencies need the stage's own args (COPY --from=$X), so they are found while
  // planning each stage; first pick the target and walk FROM edges and literal refs.
  let targetStage: Stage;
  if (options.target !== undefined) {
    const t = byName.get(options.target.toLowerCase());
    if (!t) {
      const names = stages.flatMap((s) => (s.name ? [s.name] : []));
      const close = suggest(options.target.toLowerCase(), names);
      throw new OptionError(
        'TARGET_NOT_FOUND',
        // BuildKit's wording when a stage's name is close; else the names there are.
        close
          ? `target stage "${options.target}" could not be found (did you mean ${close}?)`
          : `target stage "${options.target}" could not be found in ${model.file}` + (names.length ? ` (stages: ${names.join(', ')})` : ' (it has no named stages)'),
      );
    }
    targetStage = t;
  } else {
    targetStage = stages[stages.length - 1] as Stage;
  }

  const planned = new Map<number, PlannedStage>();
  const visiting = new Set<number>();
  const order: PlannedStage[] = [];
  const images = new Set<string>();
  let nextId = 1;
  const pendingSteps: { stage: PlannedStage; steps: PendingStep[] }[] = [];
  /** What a stage FROM a planned stage starts with: its ARGs in scope, whether its image config has a Shell. */
  const stageEnds = new Map<number, StageEnd>();

  /** A stage a stage being planned depends on: planned first, by the loop in `visit`. */
  interface Needed {
    stage: Stage;
    where: SourceLocation;
  }
  type Planning<T> = Generator<Needed, T, PlannedStage>;

  /**
   * Plan `stage` and, first, what it depends on. Depth-first as a recursion would go, but with
   * a stack of its own: a stage's planning yields each stage it needs and is resumed once that
   * one is planned, so a chain of 10,000 stages (each FROM the one before) is as deep in the
   * call stack as a chain of two.
   */
  const visit = (stage: Stage, from: SourceLocation | undefined): PlannedStage => {
    const stack: Planning<PlannedStage>[] = [planStageAndDeps(stage, from)];
    let value: PlannedStage | undefined;
    for (;;) {
      const r = (stack[stack.length - 1] as Planning<PlannedStage>).next(value as PlannedStage);
      if (r.done) {
        stack.pop();
        if (stack.length === 0) return r.value;
        value = r.value;
      } else {
        stack.push(planStageAndDeps(r.value.stage, r.value.where));
        value = undefined;
      }
    }
  };

  const planStageAndDeps = function* (stage: Stage, from: SourceLocation | undefined): Planning<PlannedStage> {
    const done = planned.get(stage.index);
    if (done) return done;
    if (visiting.has(stage.index)) {
      // Named as BuildKit names it: the first stage of the Dockerfile in the cycle.
      const path = [...visiting];
      const first = stages[Math.min(...path.slice(path.indexOf(stage.index)))] as Stage;
      throw new DockerfileError(
        'DOCKERFILE_CYCLE',
        `circular dependency detected on stage: ${first.name ?? `stage-${first.index}`}`,
        from ?? stage.from.location,
      );
    }
    visiting.add(stage.index);
    const head = heads[stage.index] as StageHead;
    const deps: number[] = [];
    const addDep = function* (s: Stage, where: SourceLocation): Planning<void> {
      yield { stage: s, where };
      if (!deps.includes(s.index)) deps.push(s.index);
    };
    if (head.base.type === 'stage') yield* addDep(stages[head.base.stage] as Stage, stage.from.location);
    if (head.base.type === 'image') images.add(head.base.ref);
    if (head.replaced?.type === 'dir') throw dirNotAnImage(stage.name as string, stage.from.location, 'FROM');
    const result = yield* planStage(head.replaced ? { ...stage, instructions: [] } : stage, head, addDep);
    visiting.delete(stage.index);
    const ps: PlannedStage = {
      index: stage.index,
      ...(stage.name ? { name: stage.name } : {}),
      base: head.base,
      platform: head.platform,
      dependsOn: deps,
      steps: [],
      location: stage.from.location,
      original: stage.from.original,
      baseEnvKnown: result.baseEnvKnown,
    };
    planned.set(stage.index, ps);
    order.push(ps);
    pendingSteps.push({ stage: ps, steps: result.steps });
    stageEnds.set(stage.index, result.end);
    return ps;
  };

  const planStage = function* (
    stage: Stage,
    head: StageHead,
    addDep: (s: Stage, where: SourceLocation) => Planning<void>,
  ): Planning<{ steps: PendingStep[]; baseEnvKnown: boolean; end: StageEnd }> {
    const scope = new Scope();
    const declared = new Set<string>();
    let workdir = '/';
    let user = '';
    let shell = [...DEFAULT_SHELL];
    /** A SHELL was set (here, in a parent stage, by the base image): the image config has one. */
    let shellSet = false;
    let baseEnvKnown = true;
    let triggers: Instruction[] = [];

    if (head.base.type === 'stage') {
      const parent = planned.get(head.base.stage) as PlannedStage;
      const last = finalState(parent, pendingSteps);
      for (const kv of last.env) setKV(scope.env, kv);
      workdir = last.workdir;
      user = last.user;
      shell = [...last.shell];
      // The parent's ARGs stay in scope, as in BuildKit, where they are part of the stage's state.
      const end = stageEnds.get(parent.index);
      for (const [k, v] of end?.args ?? []) scope.args.set(k, v);
      shellSet = end?.shellSet ?? false;
      baseEnvKnown = parent.baseEnvKnown;
      // FROM an earlier stage runs the ONBUILD instructions that stage declared, as BuildKit does.
      const parentSteps = pendingSteps.find((p) => p.stage === parent)?.steps ?? [];
      triggers = parentSteps.flatMap((s) => (s.op === 'onbuild' && !s.onbuild ? [parseTrigger(s.expression, stage.from.location, model.file)] : []));
    } else if (head.base.type === 'image') {
      const info = options.baseImages?.[head.base.ref];
      if (info) {
        for (const kv of info.env ?? []) setKV(scope.env, kv);
        if (info.workingDir) workdir = info.workingDir;
        if (info.user) user = info.user;
        if (info.shell?.length) {
          shell = [...info.shell];
          shellSet = true;
        }
        triggers = (info.onBuild ?? []).map((t) => parseTrigger(t, stage.from.location, model.file));
      } else {
        baseEnvKnown = false;
      }
    }
    if (baseEnvKnown && !scope.env.has('PATH')) scope.env.set('PATH', DEFAULT_PATH);

    const warnUndefined = baseEnvKnown;
    const steps: PendingStep[] = [];
    const all: { ins: Instruction; onbuild: boolean }[] = [
      ...triggers.map((ins) => ({ ins, onbuild: true })),
      ...stage.instructions.map((ins) => ({ ins, onbuild: false })),
    ];
    let sawWorkdir = false;
    const usedOnce = new Map<string, SourceLocation>();
    // Step numbers as BuildKit counts them: FROM an image is the first, then each RUN, COPY,
    // ADD and WORKDIR, and every ONBUILD trigger; config-only instructions have none of their own.
    const counted = (ins: Instruction, onbuild: boolean): boolean => onbuild || ['RUN', 'COPY', 'ADD', 'WORKDIR'].includes(ins.kind);
    const total = (head.base.type === 'image' ? 1 : 0) + all.filter(({ ins, onbuild }) => counted(ins, onbuild)).length;
    let index = head.base.type === 'image' ? 1 : 0;
    const width = String(total).length;
    for (const { ins, onbuild } of all) {
      if (counted(ins, onbuild)) index++;
      const where = ins.location;
      const state = (): StepState => ({
        env: [...scope.env].map(([k, v]) => `${k}=${v}`),
        args: [...scope.args].filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`),
        workdir,
        user,
        shell: [...shell],
      });
      const base = {
        stage: stage.index,
        // BuildKit names the stage unless the Dockerfile has only one.
        position: `[${model.stages.length > 1 ? `${stage.name ?? `stage-${stage.index}`} ` : ''}${String(index).padStart(width)}/${total}]`,
        original: ins.original,
        location: where,
        state: state(),
        ...(onbuild ? { onbuild: true } : {}),
      };
      // An ARG declared without a value is not undefined (BuildKit).
      const declaredArg = (name: string): boolean => scope.args.has(name);
      const one = (w: string): string => expandWith(w, scope.lookup, where, ins.kind, warnUndefined, declaredArg, scope.names).word;
      const many = (w: string): string[] => expandWith(w, scope.lookup, where, ins.kind, warnUndefined, declaredArg, scope.names).words;
      const resolveFrom = function* (ref: string, keyword: string, mountTarget?: string): Planning<CopySource> {
        const st = resolveStageRef(ref, stage, where, keyword);
        // A stage a directory context replaces is not built: COPY reads the directory.
        if (st && replacedByDir(st)) {
          if (mountTarget !== undefined) throw dirNotAnImage(st.name as string, where, keyword);
          return { type: 'context', name: contextKey(st.name as string) };
        }
        // A cycle is reported first, as BuildKit checks for cycles before it reads any stage.
        if (st) yield* addDep(st, where);
        if (st && st.index > stage.index) {
          // A stage is built before the ones that read from it: one defined later cannot be read (BuildKit's words).
          const here = stage.name ?? `stage-${stage.index}`;
          throw new DockerfileError(
            'DOCKERFILE_STAGE',
            mountTarget !== undefined
              ? `cannot mount from stage "${ref}" to "${mountTarget}", stage needs to be defined before current command`
              : `cannot copy from stage "${ref}", it needs to be defined before current stage "${here}"`,
            where,
            keyword,
          );
        }
        if (st) return { type: 'stage', stage: st.index };
        if (/^\d+$/.test(ref) || ref === '' || /\s/.test(ref)) {
          throw new DockerfileError('DOCKERFILE_STAGE', `invalid stage or image reference "${ref}"`, where, keyword);
        }
        const ctx = named(ref);
        if (ctx?.type === 'dir') {
          if (mountTarget !== undefined) throw dirNotAnImage(ref, where, keyword);
          return { type: 'context', name: contextKey(ref) };
        }
        const image = ctx ? ctx.ref : ref;
        images.add(image);
        return { type: 'image', ref: image };
      };

      switch (ins.kind) {
        case 'ENV': {
          // Every value is expanded with the environment from before the instruction.
          const pairs = ins.pairs.map(({ key, value }) => ({ key, value: one(value) }));
          lintKeyValues(ins, sink);
          for (const { key, value } of pairs) scope.env.set(key, value);
          steps.push({ ...base, op: 'env', pairs });
          break;
        }
        case 'ARG': {
          const resolved = resolveArgs(ins, (w) => one(w));
          for (const a of ins.args) checkSecretName('ARG', a.name, ins, sink);
          for (const a of resolved) {
            declared.add(a.name);
            consumed.add(a.name);
            scope.args.set(a.name, a.value);
          }
          steps.push({ ...base, op: 'arg', args: resolved });
          break;
        }
        case 'LABEL': {
          const pairs = ins.pairs.map(({ key, value }) => ({ key: one(key), value: one(value) }));
          lintKeyValues(ins, sink);
          steps.push({ ...base, op: 'label', pairs });
          break;
        }
        case 'MAINTAINER':
          steps.push({ ...base, op: 'maintainer', maintainer: ins.maintainer });
          break;
        case 'EXPOSE': {
          const ports = ins.ports.flatMap((p) => many(p)).flatMap((p) => normalisePorts(p, where, sink));
          steps.push({ ...base, op: 'expose', ports });
          break;
        }
        case 'VOLUME': {
          const volumes = ins.volumes.map((v) => one(v));
          for (const v of volumes) {
            if (v.trim() === '') {
              throw new DockerfileError('DOCKERFILE_INSTRUCTION', 'VOLUME specified can not be an empty string', where, 'VOLUME');
            }
          }
          steps.push({ ...base, op: 'volume', volumes });
          break;
        }
        case 'USER': {
          user = one(ins.user);
          if (user === '') throw new DockerfileError('DOCKERFILE_INSTRUCTION', 'USER cannot be empty', where, 'USER');
          steps.push({ ...base, op: 'user', user });
          break;
        }
        case 'WORKDIR': {
          const p = one(ins.path);
          if (p === '') throw new DockerfileError('DOCKERFILE_INSTRUCTION', 'WORKDIR cannot be empty', where, 'WORKDIR');
          if (!p.startsWith('/') && !sawWorkdir && head.base.type !== 'stage') {
            sink.add(
              'WorkdirRelativePath',
              `Relative workdir "${p}" can have unexpected results if the base image changes`,
              where,
            );
          }
          sawWorkdir = true;
          workdir = path.posix.resolve(workdir, p);
          steps.push({ ...base, op: 'workdir', path: workdir });
          break;
        }
        case 'STOPSIGNAL': {
          const signal = one(ins.signal);
          if (!/^(SIG)?[A-Z][A-Z0-9]*([+-]\d+)?$|^\d+$/i.test(signal)) {
            throw new DockerfileError('DOCKERFILE_INSTRUCTION', `invalid signal: ${signal}`, where, 'STOPSIGNAL');
          }
          steps.push({ ...base, op: 'stopsignal', signal });
          break;
        }
        case 'SHELL':
          shell = [...ins.shell];
          shellSet = true;
          steps.push({ ...base, op: 'shell', shell: [...shell] });
          break;
        case 'CMD':
        case 'ENTRYPOINT':
          checkUsedOnce(ins, usedOnce, sink);
          // Only when no SHELL was set (here, in a parent stage, in the base image): one says the form is meant.
          if (ins.command.form === 'shell' && !shellSet) {
            sink.add('JSONArgsRecommended', `JSON arguments recommended for ${ins.kind} to prevent unintended behavior related to OS signals`, where);
          }
          steps.push({ ...base, op: ins.kind === 'CMD' ? 'cmd' : 'entrypoint', command: ins.command });
          break;
        case 'ONBUILD':
          steps.push({ ...base, op: 'onbuild', expression: ins.expression });
          break;
        case 'HEALTHCHECK': {
          checkUsedOnce(ins, usedOnce, sink);
          const { test, interval, timeout, startPeriod, startInterval, retries } = ins;
          steps.push({
            ...base,
            op: 'healthcheck',
            test,
            ...(interval !== undefined ? { interval } : {}),
            ...(timeout !== undefined ? { timeout } : {}),
            ...(startPeriod !== undefined ? { startPeriod } : {}),
            ...(startInterval !== undefined ? { startInterval } : {}),
            ...(retries !== undefined ? { retries } : {}),
          });
          break;
        }
        case 'RUN': {
          const mounts: Mount[] = [];
          for (const raw of ins.rawMounts) {
            // from= names a stage or an image as written: a variable there is refused, as BuildKit refuses it.
            for (const field of raw.split(',')) {
              const eq = field.indexOf('=');
              const value = field.slice(eq + 1);
              const dollar = value.indexOf('$');
              if (eq > 0 && field.slice(0, eq).trim().toLowerCase() === 'from' && dollar !== -1 && dollar !== value.length - 1) {
                throw new DockerfileError('DOCKERFILE_FLAG', "'from' doesn't support variable expansion, define alias stage instead", where, 'RUN');
              }
            }
            const text = one(raw);
            let m: Mount;
            try {
              m = parseMount(text);
            } catch (err) {
              if (!(err instanceof MountError)) throw err;
              throw new DockerfileError('DOCKERFILE_FLAG', `--mount=${text}: ${err.message}`, where, 'RUN');
            }
            if (m.from !== undefined) {
              const src = yield* resolveFrom(m.from, 'RUN', m.target ?? '');
              m.from = src.type === 'stage' ? String(src.stage) : src.type === 'image' ? src.ref : m.from;
            }
            mounts.push(m);
          }
          const runEnv = [...scope.env].map(([k, v]) => `${k}=${v}`);
          for (const [k, v] of scope.args) if (v !== undefined && !scope.env.has(k)) runEnv.push(`${k}=${v}`);
          const proxyEnv = proxyEnvOf(buildArgs).filter((e) => {
            const k = e.slice(0, e.indexOf('='));
            return !scope.args.has(k) && !scope.env.has(k);
          });
          steps.push({
            ...base,
            op: 'run',
            command: ins.command,
            heredocs: ins.heredocs,
            mounts,
            network: ins.network ?? 'default',
            security: ins.security ?? 'sandbox',
            runEnv,
            proxyEnv,
            historyArgs: [...scope.args].map(([k, v]) => `${k}=${scope.env.get(k) ?? v ?? ''}`),
          });
          break;
        }
        case 'COPY':
        case 'ADD': {
          // As BuildKit 28: --from names a stage or an image as written, never through a variable.
          if (ins.from !== undefined && /\$(\{|[A-Za-z_])/.test(ins.from)) {
            throw new DockerfileError('DOCKERFILE_FLAG', 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', where, ins.kind);
          }
          const source: CopySource = ins.from !== undefined ? yield* resolveFrom(ins.from, ins.kind) : { type: 'context' };
          const heredocNames = new Set(ins.heredocs.map((h) => h.name));
          const inline = ins.heredocs.map((h) => ({
            name: h.name,
            content: h.expand ? expandHeredoc(heredocBody(h), scope.lookup) : heredocBody(h),
          }));
          const sources = ins.sources.map((s) => (isHeredocRef(s, heredocNames) ? s : one(s)));
          // An empty --chmod is none (BuildKit); a mode that came from a variable is checked here.
          const checksum = ins.checksum !== undefined ? one(ins.checksum) : undefined;
          if (checksum !== undefined) {
            // As BuildKit: one source, fetched (HTTP(S) or git), never a local one.
            if (sources.length !== 1) throw new DockerfileError('DOCKERFILE_FLAG', "checksum can't be specified for multiple sources", where, ins.kind);
            if (!/^(https?:\/\/|git@|git:\/\/)/.test(sources[0] as string)) throw new DockerfileError('DOCKERFILE_FLAG', 'checksum requires HTTP(S) or Git sources', where, ins.kind);
          }
          if (ins.kind === 'ADD') {
            const fetched = sources.filter((s) => !isHeredocRef(s, heredocNames));
            checkFetchedSources(fetched, { ...(ins.keepGitDir !== undefined ? { keepGitDir: ins.keepGitDir } : {}), ...(checksum !== undefined ? { checksum } : {}) }, (m) => new DockerfileError('DOCKERFILE_FLAG', m, where, ins.kind));
          }
          const chmod = ins.chmod !== undefined ? one(ins.chmod) : undefined;
          if (chmod) {
            try {
              parseChmod(chmod);
            } catch (err) {
              throw new DockerfileError('DOCKERFILE_FLAG', (err as Error).message, where, ins.kind);
            }
          }
          const step: PendingStep = {
            ...base,
            op: 'copy',
            kind: ins.kind,
            source,
            sources,
            dest: one(ins.dest),
            inline,
            link: ins.link,
            parents: ins.parents,
            exclude: ins.exclude.map((e) => one(e)),
            ...(ins.keepGitDir !== undefined ? { keepGitDir: ins.keepGitDir } : {}),
            ...(ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
            ...(ins.chown !== undefined ? { chown: one(ins.chown) } : {}),
            ...(chmod ? { chmod } : {}),
            ...(checksum !== undefined ? { checksum } : {}),
          };
          steps.push(step);
          break;
        }
        case 'FROM':
          // FROM never reaches here: stages split on it.
          break;
      }
    }
    return { steps, baseEnvKnown, end: { args: scope.args, shellSet } };

    function resolveArgs(ins: ArgInstruction, one: (w: string) => string): ResolvedArg[] {
      // A default is expanded only when it is the value: one overridden by a build arg may
      // name variables that are not set (`ARG FOO=${missing:?}` with --build-arg FOO=x builds).
      return ins.args.map((decl) => resolveArg(decl, one));
    }

    function resolveArg(decl: ArgInstruction['args'][number], one: (w: string) => string): ResolvedArg {
      if (buildArgs.has(decl.name)) return { name: decl.name, value: buildArgs.get(decl.name), source: 'build-arg' };
      if (decl.defaultValue !== undefined) return { name: decl.name, value: one(decl.defaultValue), source: 'default' };
      if (global.args.has(decl.name) && globalDeclared.has(decl.name)) {
        const v = global.args.get(decl.name);
        return v === undefined ? { name: decl.name, source: 'unset' } : { name: decl.name, value: v, source: 'global' };
      }
      const p = predefined.get(decl.name);
      if (p !== undefined) return { name: decl.name, value: p, source: 'predefined' };
      return { name: decl.name, source: 'unset' };
    }
  };

  visit(targetStage, undefined);
  // Number steps in build order.
  for (const ps of order) {
    const entry = pendingSteps.find((p) => p.stage === ps) as { steps: PendingStep[] };
    ps.steps = entry.steps.map((s) => ({ ...s, id: nextId++ }) as Step);
  }

  for (const k of [...PROXY_ARGS, CHECK_BUILD_ARG, 'BUILDKIT_SANDBOX_HOSTNAME']) consumed.add(k);
  const unusedBuildArgs = [...buildArgs.keys()].filter((k) => !consumed.has(k)).sort();
  if (unusedBuildArgs.length > 0) {
    sink.add('UnusedBuildArg', `One or more build-args [${unusedBuildArgs.join(' ')}] were not consumed`);
  }

  const warnings = filterWarnings(sink.items, checks);
  return {
    file: model.file,
    stages: order,
    target: order[order.length - 1] as PlannedStage,
    skippedStages: stages.filter((s) => !planned.has(s.index)).map((s) => (s.name ? { index: s.index, name: s.name } : { index: s.index })),
    images: [...images],
    platform: formatPlatform(targetPlatform),
    buildPlatform: formatPlatform(buildPlatform),
    warnings,
    unusedBuildArgs,
  };
}

function setKV(map: Map<string, string>, kv: string): void {
  const eq = kv.indexOf('=');
  if (eq < 0) map.set(kv, '');
  else map.set(kv.slice(0, eq), kv.slice(eq + 1));
}

/** The state after a planned stage's last step (for `FROM <stage>`). */
function finalState(ps: PlannedStage, pending: { stage: PlannedStage; steps: PendingStep[] }[]): StepState {
  const steps = pending.find((p) => p.stage === ps)?.steps ?? [];
  const last = steps[steps.length - 1];
  if (!last) return { env: [], args: [], workdir: '/', user: '', shell: [...DEFAULT_SHELL] };
  const env = new Map<string, string>();
  for (const kv of last.state.env) setKV(env, kv);
  let { workdir, user, shell } = last.state;
  switch (last.op) {
    case 'env':
      for (const p of last.pairs) env.set(p.key, p.value);
      break;
    case 'workdir':
      workdir = last.path;
      break;
    case 'user':
      user = last.user;
      break;
    case 'shell':
      shell = last.shell;
      break;
    default:
      break;
  }
  return { env: [...env].map(([k, v]) => `${k}=${v}`), args: [], workdir, user, shell };
}

function parseTrigger(expression: string, where: SourceLocation, file: string): Instruction {
  const result = parse(expression, { file: `${file} (ONBUILD trigger of the base image)` });
  const node = result.nodes[0];
  if (!node || result.nodes.length !== 1) {
    throw new DockerfileError('DOCKERFILE_ONBUILD', `invalid ONBUILD trigger in base image: ${expression}`, where);
  }
  const keyword = node.keyword.toUpperCase();
  if (keyword === 'ONBUILD' || keyword === 'FROM' || keyword === 'MAINTAINER') {
    throw new DockerfileError('DOCKERFILE_ONBUILD', `${keyword} isn't allowed as an ONBUILD trigger`, where);
  }
  const ins = toInstruction(node, { file, result, warnings: new WarningSink() });
  ins.location = where;
  return ins;
}

/** The here-document a COPY/ADD source names (`<<EOF`, `<<-"EOF"`, `3<<EOF`), when it is one of `names`. */
export function heredocRefName(word: string, names: ReadonlySet<string>): string | undefined {
  const m = /^\d*<<-?(.*)$/.exec(word);
  if (!m) return undefined;
  const name = (m[1] as string).replace(/^["']|["']$/g, '');
  return names.has(name) ? name : undefined;
}

function isHeredocRef(word: string, names: Set<string>): boolean {
  return heredocRefName(word, names) !== undefined;
}

/**
 * The body of a here-document with an unquoted delimiter, as BuildKit expands it: `$VAR` and
 * `${...}` expanded, quotes kept as they are, and a backslash (always the backslash, whatever
 * `# escape=` says) makes the next character literal and goes: `\$X` is `$X`, a backslash at
 * the end of a line leaves the line break.
 */
function expandHeredoc(body: string, lookup: EnvLookup): string {
  try {
    return expand(body, lookup, { escapeToken: '\\', skipQuotes: true }).word;
  } catch {
    return body;
  }
}

/**
 * `80`, `80/tcp`, `8000-8002/udp` → `["80/tcp"]`, one entry per port of a range. An IP address or
 * a host port (`127.0.0.1:80:80`, `5000:5000`) is accepted with an ExposeInvalidFormat warning
 * and only the container port kept, as BuildKit does.
 */
function normalisePorts(spec: string, where: SourceLocation, sink: WarningSink): string[] {
  const fail = (detail: string): never => {
    throw new DockerfileError('DOCKERFILE_INSTRUCTION', detail, where, 'EXPOSE');
  };
  const { ip, hostPort, containerPort } = splitPortSpec(spec);
  const m = /^(\d+)(?:-(\d+))?(?:\/([a-zA-Z]+))?$/.exec(containerPort);
  if (!m) return fail(`invalid containerPort: ${containerPort}`);
  let proto = m[3] ?? 'tcp';
  if (proto !== proto.toLowerCase()) {
    sink.add('ExposeProtoCasing', `Defined protocol '${spec}' in EXPOSE instruction should be lowercase`, where);
    proto = proto.toLowerCase();
  }
  if (ip !== '' || hostPort !== '') {
    sink.add('ExposeInvalidFormat', `EXPOSE instruction should not define an IP address or host-port mapping, found '${spec}'`, where);
  }
  if (!['tcp', 'udp', 'sctp'].includes(proto)) fail(`invalid proto: ${proto}`);
  if (ip !== '' && !isIPAddress(ip.replace(/^\[(.*)\]$/, '$1'))) fail(`invalid IP address: ${ip}`);
  if (hostPort !== '' && !/^\d+(-\d+)?$/.test(hostPort)) fail(`invalid hostPort: ${hostPort}`);
  const start = Number(m[1]);
  const end = m[2] !== undefined ? Number(m[2]) : start;
  if (start < 1 || end > 65535 || end < start) fail(`invalid port range: ${containerPort}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${proto}`);
  return out;
}

/** An IPv4 (dotted decimal, no leading zeros) or IPv6 address, as Go's net.ParseIP takes them. */
function isIPAddress(s: string): boolean {
  const v4 = (t: string): boolean => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(t);
  if (v4(s)) return true;
  const halves = s.split('::');
  if (halves.length > 2) return false;
  const groups = halves.flatMap((h) => (h === '' ? [] : h.split(':')));
  const last = groups.at(-1) ?? '';
  const words = groups.length + (v4(last) ? 1 : 0);
  const hex = (v4(last) ? groups.slice(0, -1) : groups).every((g) => /^[0-9a-fA-F]{1,4}$/.test(g));
  return hex && (halves.length === 2 ? words < 8 : words === 8);
}

/** `[ip:]hostPort:containerPort`: the last two `:`-separated parts are the ports, the rest the IP. */
function splitPortSpec(spec: string): { ip: string; hostPort: string; containerPort: string } {
  const parts = spec.split(':');
  const n = parts.length;
  if (n === 1) return { ip: '', hostPort: '', containerPort: spec };
  return { ip: parts.slice(0, n - 2).join(':'), hostPort: parts[n - 2] as string, containerPort: parts[n - 1] as string };
}

/**
 * The values of the global ARGs (before the first FROM), in order: a build argument, else the
 * default expanded with the ARGs before it, else a predefined value.
 */
function globalArgValues(
  globalArgs: readonly ArgInstruction[],
  predefined: ReadonlyMap<string, string>,
  buildArgs: ReadonlyMap<string, string>,
  expandDefault: (word: string, lookup: EnvLookup, where: SourceLocation) => string,
): Map<string, string | undefined> {
  const values = new Map<string, string | undefined>(predefined);
  for (const ins of globalArgs) {
    const before = new Map(values);
    const lookup: EnvLookup = (n) => before.get(n);
    for (const decl of ins.args) {
      let value: string | undefined;
      if (buildArgs.has(decl.name)) value = buildArgs.get(decl.name);
      else if (decl.defaultValue !== undefined) value = expandDefault(decl.defaultValue, lookup, ins.location);
      else value = predefined.get(decl.name);
      values.set(decl.name, value);
    }
  }
  return values;
}

/**
 * InvalidDefaultArgInFrom: a FROM whose image name is not a valid reference when the global ARGs
 * keep their defaults (no build arguments). An expansion error ends the check quietly: the build
 * reports it.
 */
function checkDefaultBaseNames(model: DockerfileModel, predefined: ReadonlyMap<string, string>, escapeToken: string, sink: WarningSink): void {
  try {
    const expandDefault = (word: string, lookup: EnvLookup): string => expand(word, lookup, { escapeToken }).word;
    const defaults = globalArgValues(model.globalArgs, predefined, new Map(), expandDefault);
    for (const { from } of model.stages) {
      const name = expand(from.image, (n) => defaults.get(n), { escapeToken }).word;
      if (!isValidReference(name)) {
        sink.add('InvalidDefaultArgInFrom', `Default value for ARG ${from.image} results in empty or invalid base image name`, from.location);
      }
    }
  } catch (err) {
    if (!(err instanceof ShellSyntaxError)) throw err;
  }
}

function isValidReference(name: string): boolean {
  try {
    parseReference(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * A FROM line's expanded `--platform`, failing as BuildKit does: an empty value, a component
 * that is not `[A-Za-z0-9_.-]+`, each with a "did you mean" for a variable that was not set.
 */
function fromPlatform(from: FromInstruction, r: ExpandResult, known: readonly string[]): Platform {
  const written = from.platform as string;
  const hint = [...r.unmatched].map((n) => didYouMean(n, known)).find((h) => h !== '') ?? '';
  const fail = (detail: string): never => {
    throw new DockerfileError('DOCKERFILE_FROM', detail + hint, from.location, 'FROM');
  };
  if (r.word === '') fail(`empty platform value from expression ${written}`);
  const unparsable = `failed to parse platform ${written}: `;
  const parts = r.word.split('/');
  // Four components at most, the last with the rest (Go's SplitN), each checked.
  const bad = [...parts.slice(0, 3), ...(parts.length > 3 ? [parts.slice(3).join('/')] : [])].find((part) => !/^[A-Za-z0-9_.-]+$/.test(part));
  if (bad !== undefined) fail(`${unparsable}"${bad}" is an invalid component of "${r.word}": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument`);
  try {
    return parsePlatform(r.word);
  } catch (err) {
    return fail(unparsable + (err as Error).message);
  }
}

/**
 * RedundantTargetPlatform (`--platform=$TARGETPLATFORM`, the default anyway) and
 * FromPlatformFlagConstDisallowed (a constant platform, unless the stage's name says which).
 */
function checkFromPlatform(from: FromInstruction, r: ExpandResult, targetPlatform: string | undefined, sink: WarningSink): void {
  const platform = from.platform as string;
  if (r.matched.size === 1 && r.matched.has('TARGETPLATFORM') && r.unmatched.size === 0 && r.word === targetPlatform) {
    sink.add('RedundantTargetPlatform', `Setting platform to predefined ${platform} in FROM is redundant as this is the default behavior`, from.location);
  }
  if (r.matched.size > 0 || r.unmatched.size > 0) return;
  let p: Platform;
  try {
    p = parsePlatform(r.word);
  } catch {
    return;
  }
  const name = from.stageName?.toLowerCase() ?? '';
  if (name.includes(p.os) || name.includes(p.architecture)) return;
  sink.add('FromPlatformFlagConstDisallowed', `FROM --platform flag should not use constant value "${r.word}"`, from.location);
}

/**
 * MultipleInstructionsDisallowed: a CMD, ENTRYPOINT or HEALTHCHECK after one of its kind in the
 * same stage; reported at the earlier one, which has no effect.
 */
function checkUsedOnce(ins: Instruction, seen: Map<string, SourceLocation>, sink: WarningSink): void {
  const earlier = seen.get(ins.kind);
  if (earlier) {
    sink.add('MultipleInstructionsDisallowed', `Multiple ${ins.kind} instructions should not be used in the same stage because only the last one will be used`, earlier);
  }
  seen.set(ins.kind, ins.location);
}

/** LegacyKeyValueFormat (`ENV key value`) and, for ENV, SecretsUsedInArgOrEnv. */
function lintKeyValues(ins: EnvInstruction | LabelInstruction, sink: WarningSink): void {
  if (ins.legacy) {
    sink.add('LegacyKeyValueFormat', `"${ins.kind} key=value" should be used instead of legacy "${ins.kind} key value" format`, ins.location);
  }
  if (ins.kind === 'ENV') for (const { key } of ins.pairs) checkSecretName('ENV', key, ins, sink);
}

/**
 * ADD's fetched sources checked before the build, as BuildKit's frontend does: a git URL's query
 * and fragment, merged with --keep-git-dir and --checksum (a hex commit hash for git); a URL's
 * --checksum as <algorithm>:<hex digest>.
 */
function checkFetchedSources(sources: string[], flags: { keepGitDir?: boolean; checksum?: string }, error: (message: string) => Error): void {
  for (const src of sources) {
    try {
      const git = parseGitRef(src);
      if (git) gitOptions(git, flags);
      else if (flags.checksum && !/^sha(256|384|512):[0-9a-f]+$/.test(flags.checksum)) {
        throw new Error(`invalid --checksum "${flags.checksum}": expected <algorithm>:<hex digest>`);
      }
    } catch (err) {
      throw error((err as Error).message);
    }
  }
}
