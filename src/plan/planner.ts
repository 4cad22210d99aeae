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
import { suggest } from '../dockerfile/flags.js';
import { DockerfileError, OptionError, type SourceLocation } from '../errors/index.js';
import { toInstruction, type ArgInstruction, type FromInstruction, type Instruction } from '../dockerfile/instructions.js';
import { parse } from '../dockerfile/parser.js';
import { expand, ShellSyntaxError, type EnvLookup, type ExpandResult } from '../dockerfile/shell.js';
import { parseDockerfile, type DockerfileModel, type Stage } from '../dockerfile/stages.js';
import { didYouMean } from '../dockerfile/checks.js';
import { WarningSink } from '../dockerfile/warnings.js';
import { CHECK_BUILD_ARG, checkViolation, filterWarnings, withCheckBuildArg, withWarnings, type CheckScope } from '../dockerfile/lint.js';
import { formatPlatform, hostPlatform, parsePlatform, type Platform } from '../oci/platform.js';
import { familiarName, parseReference } from '../oci/reference.js';
import { dispatchOf, type At, type Planning, type StageScope } from './dispatch.js';
import { PROXY_ARGS } from './dispatch-run.js';
import { Scope, setKV } from './scope.js';
import {
  DEFAULT_PATH,
  DEFAULT_SHELL,
  type BaseRef,
  type BuildPlan,
  type CopySource,
  type NamedContextRef,
  type PendingStep,
  type PlannedStage,
  type PlanOptions,
  type ResolvedArg,
  type StageEnd,
  type Step,
  type StepState,
} from './types.js';

export * from './types.js';
export { heredocRefName } from './dispatch-copy.js';
export { proxyEnvOf } from './dispatch-run.js';

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

function platformArgs(prefix: 'TARGET' | 'BUILD', p: Platform): [string, string][] {
  return [
    [`${prefix}PLATFORM`, formatPlatform(p)],
    [`${prefix}OS`, p.os],
    [`${prefix}ARCH`, p.architecture],
    [`${prefix}VARIANT`, p.variant ?? ''],
  ];
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
    // A Windows stage's default shell and PATH are BuildKit's for Windows: cmd, and none.
    const windows = head.platform.startsWith('windows/');
    const st: StageScope = {
      scope: new Scope(),
      workdir: '/',
      user: '',
      shell: windows ? ['cmd', '/S', '/C'] : [...DEFAULT_SHELL],
      shellSet: false,
      sawWorkdir: false,
      fromStage: head.base.type === 'stage',
      usedOnce: new Map(),
      steps: [],
    };
    const { scope } = st;
    let baseEnvKnown = true;
    let triggers: Instruction[] = [];

    if (head.base.type === 'stage') {
      const parent = planned.get(head.base.stage) as PlannedStage;
      // A parent with no steps ends as it started: its base's env, workdir, user and shell.
      const last = finalState(parent, pendingSteps) ?? (stageEnds.get(parent.index) as StageEnd).initial;
      for (const kv of last.env) setKV(scope.env, kv);
      st.workdir = last.workdir;
      st.user = last.user;
      st.shell = [...last.shell];
      // The parent's ARGs stay in scope, as in BuildKit, where they are part of the stage's state.
      const end = stageEnds.get(parent.index);
      for (const [k, v] of end?.args ?? []) scope.args.set(k, v);
      st.shellSet = end?.shellSet ?? false;
      baseEnvKnown = parent.baseEnvKnown;
      // FROM an earlier stage runs the ONBUILD instructions that stage declared, as BuildKit does.
      const parentSteps = pendingSteps.find((p) => p.stage === parent)?.steps ?? [];
      triggers = parentSteps.flatMap((s) => (s.op === 'onbuild' && !s.onbuild ? [parseTrigger(s.expression, stage.from.location, model.file)] : []));
    } else if (head.base.type === 'image') {
      const info = options.baseImages?.[head.base.ref];
      if (info) {
        for (const kv of info.env ?? []) setKV(scope.env, kv);
        if (info.workingDir) st.workdir = info.workingDir;
        if (info.user) st.user = info.user;
        if (info.shell?.length) {
          st.shell = [...info.shell];
          st.shellSet = true;
        }
        triggers = (info.onBuild ?? []).map((t) => parseTrigger(t, stage.from.location, model.file));
      } else {
        baseEnvKnown = false;
      }
    }
    if (baseEnvKnown && !windows && !scope.env.has('PATH')) scope.env.set('PATH', DEFAULT_PATH);
    const initial = stepState(st);

    const warnUndefined = baseEnvKnown;
    const all: { ins: Instruction; onbuild: boolean }[] = [
      ...triggers.map((ins) => ({ ins, onbuild: true })),
      ...stage.instructions.map((ins) => ({ ins, onbuild: false })),
    ];
    // Step numbers as BuildKit counts them: FROM an image is the first, then each RUN, COPY,
    // ADD and WORKDIR, and every ONBUILD trigger; config-only instructions have none of their own.
    const counted = (ins: Instruction, onbuild: boolean): boolean => onbuild || ['RUN', 'COPY', 'ADD', 'WORKDIR'].includes(ins.kind);
    const total = (head.base.type === 'image' ? 1 : 0) + all.filter(({ ins, onbuild }) => counted(ins, onbuild)).length;
    let index = head.base.type === 'image' ? 1 : 0;
    const width = String(total).length;
    // An ARG declared without a value is not undefined (BuildKit).
    const declaredArg = (name: string): boolean => scope.args.has(name);
    for (const { ins, onbuild } of all) {
      if (counted(ins, onbuild)) index++;
      // FROM never reaches here: stages split on it.
      if (ins.kind === 'FROM') continue;
      const where = ins.location;
      const expanded = (w: string): ExpandResult => expandWith(w, scope.lookup, where, ins.kind, warnUndefined, declaredArg, scope.names);
      const at: At = {
        where,
        base: {
          stage: stage.index,
          // BuildKit names the stage unless the Dockerfile has only one.
          position: `[${model.stages.length > 1 ? `${stage.name ?? `stage-${stage.index}`} ` : ''}${String(index).padStart(width)}/${total}]`,
          original: ins.original,
          location: where,
          state: stepState(st),
          ...(onbuild ? { onbuild: true } : {}),
        },
        sink,
        buildArgs,
        one: (w) => expanded(w).word,
        many: (w) => expanded(w).words,
        resolveFrom: (ref, keyword, mountTarget) => resolveFrom(stage, addDep, where, ref, keyword, mountTarget),
        resolveArg: (decl) => resolveArg(decl, (w) => expanded(w).word),
        consume: (name) => consumed.add(name),
      };
      const dispatched = dispatchOf(ins)(st, ins, at);
      if (dispatched) yield* dispatched;
    }
    return { steps: st.steps, baseEnvKnown, end: { args: scope.args, shellSet: st.shellSet, initial } };
  };

  /** Where a COPY --from or a RUN --mount from= in `stage` reads: a stage (planned first), a named context, an image. */
  const resolveFrom = function* (
    stage: Stage,
    addDep: (s: Stage, where: SourceLocation) => Planning<void>,
    where: SourceLocation,
    ref: string,
    keyword: string,
    mountTarget?: string,
  ): Planning<CopySource> {
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

  /**
   * An ARG's value: a build arg, its default (expanded with `one` only when it is the value: one
   * overridden by a build arg may name variables that are not set), the global one, a predefined one.
   */
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

  visit(targetStage, undefined);
  // Number steps in build order.
  for (const ps of order) {
    const entry = pendingSteps.find((p) => p.stage === ps) as { steps: PendingStep[] };
    ps.steps = entry.steps.map((s) => ({ ...s, id: nextId++ }) as Step);
  }

  for (const k of [...PROXY_ARGS, CHECK_BUILD_ARG, 'BUILDKIT_SANDBOX_HOSTNAME', 'BUILDKIT_MULTI_PLATFORM']) consumed.add(k);
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


/** What is in effect for a step that starts now in the stage `st`. */
function stepState(st: StageScope): StepState {
  return {
    env: [...st.scope.env].map(([k, v]) => `${k}=${v}`),
    args: [...st.scope.args].filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`),
    workdir: st.workdir,
    user: st.user,
    shell: [...st.shell],
  };
}

/** The state after a planned stage's last step (for `FROM <stage>`). */
function finalState(ps: PlannedStage, pending: { stage: PlannedStage; steps: PendingStep[] }[]): StepState | undefined {
  const steps = pending.find((p) => p.stage === ps)?.steps ?? [];
  const last = steps[steps.length - 1];
  if (!last) return undefined;
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



