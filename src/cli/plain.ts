/**
 * A plain command line read without yargs. Loading yargs and its parse cost a command 10 to
 * 15 ms, and yargs renders the command's whole help text each time it runs a handler (to have
 * it ready should the command fail), 15 to 30 ms more. So a command line that names a command
 * and says nothing unusual is read here, with node:util's parseArgs, from what the command's
 * file registers with yargs (its options and positionals, recorded by `shapeOf` without
 * yargs), into what yargs would give the handler; and the handler is called.
 *
 * Anything else is left to yargs (undefined here): help and version, an unknown or misspelled
 * option, a value yargs might read otherwise (`-tNAME`, a value starting with `-`,
 * `--push=false`, `--push false`, a number in an untyped positional), an option that takes one
 * value given twice, `--`, a choice or number yargs would refuse, a missing or extra
 * positional, a command whose builder does more than declare options (`system df`). yargs then
 * gives its usual result or message; test/unit/cli-parser.test.ts holds the two readings to
 * each other, command by command.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Argv } from 'yargs';
import { resolveRoot } from '../index.js';

/** The part of a yargs option or positional spec gantry's commands use. */
export interface Spec {
  type?: 'string' | 'boolean' | 'number';
  alias?: string;
  choices?: readonly string[];
  default?: unknown;
  array?: boolean;
  demandOption?: boolean | string;
  coerce?: (value: never) => unknown;
}

interface Positional {
  name: string;
  required: boolean;
  variadic: boolean;
}

/** A command as its file registers it: options, positionals, handler. */
export interface CommandShape {
  name: string;
  positionals: Positional[];
  specs: Record<string, Spec>;
  options: Record<string, Spec>;
  handler: (argv: never) => unknown;
}

/** A builder did something `shapeOf` does not follow: yargs reads that command's lines. */
class Unsupported extends Error {}

/** The keys of a spec this reader follows (describe and the like change nothing it reads). */
const SPEC_KEYS = new Set(['type', 'alias', 'choices', 'default', 'array', 'demandOption', 'coerce', 'describe', 'requiresArg', 'defaultDescription']);

/** `spec`, when every key of it is one this reader follows. */
function followed(spec: Spec, name: string): Spec {
  for (const key of Object.keys(spec)) if (!SPEC_KEYS.has(key)) throw new Unsupported(`${name}: ${key}`);
  return spec;
}

/** `push <image> [destination]` → the name and the positionals, as yargs reads the string. */
function parseCommandString(cmd: string): { name: string; positionals: Positional[] } {
  const [name = '', ...words] = cmd.trim().split(/\s+/);
  const positionals = words.map((w) => {
    const m = /^([<[])([^>\]]+?)(\.\.)?[>\]]$/.exec(w);
    if (!m) throw new Unsupported(`positional ${w}`);
    return { name: m[2] as string, required: m[1] === '<', variadic: m[3] !== undefined };
  });
  return { name, positionals };
}

type Shapes = Map<string, CommandShape | null>;

/** Records `cmd` (under `prefix`, the words of the commands it is nested in) into `shapes`. */
function recordCommand(shapes: Shapes, prefix: string, cmd: unknown, builder: unknown, handler: unknown): void {
  if (typeof cmd !== 'string') return; // another form of .command: never read here
  let name = prefix + (cmd.trim().split(/\s+/)[0] ?? '');
  try {
    const parsed = parseCommandString(cmd);
    name = prefix + parsed.name;
    const shape: CommandShape = { name, positionals: parsed.positionals, specs: {}, options: {}, handler: handler as CommandShape['handler'] };
    if (typeof builder === 'function') builder(builderRecorder(shapes, shape));
    else if (builder !== undefined) throw new Unsupported('builder form');
    // A group (`system`) has no handler of its own: its subcommands are recorded.
    shapes.set(name, typeof handler === 'function' ? shape : null);
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
    shapes.set(name, null);
  }
}

/** A stand-in for the yargs object a command's builder is given: it records what is declared. */
function builderRecorder(shapes: Shapes, shape: CommandShape): unknown {
  const self: Record<string, unknown> = {
    option(name: string, spec: Spec) {
      shape.options[name] = followed(spec, name);
      return self;
    },
    options(specs: Record<string, Spec>) {
      for (const [name, spec] of Object.entries(specs)) shape.options[name] = followed(spec, name);
      return self;
    },
    positional(name: string, spec: Spec) {
      shape.specs[name] = followed(spec, name);
      return self;
    },
    command(cmd: unknown, _describe: string, builder: unknown, handler: unknown) {
      recordCommand(shapes, `${shape.name} `, cmd, builder, handler);
      return self;
    },
    // A group's: a line without a subcommand has no handler here, so yargs reads it.
    demandCommand: () => self,
    // `system df` gives -v to --verbose: parseArgs knows no --version to begin with.
    version: (enable: unknown) => {
      if (enable !== false) throw new Unsupported('version');
      return self;
    },
  };
  return new Proxy(self, {
    get(target, key) {
      if (typeof key === 'string' && key in target) return target[key];
      throw new Unsupported(`builder method ${String(key)}`);
    },
  });
}

/**
 * The commands a command file registers, recorded without yargs, by their words (`push`,
 * `system df`): each with its options, positionals and handler, or null when yargs must read
 * its lines (a builder that does more than declare them; a group with no handler of its own).
 */
export function shapesOf<G>(register: (y: Argv<G>) => unknown): Shapes {
  const shapes: Shapes = new Map();
  const top: Record<string, unknown> = {
    command(cmd: unknown, _describe: string, builder: unknown, handler: unknown) {
      recordCommand(shapes, '', cmd, builder, handler);
      return top;
    },
  };
  register(top as unknown as Argv<G>);
  return shapes;
}

type ParseOptions = NonNullable<ParseArgsConfig['options']>;

/** parseArgs' options for a command: --root, and its own; a repeatable option (default []) may repeat. */
function parseOptions(shape: CommandShape): ParseOptions {
  const out: ParseOptions = { root: { type: 'string' } };
  for (const [name, spec] of Object.entries(shape.options)) {
    if (spec.alias !== undefined && (typeof spec.alias !== 'string' || spec.alias.length !== 1)) throw new Unsupported(`alias of ${name}`);
    out[name] = {
      type: spec.type === 'boolean' ? 'boolean' : 'string',
      ...(spec.alias !== undefined ? { short: spec.alias } : {}),
      ...(Array.isArray(spec.default) ? { multiple: true } : {}),
    };
  }
  return out;
}

const NUMERIC = /^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i;

/** One value as yargs gives it for `spec`, or undefined when yargs might read it otherwise. */
function valueOf(spec: Spec, v: string | boolean | string[]): { value: unknown } | undefined {
  if (spec.array) return undefined;
  if (spec.choices && !(typeof v === 'string' && spec.choices.includes(v))) return undefined;
  let value: unknown = v;
  if (spec.type === 'number') {
    if (typeof v !== 'string' || !/^\d+$/.test(v)) return undefined;
    value = Number(v);
  } else if (spec.type === undefined && !spec.choices && typeof v === 'string' && NUMERIC.test(v)) {
    return undefined;
  }
  if (spec.coerce) {
    try {
      value = spec.coerce(value as never);
    } catch {
      return undefined;
    }
  }
  return { value };
}

/**
 * The arguments yargs would give `shape`'s handler for this command line (`args` without the
 * program), or undefined: let yargs read the line.
 */
export function plainArgs(shape: CommandShape, args: readonly string[]): Record<string, unknown> | undefined {
  let opts: ParseOptions;
  let parsed;
  try {
    opts = parseOptions(shape);
    // allowNegative (--no-cache) is Node 20.16's; an older parseArgs refuses --no-cache as unknown.
    parsed = parseArgs({ args: [...args], options: opts, strict: true, allowPositionals: true, allowNegative: true, tokens: true } as ParseArgsConfig & { allowNegative: boolean; tokens: true });
  } catch {
    return undefined;
  }
  const { positionals, tokens } = parsed;
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const path = shape.name.split(' ');
  if (path.some((word, i) => positionals[i] !== word)) return undefined;
  // A boolean's value (`--push false`) or anything yargs might take as one.
  if (positionals.some((p) => p === 'true' || p === 'false')) return undefined;
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind === 'option-terminator') return undefined;
    if (t.kind !== 'option') continue;
    // -tNAME, -t=NAME: a short option with its value attached.
    if (!t.rawName.startsWith('--') && t.inlineValue) return undefined;
    if (seen.has(t.name) && !opts[t.name]?.multiple) return undefined;
    seen.add(t.name);
  }
  const out: Record<string, unknown> = { _: path, root: resolveRoot(values.root as string | undefined) };
  const words = positionals.slice(path.length);
  for (const p of shape.positionals) {
    const spec = shape.specs[p.name] ?? {};
    const given = p.variadic ? words.splice(0) : words.splice(0, 1);
    if (given.length === 0) {
      if (p.required || spec.demandOption) return undefined;
      if (spec.default !== undefined) out[p.name] = spec.default;
      else if (spec.array) out[p.name] = []; // as yargs gives an array positional not given
      continue;
    }
    if (given.some((w) => w === '' || (spec.type !== 'string' && NUMERIC.test(w)))) return undefined;
    // A choice yargs would refuse, or a value it would coerce: its reading.
    if (spec.coerce || (spec.choices && given.some((w) => !spec.choices?.includes(w)))) return undefined;
    out[p.name] = p.variadic || spec.array ? given : given[0];
  }
  if (words.length > 0) return undefined;
  for (const [name, spec] of Object.entries(shape.options)) {
    const v = values[name];
    if (v === undefined) {
      if (spec.demandOption) return undefined;
      if (spec.default !== undefined) out[name] = Array.isArray(spec.default) ? [] : spec.default;
      continue;
    }
    const read = valueOf(spec, v);
    if (!read) return undefined;
    out[name] = read.value;
  }
  return out;
}
