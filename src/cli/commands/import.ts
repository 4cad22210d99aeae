import type { Argv } from 'yargs';
import { importImage } from '../../index.js';
import { repeatable } from '../build-args.js';
import type { GlobalOptions } from '../main.js';

interface ImportArgs extends GlobalOptions {
  file: string;
  reference?: string;
  change: string[];
  platform?: string;
  message?: string;
}

export function importCommand(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<ImportArgs>(
    'import <file> [reference]',
    'Make a one-layer image from a root filesystem tarball (file, URL or - for stdin)',
    (y) =>
      y
        .positional('file', { type: 'string', demandOption: true, describe: 'tar, tar.gz, tar.bz2, tar.xz or tar.zst; a URL; - for stdin' })
        .positional('reference', { type: 'string', describe: 'name the image (name[:tag])' })
        .option('change', { alias: 'c', ...repeatable('apply a Dockerfile instruction to the config (CMD, ENV, ...)') })
        .option('platform', { type: 'string', describe: 'os/arch[/variant] of the image (default: this machine)' })
        .option('message', { alias: 'm', type: 'string', describe: 'created_by text of the history entry' }) as never,
    async (argv) => {
      const sde = process.env.SOURCE_DATE_EPOCH;
      const result = await importImage({
        root: argv.root,
        // yargs hands a lone '-' positional over as ''.
        source: argv.file === '' ? '-' : argv.file,
        ...(argv.reference !== undefined ? { reference: argv.reference } : {}),
        changes: argv.change,
        ...(argv.platform !== undefined ? { platform: argv.platform } : {}),
        ...(argv.message !== undefined ? { message: argv.message } : {}),
        ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
      });
      process.stdout.write(result.id + '\n');
    },
  );
}
