import type { Argv } from 'yargs';
import { pull, push, login, logout, familiarName, parseReference, OptionError } from '../../index.js';
import { repeatable } from '../build-args.js';
import type { GlobalOptions } from '../main.js';

export interface Access extends GlobalOptions {
  'insecure-registry': string[];
  'ca-cert'?: string;
}

const caCert = { type: 'string', describe: 'PEM file of CA certificates to trust (default: $SSL_CERT_FILE)' } as const;

/** The registry options every command shares: --ca-cert and --insecure-registry. */
export function withAccess<T>(y: Argv<T>): Argv<T> {
  return y
    .option('ca-cert', caCert)
    .option('insecure-registry', repeatable('reach this registry host[:port] over plain HTTP (loopback hosts always are)')) as unknown as Argv<T>;
}

/** The registry options every command shares, from its arguments. */
export function accessOf(argv: Access): { insecureRegistries: string[]; caCertFile?: string } {
  return { insecureRegistries: argv['insecure-registry'], ...(argv['ca-cert'] ? { caCertFile: argv['ca-cert'] } : {}) };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registryCommands(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs
    .command<Access & { image: string; platform?: string; 'registry-mirror': string[] }>(
      'pull <image>',
      'Pull an image from a registry into the store',
      (y) =>
        withAccess(y)
          .positional('image', { type: 'string', demandOption: true })
          .option('platform', { type: 'string', describe: 'os/arch[/variant] to pick from a multi-platform image' })
          .option('registry-mirror', repeatable('a mirror of docker.io to try first (host[:port] or URL)')) as never,
      async (argv) => {
        const r = await pull({
          root: argv.root,
          reference: argv.image,
          ...accessOf(argv),
          registryMirrors: argv['registry-mirror'],
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
        withAccess(y)
          .positional('image', { type: 'string', demandOption: true })
          .positional('destination', { type: 'string', describe: 'push under this name instead' }) as never,
      async (argv) => {
        const r = await push({
          root: argv.root,
          image: argv.image,
          ...accessOf(argv),
          ...(argv.destination ? { destination: argv.destination } : {}),
        });
        for (const [digest, status] of Object.entries(r.blobs)) process.stdout.write(`${digest.slice(7, 19)}: ${status}\n`);
        process.stdout.write(`${r.name}: digest: ${r.digest}\n`);
      },
    )
    .command<Access & { registry: string; username?: string; password?: string; 'password-stdin': boolean }>(
      'login <registry>',
      'Check credentials against a registry and store them in the docker config',
      (y) =>
        withAccess(y)
          .positional('registry', { type: 'string', demandOption: true })
          .option('username', { alias: 'u', type: 'string' })
          .option('password', { alias: 'p', type: 'string', describe: 'prefer --password-stdin: this shows in the process list' })
          .option('password-stdin', { type: 'boolean', default: false }) as never,
      async (argv) => {
        if (!argv.username) throw new OptionError('LOGIN_USERNAME', 'login needs --username');
        if (argv.password !== undefined && argv['password-stdin']) throw new OptionError('LOGIN_PASSWORD', '--password and --password-stdin are exclusive');
        const password = argv['password-stdin'] ? await readStdin() : argv.password;
        if (password === undefined) throw new OptionError('LOGIN_PASSWORD', 'login needs --password-stdin (or --password)');
        await login({
          registry: argv.registry,
          username: argv.username,
          password,
          ...accessOf(argv),
        });
        process.stdout.write('Login Succeeded\n');
      },
    )
    .command<GlobalOptions & { registry: string }>(
      'logout <registry>',
      'Remove the stored credentials of a registry',
      (y) => y.positional('registry', { type: 'string', demandOption: true }) as never,
      async (argv) => {
        const found = await logout(argv.registry);
        process.stdout.write(found ? `Removing login credentials for ${argv.registry}\n` : `Not logged in to ${argv.registry}\n`);
      },
    );
}
