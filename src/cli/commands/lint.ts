import type { Argv } from 'yargs';
import { lint } from '../../index.js';
import { parseBuildArgs, repeatable } from '../build-args.js';
import { formatError, formatWarning } from '../output.js';
import type { GlobalOptions } from '../main.js';
import { EXIT } from '../exit-codes.js';

export interface LintArgs extends GlobalOptions {
  context: string;
  file?: string;
  'build-arg': string[];
  format: 'text' | 'json';
}

export function lintCommand(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<LintArgs>(
    'lint [context]',
    'Check a Dockerfile: print warnings with locations; exit 1 on errors',
    (y) =>
      y
        .positional('context', { type: 'string', default: '.', describe: 'build context directory' })
        .option('file', { alias: 'f', type: 'string', describe: 'Dockerfile path (default: CONTEXT/Dockerfile; - for stdin)' })
        .option('build-arg', repeatable('build arguments, as for build'))
        .option('format', { choices: ['text', 'json'] as const, default: 'text' as const }) as unknown as Argv<LintArgs>,
    async (argv) => {
      const result = await lint({
        context: argv.context,
        ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
        buildArgs: parseBuildArgs(argv['build-arg']),
      });
      if (argv.format === 'json') {
        const error = result.error ? { code: result.error.code, message: result.error.message, ...('location' in result.error ? { location: result.error.location } : {}) } : undefined;
        process.stdout.write(JSON.stringify({ file: result.file, warnings: result.warnings, error }, null, 2) + '\n');
      } else {
        for (const w of result.warnings) process.stdout.write(formatWarning(w) + '\n');
        if (result.error) process.stdout.write(formatError(result.error) + '\n');
        if (!result.error && result.warnings.length === 0) process.stdout.write(`${result.file}: no problems found\n`);
      }
      if (result.error) process.exitCode = EXIT.failure;
    },
  );
}
