import type { Argv } from 'yargs';
import { exportRootfs, load, save, familiarName, parseReference } from '../../index.js';
import type { GlobalOptions } from '../main.js';

export function archiveCommands(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs
    .command<GlobalOptions & { images: string[]; output: string; format: 'docker' | 'oci' }>(
      'save <images..>',
      'Write images to a tar archive (docker-archive or OCI)',
      (y) =>
        y
          .positional('images', { type: 'string', array: true, demandOption: true })
          .option('output', { alias: 'o', type: 'string', demandOption: true, requiresArg: true, describe: 'archive file, or - for standard output' })
          .option('format', { choices: ['docker', 'oci'] as const, default: 'docker' as const, describe: 'docker: loads with docker load (also an OCI layout); oci: OCI image layout only' }) as never,
      async (argv) => {
        await save({ root: argv.root, images: argv.images, output: argv.output, format: argv.format });
      },
    )
    .command<GlobalOptions & { input: string }>(
      'load',
      'Load images from a docker-archive or OCI archive (plain or compressed)',
      (y) => y.option('input', { alias: 'i', type: 'string', default: '-', describe: 'archive file, or - for standard input' }) as never,
      async (argv) => {
        const loaded = await load({ root: argv.root, input: argv.input === '' ? '-' : argv.input });
        for (const l of loaded) {
          if (l.name) {
            const r = parseReference(l.name);
            process.stdout.write(`Loaded image: ${familiarName(r)}:${r.tag ?? 'latest'}\n`);
          } else process.stdout.write(`Loaded image ID: ${l.id}\n`);
        }
      },
    )
    .command<GlobalOptions & { image: string; output: string }>(
      'export <image>',
      "Write an image's flattened root filesystem as one tar",
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true })
          .option('output', { alias: 'o', type: 'string', demandOption: true, requiresArg: true, describe: 'tar file, or - for standard output' }) as never,
      async (argv) => {
        await exportRootfs({ root: argv.root, image: argv.image, output: argv.output });
      },
    );
}
