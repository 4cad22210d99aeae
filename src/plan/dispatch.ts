/**
 * One function per instruction kind, as BuildKit's dockerfile2llb dispatches them: each reads
 * its instruction with the stage's state as it stands, changes that state (its variables,
 * working directory, user, shell) and adds its step. The planner (planner.ts) walks the stages
 * and calls `DISPATCH[ins.kind]` for each instruction; RUN and COPY/ADD, which can name other
 * stages, are in dispatch-run.ts and dispatch-copy.ts.
 */
import path from 'node:path';
import { DockerfileError, type SourceLocation } from '../errors/index.js';
import type {
  ArgInstruction,
  CmdInstruction,
  EntrypointInstruction,
  EnvInstruction,
  ExposeInstruction,
  HealthcheckInstruction,
  Instruction,
  LabelInstruction,
  MaintainerInstruction,
  OnbuildInstruction,
  ShellInstruction,
  StopsignalInstruction,
  UserInstruction,
  VolumeInstruction,
  WorkdirInstruction,
} from '../dockerfile/instructions.js';
import { checkSecretName } from '../dockerfile/checks.js';
import type { Stage } from '../dockerfile/stages.js';
import type { WarningSink } from '../dockerfile/warnings.js';
import { dispatchCopy } from './dispatch-copy.js';
import { dispatchRun } from './dispatch-run.js';
import type { Scope } from './scope.js';
import type { CopySource, PendingStep, PlannedStage, ResolvedArg, StepBase } from './types.js';

/** A stage that the stage being planned depends on: planned first (planner.ts's walk). */
export interface Needed {
  stage: Stage;
  where: SourceLocation;
}

/** Planning that may need other stages first: it yields each, and is resumed once that one is planned. */
export type Planning<T> = Generator<Needed, T, PlannedStage>;

/** The stage being planned, as its instructions change it. */
export interface StageScope {
  readonly scope: Scope;
  workdir: string;
  user: string;
  shell: string[];
  /** A SHELL was set (here, in a parent stage, by the base image): the image config has one. */
  shellSet: boolean;
  sawWorkdir: boolean;
  /** The stage starts FROM an earlier stage (a first relative WORKDIR is then no surprise). */
  readonly fromStage: boolean;
  /** Where the stage's CMD, ENTRYPOINT and HEALTHCHECK were, for MultipleInstructionsDisallowed. */
  readonly usedOnce: Map<string, SourceLocation>;
  readonly steps: PendingStep[];
}

/** What an instruction's dispatch is given beside its stage. */
export interface At {
  readonly where: SourceLocation;
  /** The fields every step of this instruction has. */
  readonly base: Omit<StepBase, 'id'>;
  readonly sink: WarningSink;
  readonly buildArgs: ReadonlyMap<string, string>;
  /** A word expanded with the variables in scope (undefined ones warned of); `many`: split into words. */
  one(word: string): string;
  many(word: string): string[];
  /** A COPY --from or a RUN --mount from=: a stage (planned first), a named context or an image. */
  resolveFrom(ref: string, keyword: string, mountTarget?: string): Planning<CopySource>;
  /** An ARG's value: a build arg, its default, the global one, a predefined one, or unset. */
  resolveArg(decl: ArgInstruction['args'][number]): ResolvedArg;
  /** Note a build arg as consumed (it is then not in UnusedBuildArg). */
  consume(name: string): void;
}

export type Dispatch<I extends Instruction> = (stage: StageScope, ins: I, at: At) => Planning<void> | void;

type Kind = Exclude<Instruction['kind'], 'FROM' | 'ADD'>;

/** Every instruction kind's dispatch (FROM starts a stage: the planner reads it; ADD is COPY's). */
export const DISPATCH: { [K in Kind]: Dispatch<Extract<Instruction, { kind: K }>> } = {
  ENV: dispatchEnv,
  ARG: dispatchArg,
  LABEL: dispatchLabel,
  MAINTAINER: dispatchMaintainer,
  EXPOSE: dispatchExpose,
  VOLUME: dispatchVolume,
  USER: dispatchUser,
  WORKDIR: dispatchWorkdir,
  STOPSIGNAL: dispatchStopsignal,
  SHELL: dispatchShell,
  CMD: dispatchCommand,
  ENTRYPOINT: dispatchCommand,
  ONBUILD: dispatchOnbuild,
  HEALTHCHECK: dispatchHealthcheck,
  RUN: dispatchRun,
  COPY: dispatchCopy,
};

/** The dispatch of `ins` (ADD goes as COPY does; FROM has none). */
export function dispatchOf(ins: Exclude<Instruction, { kind: 'FROM' }>): Dispatch<typeof ins> {
  return (ins.kind === 'ADD' ? DISPATCH.COPY : DISPATCH[ins.kind]) as Dispatch<typeof ins>;
}

function dispatchEnv(st: StageScope, ins: EnvInstruction, at: At): void {
  // Every value is expanded with the environment from before the instruction.
  const pairs = ins.pairs.map(({ key, value }) => ({ key, value: at.one(value) }));
  lintKeyValues(ins, at.sink);
  for (const { key, value } of pairs) st.scope.env.set(key, value);
  st.steps.push({ ...at.base, op: 'env', pairs });
}

function dispatchArg(st: StageScope, ins: ArgInstruction, at: At): void {
  // A default is expanded only when it is the value: one overridden by a build arg may
  // name variables that are not set (`ARG FOO=${missing:?}` with --build-arg FOO=x builds).
  const resolved = ins.args.map((decl) => at.resolveArg(decl));
  for (const a of ins.args) checkSecretName('ARG', a.name, ins, at.sink);
  for (const a of resolved) {
    at.consume(a.name);
    st.scope.args.set(a.name, a.value);
  }
  st.steps.push({ ...at.base, op: 'arg', args: resolved });
}

function dispatchLabel(st: StageScope, ins: LabelInstruction, at: At): void {
  const pairs = ins.pairs.map(({ key, value }) => ({ key: at.one(key), value: at.one(value) }));
  lintKeyValues(ins, at.sink);
  st.steps.push({ ...at.base, op: 'label', pairs });
}

function dispatchMaintainer(st: StageScope, ins: MaintainerInstruction, at: At): void {
  st.steps.push({ ...at.base, op: 'maintainer', maintainer: ins.maintainer });
}

function dispatchExpose(st: StageScope, ins: ExposeInstruction, at: At): void {
  const ports = ins.ports.flatMap((p) => at.many(p)).flatMap((p) => normalisePorts(p, at.where, at.sink));
  st.steps.push({ ...at.base, op: 'expose', ports });
}

function dispatchVolume(st: StageScope, ins: VolumeInstruction, at: At): void {
  const volumes = ins.volumes.map((v) => at.one(v));
  for (const v of volumes) {
    if (v.trim() === '') {
      throw new DockerfileError('DOCKERFILE_INSTRUCTION', 'VOLUME specified can not be an empty string', at.where, 'VOLUME');
    }
  }
  st.steps.push({ ...at.base, op: 'volume', volumes });
}

function dispatchUser(st: StageScope, ins: UserInstruction, at: At): void {
  st.user = at.one(ins.user);
  if (st.user === '') throw new DockerfileError('DOCKERFILE_INSTRUCTION', 'USER cannot be empty', at.where, 'USER');
  st.steps.push({ ...at.base, op: 'user', user: st.user });
}

function dispatchWorkdir(st: StageScope, ins: WorkdirInstruction, at: At): void {
  const p = at.one(ins.path);
  if (p === '') throw new DockerfileError('DOCKERFILE_INSTRUCTION', 'WORKDIR cannot be empty', at.where, 'WORKDIR');
  if (!p.startsWith('/') && !st.sawWorkdir && !st.fromStage) {
    at.sink.add('WorkdirRelativePath', `Relative workdir "${p}" can have unexpected results if the base image changes`, at.where);
  }
  st.sawWorkdir = true;
  st.workdir = path.posix.resolve(st.workdir, p);
  st.steps.push({ ...at.base, op: 'workdir', path: st.workdir });
}

function dispatchStopsignal(st: StageScope, ins: StopsignalInstruction, at: At): void {
  const signal = at.one(ins.signal);
  if (!/^(SIG)?[A-Z][A-Z0-9]*([+-]\d+)?$|^\d+$/i.test(signal)) {
    throw new DockerfileError('DOCKERFILE_INSTRUCTION', `invalid signal: ${signal}`, at.where, 'STOPSIGNAL');
  }
  st.steps.push({ ...at.base, op: 'stopsignal', signal });
}

function dispatchShell(st: StageScope, ins: ShellInstruction, at: At): void {
  st.shell = [...ins.shell];
  st.shellSet = true;
  st.steps.push({ ...at.base, op: 'shell', shell: [...st.shell] });
}

function dispatchCommand(st: StageScope, ins: CmdInstruction | EntrypointInstruction, at: At): void {
  checkUsedOnce(ins, st.usedOnce, at.sink);
  // Only when no SHELL was set (here, in a parent stage, in the base image): one says the form is meant.
  if (ins.command.form === 'shell' && !st.shellSet) {
    at.sink.add('JSONArgsRecommended', `JSON arguments recommended for ${ins.kind} to prevent unintended behavior related to OS signals`, at.where);
  }
  st.steps.push({ ...at.base, op: ins.kind === 'CMD' ? 'cmd' : 'entrypoint', command: ins.command });
}

function dispatchOnbuild(st: StageScope, ins: OnbuildInstruction, at: At): void {
  st.steps.push({ ...at.base, op: 'onbuild', expression: ins.expression });
}

function dispatchHealthcheck(st: StageScope, ins: HealthcheckInstruction, at: At): void {
  checkUsedOnce(ins, st.usedOnce, at.sink);
  const { test, interval, timeout, startPeriod, startInterval, retries } = ins;
  st.steps.push({
    ...at.base,
    op: 'healthcheck',
    test,
    ...(interval !== undefined ? { interval } : {}),
    ...(timeout !== undefined ? { timeout } : {}),
    ...(startPeriod !== undefined ? { startPeriod } : {}),
    ...(startInterval !== undefined ? { startInterval } : {}),
    ...(retries !== undefined ? { retries } : {}),
  });
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
