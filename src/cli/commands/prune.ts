import type { Argv } from 'yargs';
import { pruneStore } from '../../index.js';
import { humanSize } from '../format.js';
import type { GlobalOptions } from '../main.js';

export function pruneCommand(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<GlobalOptions & { all: boolean }>(
    'prune',
    'Remove dangling images and blobs nothing references',
    (y) => y.option('all', { alias: 'a', type: 'boolean', default: false, describe: 'also remove untagged images' }) as never,
    async (argv) => {
      const r = await pruneStore(argv.root, { all: argv.all });
      for (const d of r.images) process.stdout.write(`Deleted image: ${d}\n`);
      process.stdout.write(`Deleted ${r.blobs.length} blob(s), reclaimed ${humanSize(r.bytes)}\n`);
    },
  );
}
