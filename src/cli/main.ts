/**
 * The gantry command line: yargs commands, one file each, over the public API.
 * Errors become messages and exit codes here and nowhere else.
 */
import type { Argv } from 'yargs';
import { GantryError, OptionError, reexecInUserNamespace, resolveRoot, version, warningsOf } from '../index.js';
import { buildCommand, type BuildArgs } from './commands/build.js';
import { plainArgs, shapesOf, type CommandShape } from './plain.js';
import { lintCommand } from './commands/lint.js';
import { imageCommands } from './commands/images.js';
import { importCommand } from './commands/import.js';
import { containerCommands, runLine } from './commands/containers.js';
import { pruneCommand } from './commands/prune.js';
import { archiveCommands } from './commands/archives.js';
import { registryCommands } from './commands/registry.js';
import { searchCommand } from './commands/search.js';
import { systemCommands } from './commands/system.js';
import { completionCommand } from './commands/completion.js';
import { closest, unknownCommandMessage } from './suggest.js';
import { EXIT } from './exit-codes.js';
import { formatError, formatWarning } from './output.js';

export interface GlobalOptions {
  root: string;
}

type Register = (y: Argv<GlobalOptions>, handlers: Handlers) => Argv<GlobalOptions>;

/** Command handlers in place of the real ones (tests read what yargs parsed). */
export interface Handlers {
  build?: (argv: BuildArgs) => Promise<void>;
}

/**
 * The command files and the commands each defines. A command line that names one of these
 * gets only that file's commands registered (all of them cost every command 3 ms); help with no
 * command, or a name that is none of these, gets them all, so listings and suggestions are whole.
 */
export const COMMAND_FILES: [readonly string[], Register][] = [
  [['build'], (y, h) => buildCommand(y, h.build)],
  [['lint'], lintCommand],
  [['images', 'tag', 'rmi', 'inspect', 'history'], imageCommands],
  [['import'], importCommand],
  [['from', 'containers', 'ps', 'run', 'cp', 'config', 'commit', 'rm'], containerCommands],
  [['prune', 'fsck'], pruneCommand],
  [['save', 'load', 'export'], archiveCommands],
  [['pull', 'push', 'login', 'logout'], registryCommands],
  [['search'], searchCommand],
  [['system'], systemCommands],
  [['completion'], completionCommand],
];

/** The commands that are groups, and theirs. */
const SUBCOMMANDS: Record<string, readonly string[]> = { system: ['df'] };

/** The words of a command line that are not options, after `from` (the value of --root skipped). */
function wordsOf(args: readonly string[], from = 0): { word: string; at: number }[] {
  const out: { word: string; at: number }[] = [];
  for (let i = from; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') break;
    if (a === '--root') i++;
    else if (!a.startsWith('-')) out.push({ word: a, at: i });
  }
  return out;
}

/**
 * The error for a command line whose command (or a group's subcommand) gantry does not have,
 * with the closest one it has: `unknown command "biuld"; did you mean "build"?`. None for a
 * completion request (its words are the line being typed).
 */
export function unknownCommand(args: readonly string[]): string | undefined {
  if (args.includes('--get-yargs-completions')) return undefined;
  const [first] = wordsOf(args);
  if (!first) return undefined;
  const known = COMMAND_FILES.flatMap(([names]) => [...names]);
  if (!known.includes(first.word)) return unknownCommandMessage(first.word, known);
  const subcommands = SUBCOMMANDS[first.word];
  const [second] = subcommands ? wordsOf(args, first.at + 1) : [];
  if (subcommands && second && !subcommands.includes(second.word)) return unknownCommandMessage(second.word, subcommands, `${first.word} `);
  return undefined;
}

/**
 * yargs' strict-mode complaint (`Unknown arguments: bogus, x`) said as docker says it: an
 * option is an unknown flag (`unknown flag: --bogus; did you mean --format?`), a word an
 * unexpected argument.
 */
export function unknownArgumentsMessage(msg: string, args: readonly string[], options: readonly string[]): string | undefined {
  const m = /^Unknown arguments?: (.*)$/.exec(msg);
  if (!m) return undefined;
  const names = (m[1] as string).split(', ');
  return names
    .map((name) => {
      const long = args.find((a) => a === `--${name}` || a.startsWith(`--${name}=`) || a === `--no-${name}`);
      const short = name.length === 1 ? args.find((a) => /^-[^-]/.test(a) && a.slice(1).includes(name)) : undefined;
      if (long || short) {
        const flag = long ? (long.split('=')[0] as string) : `-${name}`;
        const negated = flag.startsWith('--no-');
        const hint = long ? closest(name.replace(/^no-/, ''), options.filter((o) => o.length > 1)) : undefined;
        return `unknown flag: ${flag}${hint ? `; did you mean --${negated ? 'no-' : ''}${hint}?` : ''}`;
      }
      return `unexpected argument "${name}"`;
    })
    .join('\n');
}

/** The command a command line names: its first word that is not an option (or --root's value). */
export function commandName(args: readonly string[]): string | undefined {
  return wordsOf(args)[0]?.word;
}

/**
 * The yargs parser for a command line. yargs is loaded here, on first use, not with the
 * bundle: a plain command line never needs it (plain.ts).
 */
export async function createParser(args: string[], handlers: Handlers = {}): Promise<Argv<GlobalOptions>> {
  const { default: yargs } = await import('yargs');
  const shape = lineCommand(args, handlers);
  let y = yargs(forYargs(args, shape))
    .scriptName('gantry')
    .usage('$0 <command> [options]\n\nA daemonless Dockerfile image builder.')
    .option('root', {
      type: 'string',
      describe: 'store location (default: $GANTRY_ROOT or $XDG_DATA_HOME/gantry)',
      default: undefined as unknown as string,
      defaultDescription: '$GANTRY_ROOT or $XDG_DATA_HOME/gantry',
      global: true,
    })
    .middleware((argv) => {
      restoreDashes(argv);
      argv.root = resolveRoot(argv.root as string | undefined);
    }) as unknown as Argv<GlobalOptions>;
  const named = commandName(args);
  const files = COMMAND_FILES.filter(([names]) => named === undefined || names.includes(named));
  for (const [, register] of files.length > 0 ? files : COMMAND_FILES) y = register(y, handlers);
  const parser: Argv<GlobalOptions> = y
    .demandCommand(1, 'name a command: gantry --help lists them')
    .strict()
    .version(version)
    .alias('h', 'help')
    .alias('v', 'version')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      const known = COMMAND_FILES.some(([names]) => named !== undefined && names.includes(named));
      const options = optionNames(shape);
      msg = msg.split(DASH).join('-');
      const mine = unknownArgumentsMessage(msg, args, options);
      const said = mine ? mine.split('\n').map((line) => `error: ${line}`).join('\n') : `error: ${msg}`;
      const help = known ? `gantry ${named} --help` : 'gantry --help';
      process.stderr.write(`${said}\nRun ${help} for usage.\n`);
      process.exit(EXIT.usage);
    });
  return parser;
}

/**
 * The command a command line names, as its file registers it (plain.ts records it without
 * yargs): a group's subcommand when one is named (`system df`); null when only yargs can
 * read its lines; undefined when the line names no command gantry has.
 */
export function lineCommand(args: readonly string[], handlers: Handlers = {}): CommandShape | null | undefined {
  const [first, second] = wordsOf(args);
  const file = COMMAND_FILES.find(([names]) => first !== undefined && names.includes(first.word));
  if (!file || !first) return undefined;
  const shapes = shapesOf<GlobalOptions>((y) => file[1](y, handlers));
  const sub = second ? shapes.get(`${first.word} ${second.word}`) : undefined;
  return sub !== undefined ? sub : shapes.get(first.word);
}

/** What a positional `-` (standard input) is given to yargs as; `restoreDashes` turns it back. */
const DASH = '\u0000-';

/**
 * A command line as yargs is given it, two of its readings undone:
 * - yargs reads `--no-X VALUE` as the negation of an option X and VALUE as a positional, even
 *   where the option is named `no-X` (build's --no-cache-filter); given `--no-X=VALUE`, it
 *   reads the option. So a value after such an option is joined to it.
 * - yargs gives a positional `-` to the handler as `''` (or drops it, or takes the default),
 *   where it means standard input (`gantry build -`). So a positional `-` goes in as `DASH`,
 *   which `restoreDashes` makes `-` again.
 */
function forYargs(args: string[], shape: CommandShape | null | undefined): string[] {
  const options = Object.entries(shape?.options ?? {});
  const negative = new Set(options.filter(([name, spec]) => name.startsWith('no-') && spec.type !== 'boolean').map(([name]) => `--${name}`));
  const valued = new Set(['--root', ...options.filter(([, spec]) => spec.type !== 'boolean').flatMap(([name, spec]) => [`--${name}`, ...(spec.alias ? [`-${spec.alias}`] : [])])]);
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return [...out, ...args.slice(i)];
    const next = args[i + 1];
    if (negative.has(a) && next !== undefined && !next.startsWith('-')) {
      out.push(`${a}=${next}`);
      i++;
    } else if (a === '-' && !valued.has(args[i - 1] ?? '')) out.push(DASH);
    else out.push(a);
  }
  return out;
}

/** `DASH` in what yargs read, as the `-` it was. */
function restoreDashes(argv: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(argv)) {
    if (value === DASH) argv[key] = '-';
    else if (Array.isArray(value) && value.includes(DASH)) argv[key] = value.map((v) => (v === DASH ? '-' : v));
  }
}

/** The long options a command line may give: the command's own, --root, --help and --version. */
function optionNames(shape: CommandShape | null | undefined): string[] {
  return ['root', 'help', 'version', ...Object.keys(shape?.options ?? {})];
}

export async function main(args: string[]): Promise<void> {
  const unknown = unknownCommand(args);
  if (unknown) {
    // docker's status for a command it does not have (other usage errors are 2).
    process.stderr.write(`error: ${unknown}\n`);
    process.exitCode = EXIT.failure;
    return;
  }
  try {
    // A non-root caller builds in a user namespace of its own (sandbox/rootless.ts); other
    // commands enter it too when the caller has a range, so that they can manage the trees a
    // build left in the store, owned by the caller's subordinate ids.
    const isBuild = commandName(args) === 'build';
    const inner = await reexecInUserNamespace([process.argv[1] ?? '', ...args], { required: isBuild });
    if (inner !== undefined) {
      process.exitCode = inner;
      return;
    }
    // A plain command line is read without yargs (plain.ts), its handler called here. A run's
    // command is everything after its target (runLine marks it with --, which yargs reads).
    if (commandName(args) === 'run') args = runLine(args);
    const shape = lineCommand(args);
    const plain = shape ? plainArgs(shape, args) : undefined;
    if (shape && plain) await shape.handler(plain as never);
    else await (await createParser(args)).parseAsync();
  } catch (err) {
    if (err instanceof Error && 'reported' in err && 'exitCode' in err) {
      // Told already (a JSON progress line): only the exit status is left to give.
      process.exitCode = err.exitCode as number;
    } else if (err instanceof OptionError) {
      process.stderr.write(formatError(err) + '\n');
      process.exitCode = EXIT.usage;
    } else if (err instanceof GantryError) {
      // A Dockerfile error comes with the warnings found before it.
      for (const w of warningsOf(err)) process.stderr.write(formatWarning(w) + '\n');
      process.stderr.write(formatError(err) + '\n');
      process.exitCode = EXIT.failure;
    } else if (err instanceof Error && 'exitCode' in err) {
      process.stderr.write(`error: ${err.message}\n`);
      process.exitCode = (err as { exitCode: number }).exitCode;
    } else {
      process.stderr.write(`gantry: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = EXIT.internal;
    }
  }
}
