import type { Argv } from 'yargs';
import { pull, push, familiarName, parseReference } from '../../index.js';
import { repeatable } from '../build-args.js';
import type { GlobalOptions } from '../main.js';

interface Access extends GlobalOptions {
  'insecure-registry': string[];
}

export function registryCommands(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs
    .command<Access & { image: string; platform?: string }>(
      'pull <image>',
      'Pull an image from a registry into the store',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true })
          .option('platform', { type: 'string', describe: 'os/arch[/variant] to pick from a multi-platform image' })
          .option('insecure-registry', repeatable('reach this registry host[:port] over plain HTTP (loopback hosts always are)')) as never,
      async (argv) => {
        const r = await pull({
          root: argv.root,
          reference: argv.image,
          insecureRegistries: argv['insecure-registry'],
          ...(argv.platform ? { platform: argv.platform } : {}),
          onProgress: (p) => {
            if (p.done) process.stdout.write(`${p.digest.slice(7, 19)}: ${p.cached ? 'Already exists' : 'Pull complete'}\n`);
          },
        });
        const ref = parseReference(r.name);
        process.stdout.write(`Digest: ${r.resolvedDigest}\n`);
        process.stdout.write(`Pulled: ${familiarName(ref)}${ref.tag ? `:${ref.tag}` : ''}\n`);
      },
    )
    .command<Access & { image: string; destination?: string }>(
      'push <image> [destination]',
      'Push an image from the store to a registry',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true })
          .positional('destination', { type: 'string', describe: 'push under this name instead' })
          .option('insecure-registry', repeatable('reach this registry host[:port] over plain HTTP (loopback hosts always are)')) as never,
      async (argv) => {
        const r = await push({
          root: argv.root,
          image: argv.image,
          insecureRegistries: argv['insecure-registry'],
          ...(argv.destination ? { destination: argv.destination } : {}),
        });
        for (const [digest, status] of Object.entries(r.blobs)) process.stdout.write(`${digest.slice(7, 19)}: ${status}\n`);
        process.stdout.write(`${r.name}: digest: ${r.digest}\n`);
      },
    );
}
