/**
 * The gantry command line: yargs commands, one file each, over the public API.
 * Errors become messages and exit codes here and nowhere else.
 */
import type { Argv } from 'yargs';
import { GantryError, OptionError, reexecInUserNamespace, resolveRoot, version, warningsOf } from '../index.js';
import { buildCommand, runBuild, type BuildArgs } from './commands/build.js';
import { fastBuildArgs } from './fast-build.js';
import { lintCommand } from './commands/lint.js';
import { imageCommands } from './commands/images.js';
import { importCommand } from './commands/import.js';
import { pruneCommand } from './commands/prune.js';
import { archiveCommands } from './commands/archives.js';
import { registryCommands } from './commands/registry.js';
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
  [['prune', 'fsck'], pruneCommand],
  [['save', 'load', 'export'], archiveCommands],
  [['pull', 'push', 'login', 'logout'], registryCommands],
];

/** The command a command line names: its first word that is not an option (or --root's value). */
export function commandName(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return undefined;
    if (a === '--root') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

/**
 * The yargs parser for a command line. yargs is loaded here, on first use, not with the
 * bundle: a plain build command line never needs it (fast-build.ts).
 */
export async function createParser(args: string[], handlers: Handlers = {}): Promise<Argv<GlobalOptions>> {
  const { default: yargs } = await import('yargs');
  let y = yargs(args)
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
      argv.root = resolveRoot(argv.root as string | undefined);
    }) as unknown as Argv<GlobalOptions>;
  const named = commandName(args);
  const files = COMMAND_FILES.filter(([names]) => named === undefined || names.includes(named));
  for (const [, register] of files.length > 0 ? files : COMMAND_FILES) y = register(y, handlers);
  return y
    .demandCommand(1, 'name a command: gantry --help lists them')
    .strict()
    .version(version)
    .alias('h', 'help')
    .alias('v', 'version')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      process.stderr.write(`error: ${msg}\nRun gantry --help for usage.\n`);
      process.exit(EXIT.usage);
    });
}

/** The part of yargs' internals `withoutHelpCache` reaches. */
interface YargsInternals {
  getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } };
}

/**
 * yargs renders a command's whole help text right after starting its handler, to have it
 * ready should the command fail: 15 to 30 ms of every command, blocking the handler's first
 * I/O. gantry's fail handler never prints help (`--help` renders its own), so nothing reads it.
 */
export function withoutHelpCache<T>(parser: Argv<T>): Argv<T> {
  const internals = parser as unknown as Partial<YargsInternals>;
  const usage = internals.getInternalMethods?.().getUsageInstance();
  if (usage && typeof usage.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
  return parser;
}

export async function main(args: string[]): Promise<void> {
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
    const plain = isBuild ? fastBuildArgs(args) : undefined;
    if (plain) await runBuild(plain);
    else await withoutHelpCache(await createParser(args)).parseAsync();
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
