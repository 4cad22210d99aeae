/**
 * A Dockerfile as stages: the global ARGs before the first FROM, then one stage per FROM
 * with the instructions that follow it. Pure: no file system, no network.
 */
import { DockerfileError } from '../errors/index.js';
import {
  toInstructions,
  type ArgInstruction,
  type FromInstruction,
  type Instruction,
} from './instructions.js';
import { checkDefinitionDescriptions, checkInstructionCasing, checkStageNames } from './checks.js';
import { fileCheckConfig, filterWarnings, withCheckBuildArg, withWarnings, type CheckScope } from './lint.js';
import { parse, type Directive, type ParseOptions, type ParseResult } from './parser.js';
import { WarningSink, type Warning } from './warnings.js';

export interface Stage {
  /** Position among the stages, from 0 (what `COPY --from=0` names). */
  index: number;
  /** The `AS` name, lower-cased as BuildKit matches it; undefined when unnamed. */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

export interface DockerfileModel {
  file: string;
  directives: Directive[];
  escapeToken: string;
  /** ARG instructions before the first FROM: usable in FROM lines only. */
  globalArgs: ArgInstruction[];
  stages: Stage[];
  /** Every warning found, before the check configuration is applied. */
  warnings: Warning[];
  /** The check configuration (`# check=`, or the build argument BUILDKIT_DOCKERFILE_CHECK). */
  checks: CheckScope;
}

export interface ModelOptions extends ParseOptions {
  /** Build arguments: BUILDKIT_DOCKERFILE_CHECK there replaces the `# check=` directive. */
  buildArgs?: Readonly<Record<string, string>>;
}

/**
 * Parse and split into stages. A Dockerfile error carries the warnings found before it (the
 * check configuration applied), as BuildKit prints them with the error.
 */
export function parseDockerfile(text: string, options: ModelOptions = {}): DockerfileModel {
  const sink = new WarningSink();
  let checks: CheckScope | undefined;
  try {
    const result = parse(text, options);
    checks = checkScope(result, options.buildArgs);
    sink.items.push(...result.warnings);
    return modelOf(result, checks, sink);
  } catch (err) {
    throw checks ? withWarnings(err as Error, filterWarnings(sink.items, checks)) : err;
  }
}

function checkScope(result: ParseResult, buildArgs: ModelOptions['buildArgs']): CheckScope {
  const directive = result.directives.find((d) => d.name === 'check');
  return withCheckBuildArg({ file: result.file, config: fileCheckConfig(directive, result.file) }, buildArgs);
}

function modelOf(result: ParseResult, checks: CheckScope, sink: WarningSink): DockerfileModel {
  const instructions = toInstructions(result, sink);
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.kind === 'FROM') {
      stages.push({ index: stages.length, from: ins, instructions: [], ...(ins.stageName !== undefined ? { name: ins.stageName.toLowerCase() } : {}) });
      continue;
    }
    const current = stages[stages.length - 1];
    if (current) {
      current.instructions.push(ins);
    } else if (ins.kind === 'ARG') {
      globalArgs.push(ins);
    } else {
      throw new DockerfileError(
        'DOCKERFILE_NO_STAGE',
        `no build stage in current context: ${ins.kind} must come after a FROM (only ARG may come before the first FROM)`,
        ins.location,
        ins.kind,
      );
    }
  }
  if (stages.length === 0) {
    const loc = instructions[0]?.location ?? { file: result.file, line: 1 };
    throw new DockerfileError('DOCKERFILE_NO_STAGE', 'the Dockerfile has no FROM instruction', loc);
  }
  checkStageNames(stages.map((s) => s.from), sink);
  checkInstructionCasing(instructions, sink);
  const commentsByLine = new Map(result.nodes.map((n) => [n.startLine, n.comments] as const));
  checkDefinitionDescriptions(instructions, (line) => commentsByLine.get(line), sink);
  const syntax = result.directives.find((d) => d.name === 'syntax');
  if (syntax) {
    // gantry has one built-in frontend; a syntax directive cannot select another.
    sink.add(
      'SyntaxDirectiveIgnored',
      `parser directive "syntax=${syntax.value}" is ignored: gantry uses its built-in Dockerfile frontend`,
      { file: result.file, line: syntax.line },
    );
  }
  return {
    file: result.file,
    directives: result.directives,
    escapeToken: result.escapeToken,
    globalArgs,
    stages,
    warnings: sink.items,
    checks,
  };
}
