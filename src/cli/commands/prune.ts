import type { Argv } from 'yargs';
import { fsckStore, pruneStore } from '../../index.js';
import { EXIT } from '../exit-codes.js';
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
      if (r.snapshots.length > 0) process.stdout.write(`Deleted ${r.snapshots.length} step snapshot(s)\n`);
      if (r.trash.entries > 0) process.stdout.write(`Emptied the trash: ${r.trash.entries} build tree(s), about ${humanSize(r.trash.bytes)}\n`);
    },
  ).command<GlobalOptions & { repair: boolean; json: boolean }>(
    'fsck',
    'Check the store (every blob hashed, every reference followed) and, with --repair, mend it',
    (y) =>
      y
        .option('repair', { type: 'boolean', default: false, describe: 'remove what is broken, rebuild index.json if unreadable' })
        .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as never,
    async (argv) => {
      const r = await fsckStore(argv.root, { repair: argv.repair });
      if (argv.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else {
        for (const p of r.problems) process.stdout.write(`${p.kind} ${p.subject}: ${p.detail}${p.repaired ? ` (${p.repaired})` : ''}\n`);
        const open = r.problems.filter((p) => !p.repaired && p.kind !== 'unknown-entry').length;
        process.stdout.write(
          `Checked ${r.blobs} blob(s) and ${r.images} image(s): ${r.problems.length === 0 ? 'no problems' : `${r.problems.length} problem(s)`}` +
            (open > 0 ? `, ${open} left; run gantry fsck --repair\n` : '\n'),
        );
      }
      if (!r.ok) process.exitCode = EXIT.failure;
    },
  );
}
