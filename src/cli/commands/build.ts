import type { Argv } from 'yargs';
import { planBuild, type GantryError } from '../../index.js';
import { parseBuildArgs, repeatable } from '../build-args.js';
import { formatPlan, formatWarning } from '../output.js';
import type { GlobalOptions } from '../main.js';

export interface BuildArgs extends GlobalOptions {
  context: string;
  file?: string;
  'build-arg': string[];
  target?: string;
  platform?: string;
  'dry-run': boolean;
  format: 'text' | 'json';
}

export function buildCommand(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<BuildArgs>(
    'build [context]',
    'Build an image from a Dockerfile',
    (y) =>
      y
        .positional('context', { type: 'string', default: '.', describe: 'build context directory' })
        .option('file', { alias: 'f', type: 'string', describe: 'Dockerfile path (default: CONTEXT/Dockerfile; - for stdin)' })
        .option('build-arg', repeatable('set a build argument (KEY=VALUE, or KEY to take it from the environment)'))
        .option('target', { type: 'string', describe: 'build this stage and what it needs' })
        .option('platform', { type: 'string', describe: 'target platform (os/arch[/variant])' })
        .option('dry-run', { type: 'boolean', default: false, describe: 'print the build plan and warnings; execute nothing' })
        .option('format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'output format of --dry-run' }) as unknown as Argv<BuildArgs>,
    async (argv) => {
      if (!argv['dry-run']) {
        // Executing builds arrives with the build engine; planning works today.
        throw Object.assign(new Error('executing builds is not implemented yet: use --dry-run to see the plan'), {
          exitCode: 2,
        });
      }
      const plan = await planBuild({
        context: argv.context,
        ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
        buildArgs: parseBuildArgs(argv['build-arg']),
        ...(argv.target !== undefined ? { target: argv.target } : {}),
        ...(argv.platform !== undefined ? { platform: argv.platform } : {}),
      }).catch((err: GantryError) => {
        throw err;
      });
      if (argv.format === 'json') {
        process.stdout.write(JSON.stringify({ plan, warnings: plan.warnings }, null, 2) + '\n');
      } else {
        process.stdout.write(formatPlan(plan) + '\n');
        for (const w of plan.warnings) process.stderr.write(formatWarning(w) + '\n');
      }
    },
  );
}
