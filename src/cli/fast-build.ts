/**
 * `gantry build` read without yargs. Loading yargs, the `assert` module it needs, and its
 * parse of one command line cost a no-op rebuild 10 to 15 ms, a fifth of its time. A plain
 * build command line (`gantry [--root R] build [options] [context]`) is read here with
 * node:util's parseArgs, from the options yargs registers (BUILD_OPTIONS), into what yargs
 * would have given the handler. Anything else is left to yargs (undefined here): help and
 * version, an unknown or misspelled option, a value yargs might read otherwise (`-tNAME`, a
 * value starting with `-`, `--push=false`), an option that takes one value given twice, `--`, a
 * choice or number yargs would refuse, a second positional. yargs then gives its usual
 * result or message; test/unit/cli-parser.test.ts holds the two readings to each other.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { resolveRoot } from '../index.js';
import { BUILD_CONTEXT, BUILD_OPTIONS, type BuildArgs } from './commands/build.js';

interface Spec {
  type?: 'string' | 'boolean' | 'number';
  alias?: string;
  choices?: readonly string[];
  default?: unknown;
}

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

/** parseArgs' options for the build command: a repeatable option (default []) may repeat. */
function options(): ParseOptions {
  const out: ParseOptions = { root: { type: 'string' } };
  for (const [name, spec] of Object.entries(BUILD_OPTIONS) as [string, Spec][]) {
    out[name] = {
      type: spec.type === 'boolean' ? 'boolean' : 'string',
      ...(spec.alias !== undefined ? { short: spec.alias } : {}),
      ...(Array.isArray(spec.default) ? { multiple: true } : {}),
    };
  }
  return out;
}

/** The build command's arguments as yargs would give them, or undefined: let yargs read the line. */
export function fastBuildArgs(args: readonly string[]): BuildArgs | undefined {
  const opts = options();
  let parsed;
  try {
    // allowNegative (--no-cache) is Node 20.16's; an older parseArgs refuses --no-cache as unknown.
    parsed = parseArgs({ args: [...args], options: opts, strict: true, allowPositionals: true, allowNegative: true, tokens: true } as ParseArgsConfig & { allowNegative: boolean; tokens: true });
  } catch {
    return undefined;
  }
  const { positionals, tokens } = parsed;
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  if (positionals[0] !== 'build' || positionals.length > 2) return undefined;
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind === 'option-terminator') return undefined;
    if (t.kind !== 'option') continue;
    // -tNAME, -t=NAME: a short option with its value attached.
    if (!t.rawName.startsWith('--') && t.inlineValue) return undefined;
    if (seen.has(t.name) && !opts[t.name]?.multiple) return undefined;
    seen.add(t.name);
  }
  const out: Record<string, unknown> = {
    root: resolveRoot(values.root as string | undefined),
    context: positionals[1] ?? BUILD_CONTEXT.default,
  };
  for (const [name, spec] of Object.entries(BUILD_OPTIONS) as [string, Spec][]) {
    const v = values[name];
    if (v === undefined) {
      if (spec.default !== undefined) out[name] = Array.isArray(spec.default) ? [] : spec.default;
      continue;
    }
    if (spec.choices && !spec.choices.includes(v as string)) return undefined;
    if (spec.type === 'number') {
      if (!/^\d+$/.test(v as string)) return undefined;
      out[name] = Number(v);
    } else {
      out[name] = v;
    }
  }
  return out as unknown as BuildArgs;
}
