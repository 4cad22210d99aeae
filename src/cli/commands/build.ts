import type { Argv } from 'yargs';
import { writeFile } from 'node:fs/promises';
import { build, planBuild, parseOutput, type GantryError } from '../../index.js';
import { parseBuildArgs, repeatable } from '../build-args.js';
import { formatPlan, formatWarning } from '../output.js';
import { chooseMode, progressPrinter } from '../progress.js';
import { OptionError } from '../../index.js';

/** `--secret id=npmrc,src=$HOME/.npmrc` or `--secret id=token,env=TOKEN` → id → file. */
function parseSecrets(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const f = Object.fromEntries(item.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const id = f.id;
    const src = f.src ?? f.source;
    if (!id || !src) throw new OptionError('SECRET_INVALID', `--secret ${item}: expected id=ID,src=FILE`);
    out[id] = src;
  }
  return out;
}
import type { GlobalOptions } from '../main.js';

export interface BuildArgs extends GlobalOptions {
  context: string;
  file?: string;
  'build-arg': string[];
  target?: string;
  platform?: string;
  'dry-run': boolean;
  format: 'text' | 'json';
  tag: string[];
  cache: boolean;
  'source-date-epoch'?: number;
  isolation: 'auto' | 'bwrap' | 'chroot';
  progress: 'auto' | 'plain' | 'json' | 'tty';
  iidfile?: string;
  'metadata-file'?: string;
  push: boolean;
  output: string[];
  secret: string[];
  'insecure-registry': string[];
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
        .option('format', { choices: ['text', 'json'] as const, default: 'text' as const, describe: 'output format of --dry-run' })
        .option('tag', { alias: 't', ...repeatable('name the image (repeatable)') })
        // yargs reads --no-cache as the negation of --cache.
        .option('cache', { type: 'boolean', default: true, describe: 'use the layer cache (--no-cache runs every step)' })
        .option('source-date-epoch', { type: 'number', describe: 'created times (and clamped file times) for a reproducible image; default $SOURCE_DATE_EPOCH' })
        .option('isolation', { choices: ['auto', 'bwrap', 'chroot'] as const, default: 'auto' as const, describe: 'how RUN is sandboxed' })
        .option('progress', { choices: ['auto', 'plain', 'json', 'tty'] as const, default: 'auto' as const, describe: 'progress output' })
        .option('iidfile', { type: 'string', describe: 'write the image ID (config digest) to this file' })
        .option('metadata-file', { type: 'string', describe: 'write build metadata (JSON) to this file' })
        .option('push', { type: 'boolean', default: false, describe: 'push the tagged image(s) after the build' })
        .option('secret', repeatable('id=ID,src=FILE: a secret for RUN --mount=type=secret'))
        .option('output', { alias: 'o', ...repeatable('type=oci|docker,dest=FILE.tar; type=oci,dest=DIR; type=local,dest=DIR; type=registry[,name=N]') })
        .option('insecure-registry', repeatable('reach this registry host[:port] over plain HTTP')) as unknown as Argv<BuildArgs>,
    async (argv) => {
      if (!argv['dry-run']) {
        const onProgress = await progressPrinter(chooseMode(argv.progress));
        const result = await build({
          root: argv.root,
          context: argv.context,
          ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
          tags: argv.tag,
          buildArgs: parseBuildArgs(argv['build-arg']),
          ...(argv.target !== undefined ? { target: argv.target } : {}),
          ...(argv.platform !== undefined ? { platform: argv.platform } : {}),
          noCache: !argv.cache,
          ...(argv['source-date-epoch'] !== undefined ? { sourceDateEpoch: argv['source-date-epoch'] } : {}),
          isolation: argv.isolation,
          insecureRegistries: argv['insecure-registry'],
          output: argv.output.map(parseOutput),
          secrets: parseSecrets(argv.secret),
          push: argv.push,
          onProgress,
        });
        for (const w of result.plan.warnings) process.stderr.write(formatWarning(w) + '\n');
        if (argv.iidfile) await writeFile(argv.iidfile, result.configDigest);
        if (argv['metadata-file']) {
          await writeFile(
            argv['metadata-file'],
            JSON.stringify({ 'containerimage.digest': result.digest, 'containerimage.config.digest': result.configDigest, 'image.name': result.tags.join(',') }, null, 2),
          );
        }
        process.stdout.write(result.configDigest + '\n');
        return;
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
