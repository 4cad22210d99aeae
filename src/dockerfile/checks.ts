/**
 * BuildKit's build checks that need the whole Dockerfile but no build options: stage names,
 * instruction casing, definition descriptions. Each adds warnings to a sink; the planner has
 * the ones that depend on what a build resolves (variables, platforms, shells).
 */
import { editDistance } from './flags.js';
import type { ArgInstruction, FromInstruction, Instruction } from './instructions.js';
import type { WarningSink } from './warnings.js';

/** Names a stage should not take: `FROM scratch` and `context` mean something else. */
const RESERVED_STAGE_NAMES = new Set(['scratch', 'context']);

/** ReservedStageName and DuplicateStageName, names compared lower-cased as BuildKit does. */
export function checkStageNames(froms: readonly FromInstruction[], sink: WarningSink): void {
  const seen = new Set<string>();
  for (const from of froms) {
    if (from.stageName === undefined) continue;
    const name = from.stageName.toLowerCase();
    if (RESERVED_STAGE_NAMES.has(name)) {
      sink.add('ReservedStageName', `Stage name should not use the same name as reserved stage "${name}"`, from.location);
    }
    if (seen.has(name)) sink.add('DuplicateStageName', `Duplicate stage name "${name}", stage names should be unique`, from.location);
    seen.add(name);
  }
}

/** The keyword as written (`From`, `copy`). */
export const keywordOf = (ins: Instruction): string => /^\S*/.exec(ins.original.trim())?.[0] ?? '';

const isLower = (s: string): boolean => s === s.toLowerCase();
const isUpper = (s: string): boolean => s === s.toUpperCase();

/**
 * ConsistentInstructionCasing: every keyword from the first FROM on (global ARGs are not
 * counted) should be all lower or all upper case like the majority of the self-consistent ones;
 * a tie counts as upper case.
 */
export function checkInstructionCasing(instructions: readonly Instruction[], sink: WarningSink): void {
  const counted = instructions.slice(Math.max(0, instructions.findIndex((i) => i.kind === 'FROM')));
  let lower = 0;
  let upper = 0;
  for (const ins of counted) {
    const k = keywordOf(ins);
    if (isLower(k)) lower++;
    else if (isUpper(k)) upper++;
  }
  const majorityLower = lower > upper;
  for (const ins of counted) {
    const k = keywordOf(ins);
    if (majorityLower ? isLower(k) : isUpper(k)) continue;
    const casing = majorityLower ? 'lowercase' : 'uppercase';
    sink.add('ConsistentInstructionCasing', `Command '${k}' should match the case of the command majority (${casing})`, ins.location);
  }
}

/**
 * InvalidDefinitionDescription (experimental): the last comment line right above a named FROM
 * or an ARG should start with the stage's or an argument's name.
 */
export function checkDefinitionDescriptions(
  instructions: readonly Instruction[],
  commentsOf: (line: number) => readonly string[] | undefined,
  sink: WarningSink,
): void {
  for (const ins of instructions) {
    const names = definedNames(ins);
    const last = commentsOf(ins.location.line)?.at(-1);
    if (names.length === 0 || last === undefined || names.includes(last.split(' ')[0] as string)) continue;
    const example = names.length > 1 ? '<arg_key>' : (names[0] as string);
    sink.add('InvalidDefinitionDescription', `Comment for ${ins.kind} should follow the format: \`# ${example} <description>\``, ins.location);
  }
}

function definedNames(ins: Instruction): string[] {
  if (ins.kind === 'ARG') return (ins as ArgInstruction).args.map((a) => a.name);
  if (ins.kind === 'FROM' && ins.stageName !== undefined) return [ins.stageName.toLowerCase()];
  return [];
}

const SECRET_WORDS = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
// Docker 28.5 (BuildKit 0.25) allows `public` only; later releases also `file` and `version`.
const NOT_SECRET_WORDS = /(?:_|^)public(?:_|$)/i;

/** SecretsUsedInArgOrEnv: an ARG or ENV name that says it holds a secret. */
export function checkSecretName(kind: 'ARG' | 'ENV', name: string, ins: Instruction, sink: WarningSink): void {
  if (SECRET_WORDS.test(name) && !NOT_SECRET_WORDS.test(name)) {
    sink.add('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${kind} "${name}")`, ins.location);
  }
}

/** ` (did you mean X?)` for the closest name within an edit distance of 2 (BuildKit's suggest.Search), else ''. */
export function didYouMean(word: string, candidates: Iterable<string>): string {
  let best = '';
  let bestDistance = 3;
  for (const c of candidates) {
    if (c === word) return '';
    const d = editDistance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best ? ` (did you mean ${best}?)` : '';
}
