/**
 * Typed instructions: one interface per Dockerfile instruction, made from parser nodes.
 * Values stay as written (unexpanded): which variables reach them depends on the stage
 * and the build options, so expansion belongs to the planner.
 */
import { parseChmod } from './chmod.js';
import { DockerfileError, type SourceLocation, type ErrorCode } from '../errors/index.js';
import { FlagError, parseFlags, suggest, type FlagKind, type ParsedFlags } from './flags.js';
import { MountError, parseMount, type Mount } from './mounts.js';
import type { Heredoc, Node, ParseResult } from './parser.js';
import { WarningSink } from './warnings.js';

interface Base {
  /** The instruction as written (logical line, continuations joined). */
  original: string;
  location: SourceLocation;
}

/** Shell form (one string run by SHELL) or exec form (argv). */
export interface CommandLine {
  form: 'shell' | 'exec';
  args: string[];
}

export interface FromInstruction extends Base {
  kind: 'FROM';
  image: string;
  stageName?: string;
  platform?: string;
}

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'sandbox' | 'insecure';

export interface RunInstruction extends Base {
  kind: 'RUN';
  command: CommandLine;
  heredocs: Heredoc[];
  mounts: Mount[];
  /** The `--mount` values as written, expanded by the planner. */
  rawMounts: string[];
  network?: NetworkMode;
  security?: SecurityMode;
}

export interface CmdInstruction extends Base {
  kind: 'CMD';
  command: CommandLine;
}

export interface EntrypointInstruction extends Base {
  kind: 'ENTRYPOINT';
  command: CommandLine;
}

export interface ShellInstruction extends Base {
  kind: 'SHELL';
  shell: string[];
}

export interface KeyValue {
  key: string;
  value: string;
}

export interface EnvInstruction extends Base {
  kind: 'ENV';
  pairs: KeyValue[];
  /** Written as `ENV key value` (the legacy form). */
  legacy: boolean;
}

export interface LabelInstruction extends Base {
  kind: 'LABEL';
  pairs: KeyValue[];
  legacy: boolean;
}

export interface ArgDeclaration {
  name: string;
  /** The default as written, unexpanded; undefined when there is none. */
  defaultValue?: string;
}

export interface ArgInstruction extends Base {
  kind: 'ARG';
  args: ArgDeclaration[];
}

export interface MaintainerInstruction extends Base {
  kind: 'MAINTAINER';
  maintainer: string;
}

export interface ExposeInstruction extends Base {
  kind: 'EXPOSE';
  ports: string[];
}

export interface VolumeInstruction extends Base {
  kind: 'VOLUME';
  volumes: string[];
}

export interface UserInstruction extends Base {
  kind: 'USER';
  user: string;
}

export interface WorkdirInstruction extends Base {
  kind: 'WORKDIR';
  path: string;
}

export interface StopsignalInstruction extends Base {
  kind: 'STOPSIGNAL';
  signal: string;
}

/** Durations are in nanoseconds, as in the image config. */
export interface HealthcheckInstruction extends Base {
  kind: 'HEALTHCHECK';
  /** `["NONE"]`, `["CMD", ...argv]` or `["CMD-SHELL", command]` as in the image config. */
  test: string[];
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

export interface OnbuildInstruction extends Base {
  kind: 'ONBUILD';
  trigger: Instruction;
  /** The trigger as it goes into the image config's OnBuild list. */
  expression: string;
}

export interface CopyInstruction extends Base {
  kind: 'COPY' | 'ADD';
  sources: string[];
  dest: string;
  /** Sources and destination came from a JSON array (not word-split). */
  json: boolean;
  heredocs: Heredoc[];
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  /** ADD only. */
  checksum?: string;
  /** --keep-git-dir; unset, a git source's ?keep-git-dir= decides (false without). */
  keepGitDir?: boolean;
  /** ADD --unpack: false keeps a local archive as it is, true also unpacks one from a URL; unset: BuildKit's default. */
  unpack?: boolean;
}

export type Instruction =
  | FromInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | ShellInstruction
  | EnvInstruction
  | LabelInstruction
  | ArgInstruction
  | MaintainerInstruction
  | ExposeInstruction
  | VolumeInstruction
  | UserInstruction
  | WorkdirInstruction
  | StopsignalInstruction
  | HealthcheckInstruction
  | OnbuildInstruction
  | CopyInstruction;

export type InstructionKind = Instruction['kind'];

export const INSTRUCTION_KEYWORDS: readonly InstructionKind[] = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
];

const FLAG_SPECS: Record<InstructionKind, Record<string, FlagKind>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'list', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'list' },
  ADD: {
    chown: 'string',
    chmod: 'string',
    link: 'bool',
    exclude: 'list',
    checksum: 'string',
    'keep-git-dir': 'bool',
    unpack: 'bool',
  },
  HEALTHCHECK: {
    interval: 'string',
    timeout: 'string',
    'start-period': 'string',
    'start-interval': 'string',
    retries: 'string',
  },
  CMD: {},
  ENTRYPOINT: {},
  SHELL: {},
  ENV: {},
  LABEL: {},
  ARG: {},
  MAINTAINER: {},
  EXPOSE: {},
  VOLUME: {},
  USER: {},
  WORKDIR: {},
  STOPSIGNAL: {},
  ONBUILD: {},
};

export interface ConvertContext {
  file: string;
  result: ParseResult;
  warnings: WarningSink;
}

/** Convert every parsed node; errors name the file, line, column and instruction. */
export function toInstructions(result: ParseResult, warnings = new WarningSink()): Instruction[] {
  const ctx: ConvertContext = { file: result.file, result, warnings };
  return result.nodes.map((node) => toInstruction(node, ctx));
}

function locationOf(node: Node, file: string): SourceLocation {
  return { file, line: node.startLine, column: node.column, endLine: node.endLine };
}

export function toInstruction(node: Node, ctx: ConvertContext): Instruction {
  const location = locationOf(node, ctx.file);
  const keyword = node.keyword.toUpperCase();
  const fail = (detail: string, at: SourceLocation = location, code: ErrorCode = 'DOCKERFILE_INSTRUCTION'): never => {
    throw new DockerfileError(code, detail, at, keyword);
  };
  if (!(INSTRUCTION_KEYWORDS as readonly string[]).includes(keyword)) {
    const hint = suggest(node.rawKeyword, INSTRUCTION_KEYWORDS);
    throw new DockerfileError(
      'DOCKERFILE_UNKNOWN_INSTRUCTION',
      `unknown instruction: ${node.rawKeyword}${hint ? ` (did you mean ${hint}?)` : ''}`,
      location,
    );
  }
  const kind = keyword as InstructionKind;
  let flags: ParsedFlags;
  try {
    flags = parseFlags(node.flags, FLAG_SPECS[kind]);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    const pos = err.flag ? ctx.result.positions.flag(node.startLine, err.flag) : undefined;
    const hint = err.flag && err.message.startsWith('unknown flag') ? suggest(err.flag, Object.keys(FLAG_SPECS[kind])) : undefined;
    return fail(
      `${err.message}${hint ? ` (did you mean --${hint}?)` : ''}`,
      pos ? { file: ctx.file, line: pos.line, column: pos.column } : location,
      'DOCKERFILE_FLAG',
    );
  }
  const base = { original: node.original, location };
  const args = node.args;
  const atLeastOne = (): void => {
    if (args.length === 0) fail(`${keyword} requires at least one argument`);
  };
  const exactlyOne = (): string => {
    if (args.length !== 1) fail(`${keyword} requires exactly one argument`);
    return args[0] as string;
  };
  const command = (): CommandLine => ({ form: node.json ? 'exec' : 'shell', args: [...args] });

  switch (kind) {
    case 'FROM': {
      if (args.length !== 1 && !(args.length === 3 && (args[1] as string).toLowerCase() === 'as')) {
        fail('FROM requires either one or three arguments (FROM <image> [AS <name>])');
      }
      const ins: FromInstruction = { kind, ...base, image: args[0] as string };
      if (args.length === 3) {
        const name = args[2] as string;
        if (!/^[a-zA-Z][a-zA-Z0-9\-_.]*$/.test(name)) {
          fail(`invalid name for build stage: "${name}", name can't start with a number or contain symbols`);
        }
        ins.stageName = name;
        if (name !== name.toLowerCase()) {
          ctx.warnings.add('StageNameCasing', `Stage name '${name}' should be lowercase`, location);
        }
        // A FROM in mixed case is ConsistentInstructionCasing's to report, not this rule's.
        const asWord = args[1] as string;
        const from = node.rawKeyword;
        const fromConsistent = from === from.toUpperCase() || from === from.toLowerCase();
        const asMatches = from === from.toUpperCase() ? asWord === asWord.toUpperCase() : asWord === asWord.toLowerCase();
        if (fromConsistent && !asMatches) {
          ctx.warnings.add(
            'FromAsCasing',
            `'${asWord}' and '${node.rawKeyword}' keywords' casing do not match`,
            location,
          );
        }
      }
      const platform = flags.strings.get('platform');
      if (platform !== undefined) ins.platform = platform;
      return ins;
    }
    case 'RUN': {
      if (args.length === 0 && node.heredocs.length === 0) atLeastOne();
      const rawMounts = flags.lists.get('mount') ?? [];
      const mounts: Mount[] = [];
      for (const raw of rawMounts) {
        // Values with variables can only be checked after expansion, by the planner.
        if (raw.includes('$')) continue;
        try {
          mounts.push(parseMount(raw));
        } catch (err) {
          if (!(err instanceof MountError)) throw err;
          const pos = ctx.result.positions.flag(node.startLine, 'mount');
          fail(`--mount=${raw}: ${err.message}`, pos ? { file: ctx.file, ...pos } : location, 'DOCKERFILE_FLAG');
        }
      }
      const ins: RunInstruction = { kind, ...base, command: command(), heredocs: node.heredocs, mounts, rawMounts };
      const network = flags.strings.get('network');
      if (network !== undefined) {
        if (!['default', 'none', 'host'].includes(network)) {
          fail(`unsupported network mode "${network}" (use default, none or host)`, location, 'DOCKERFILE_FLAG');
        }
        ins.network = network as NetworkMode;
      }
      const security = flags.strings.get('security');
      if (security !== undefined) {
        if (!['sandbox', 'insecure'].includes(security)) {
          fail(`unsupported security mode "${security}" (use sandbox or insecure)`, location, 'DOCKERFILE_FLAG');
        }
        ins.security = security as SecurityMode;
      }
      return ins;
    }
    case 'CMD':
    case 'ENTRYPOINT':
      // JSONArgsRecommended is the planner's: it depends on the SHELL in effect.
      return { kind, ...base, command: command() };
    case 'SHELL': {
      if (!node.json) fail('SHELL requires the arguments to be in JSON form');
      atLeastOne();
      return { kind, ...base, shell: [...args] };
    }
    case 'ENV':
    case 'LABEL': {
      atLeastOne();
      const pairs: KeyValue[] = [];
      for (let i = 0; i < args.length; i += 3) {
        const key = args[i] as string;
        if (key === '') fail(`${kind} names can not be blank`);
        pairs.push({ key, value: args[i + 1] as string });
      }
      // LegacyKeyValueFormat is the planner's: BuildKit reports it for the stages it builds.
      const legacy = args[2] === '';
      return kind === 'ENV' ? { kind, ...base, pairs, legacy } : { kind, ...base, pairs, legacy };
    }
    case 'ARG': {
      atLeastOne();
      const decls: ArgDeclaration[] = args.map((word) => {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word : word.slice(0, eq);
        if (name === '') fail('ARG names can not be blank');
        return eq < 0 ? { name } : { name, defaultValue: word.slice(eq + 1) };
      });
      return { kind, ...base, args: decls };
    }
    case 'MAINTAINER': {
      const maintainer = exactlyOne();
      ctx.warnings.add(
        'MaintainerDeprecated',
        'Maintainer instruction is deprecated in favor of using label',
        location,
      );
      return { kind, ...base, maintainer };
    }
    case 'EXPOSE':
      atLeastOne();
      return { kind, ...base, ports: [...args] };
    case 'VOLUME':
      atLeastOne();
      for (const v of args) if (v.trim() === '') fail('VOLUME specified can not be an empty string');
      return { kind, ...base, volumes: [...args] };
    case 'USER':
      return { kind, ...base, user: exactlyOne() };
    case 'WORKDIR':
      return { kind, ...base, path: exactlyOne() };
    case 'STOPSIGNAL':
      return { kind, ...base, signal: exactlyOne() };
    case 'HEALTHCHECK':
      return healthcheck(node, flags, base, fail);
    case 'ONBUILD': {
      if (!node.sub) return fail('ONBUILD requires at least one argument');
      const sub = node.sub.keyword.toUpperCase();
      if (sub === 'ONBUILD') fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
      if (sub === 'FROM' || sub === 'MAINTAINER') fail(`${sub} isn't allowed as an ONBUILD trigger`);
      const trigger = toInstruction(node.sub, ctx);
      // The trigger as the image keeps it; here-documents follow their line, as BuildKit writes them
      // (`RUN <<EOF\necho hi\nEOF`), so the child build reads them back.
      const expression = node.original.trim().replace(/^\S+\s+/, '') + node.sub.heredocs.map((h) => `\n${h.content}${h.name}`).join('');
      return { kind, ...base, trigger, expression };
    }
    case 'COPY':
    case 'ADD': {
      if (args.length < 2) {
        fail(
          `${kind} requires at least two arguments, but only ${args.length === 0 ? 'none was' : 'one was'} provided. Destination could not be determined`,
        );
      }
      const ins: CopyInstruction = {
        kind,
        ...base,
        sources: args.slice(0, -1),
        dest: args[args.length - 1] as string,
        json: node.json,
        heredocs: node.heredocs,
        link: flags.bools.get('link') ?? false,
        parents: flags.bools.get('parents') ?? false,
        exclude: flags.lists.get('exclude') ?? [],
        ...(flags.bools.has('keep-git-dir') ? { keepGitDir: flags.bools.get('keep-git-dir') as boolean } : {}),
        ...(flags.bools.has('unpack') ? { unpack: flags.bools.get('unpack') as boolean } : {}),
      };
      for (const [name, key] of [
        ['from', 'from'],
        ['chown', 'chown'],
        ['chmod', 'chmod'],
        ['checksum', 'checksum'],
      ] as const) {
        const v = flags.strings.get(name);
        if (v !== undefined) ins[key] = v;
      }
      // An octal or a symbolic mode (u+x,go-w); one with a variable is checked once expanded (planner).
      if (ins.chmod !== undefined && ins.chmod !== '' && !ins.chmod.includes('$')) {
        try {
          parseChmod(ins.chmod);
        } catch (err) {
          fail((err as Error).message);
        }
      }
      return ins;
    }
  }
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's time.ParseDuration ("1m30s", "500ms", "0"), in nanoseconds. */
export function parseGoDuration(text: string): number {
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== text.length) throw new Error(`time: invalid duration "${text}"`);
  return Math.round(total);
}

function healthcheck(
  node: Node,
  flags: ParsedFlags,
  base: Base,
  fail: (detail: string) => never,
): HealthcheckInstruction {
  const args = node.args;
  if (args.length === 0) return fail('HEALTHCHECK requires at least one argument');
  const type = (args[0] as string).toUpperCase();
  if (type === 'NONE') {
    if (args.length > 1) fail('HEALTHCHECK NONE takes no arguments');
    if (node.flags.length > 0) fail('HEALTHCHECK NONE takes no flags');
    return { kind: 'HEALTHCHECK', ...base, test: ['NONE'] };
  }
  if (type !== 'CMD') fail(`Unknown type "${args[0]}" in HEALTHCHECK (try CMD)`);
  const cmd = args.slice(1);
  if (cmd.length === 0) fail('Missing command after HEALTHCHECK CMD');
  const test = node.json ? ['CMD', ...cmd] : ['CMD-SHELL', cmd[0] as string];
  const ins: HealthcheckInstruction = { kind: 'HEALTHCHECK', ...base, test };
  const durations = [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ] as const;
  for (const [flag, key] of durations) {
    const raw = flags.strings.get(flag);
    if (raw === undefined) continue;
    let ns: number;
    try {
      ns = parseGoDuration(raw);
    } catch (err) {
      return fail(`--${flag}: ${(err as Error).message}`);
    }
    if (ns < 0) fail(`--${flag} cannot be negative`);
    if (ns !== 0 && ns < 1e6) fail(`Interval "--${flag}" cannot be less than 1ms`);
    ins[key] = ns;
  }
  const retries = flags.strings.get('retries');
  if (retries !== undefined) {
    if (!/^-?\d+$/.test(retries)) fail(`--retries: invalid number "${retries}"`);
    const n = Number.parseInt(retries, 10);
    if (n < 0) fail('--retries cannot be negative');
    ins.retries = n;
  }
  return ins;
}
