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
import { parse, type Directive, type ParseOptions } from './parser.js';
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
  warnings: Warning[];
}

const RESERVED_STAGE_NAMES = new Set(['scratch', 'context']);

export function parseDockerfile(text: string, options: ParseOptions = {}): DockerfileModel {
  const result = parse(text, options);
  const sink = new WarningSink();
  for (const w of result.warnings) sink.items.push(w);
  const instructions = toInstructions(result, sink);
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];
  const names = new Map<string, Stage>();
  for (const ins of instructions) {
    if (ins.kind === 'FROM') {
      const stage: Stage = { index: stages.length, from: ins, instructions: [] };
      if (ins.stageName !== undefined) {
        const name = ins.stageName.toLowerCase();
        if (RESERVED_STAGE_NAMES.has(name)) {
          throw new DockerfileError(
            'DOCKERFILE_STAGE',
            `'${ins.stageName}' is a reserved name and cannot be used as a stage name`,
            ins.location,
            'FROM',
          );
        }
        const earlier = names.get(name);
        if (earlier) {
          throw new DockerfileError(
            'DOCKERFILE_STAGE',
            `duplicate stage name "${ins.stageName}" (first defined on line ${earlier.from.location.line})`,
            ins.location,
            'FROM',
          );
        }
        stage.name = name;
        names.set(name, stage);
      }
      stages.push(stage);
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
  for (const stage of stages) lintStage(stage, sink);
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
  };
}

function lintStage(stage: Stage, sink: WarningSink): void {
  for (const kind of ['CMD', 'ENTRYPOINT', 'HEALTHCHECK'] as const) {
    const all = stage.instructions.filter((i) => i.kind === kind);
    for (const extra of all.slice(0, -1)) {
      sink.add(
        'MultipleInstructionsDisallowed',
        `Multiple ${kind} instructions should not be used in the same stage because only the last one will be used`,
        extra.location,
      );
    }
  }
}
