import type { Argv, Options } from 'yargs';
import { writeFile } from 'node:fs/promises';
import { build, planBuild, parseOutput, OptionError } from '../../index.js';
import { parseBuildArgs, repeatable } from '../build-args.js';
import { formatPlan, formatWarning } from '../output.js';
import { chooseMode, progressPrinter } from '../progress.js';
import type { GlobalOptions } from '../main.js';

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
/**
 * `--ssh default`, `--ssh default=SOCKET`, `--ssh ID=SOCKET|KEYFILE[,KEYFILE]` → id → the
 * path(s) given (`default` alone: $SSH_AUTH_SOCK): an ssh-agent socket for
 * `RUN --mount=type=ssh`, or key files, which build() loads into an agent of the build's own.
 */
export function parseSsh(items: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const id = eq < 0 ? item : item.slice(0, eq);
    let paths = eq < 0 ? [] : item.slice(eq + 1).split(',').filter(Boolean);
    if (!id) throw new OptionError('SSH_INVALID', `--ssh ${item}: expected default, ID=SOCKET or ID=KEYFILE[,KEYFILE]`);
    if (paths.length === 0) {
      if (id !== 'default') throw new OptionError('SSH_INVALID', `--ssh ${item}: give the agent socket or key files (${id}=PATH)`);
      const sock = env.SSH_AUTH_SOCK;
      if (!sock) throw new OptionError('SSH_INVALID', '--ssh default: SSH_AUTH_SOCK is not set (start ssh-agent, or give --ssh default=SOCKET|KEYFILE)');
      paths = [sock];
    }
    // Whether they are one agent socket or key files is build()'s to tell (sshAgents).
    out[id] = paths.length === 1 ? (paths[0] as string) : paths;
  }
  return out;
}

/** `--allow network.host`: the entitlements gantry knows; any other is refused, never ignored. */
function parseAllow(items: string[]): string[] {
  const out = items.flatMap((i) => i.split(',')).filter(Boolean);
  for (const e of out) {
    if (e !== 'network.host') throw new OptionError('ALLOW_INVALID', `--allow ${e}: gantry knows only the network.host entitlement (security.insecure and device are not supported)`);
  }
  return out;
}

/** `--security-opt seccomp=FILE|unconfined`. */
function parseSecurityOpts(items: string[]): { seccomp?: string } {
  const out: { seccomp?: string } = {};
  for (const item of items) {
    const m = /^seccomp[=:](.+)$/.exec(item);
    if (!m) throw new OptionError('SECURITY_OPT_INVALID', `--security-opt ${item}: expected seccomp=FILE or seccomp=unconfined`);
    out.seccomp = m[1] as string;
  }
  return out;
}

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
  'no-cache-filter': string[];
  'source-date-epoch'?: number;
  isolation: 'auto' | 'oci' | 'chroot';
  network: 'default' | 'none' | 'host';
  allow: string[];
  'security-opt': string[];
  progress: 'auto' | 'plain' | 'json' | 'tty';
  iidfile?: string;
  'metadata-file'?: string;
  push: boolean;
  output: string[];
  secret: string[];
  'insecure-registry': string[];
  label: string[];
  ssh: string[];
}

/** `--label KEY=VALUE` (KEY alone: an empty value, as docker takes it). */
export function parseLabels(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (key === '') throw new OptionError('OPTION_INVALID', `--label ${item}: expected KEY=VALUE`);
    out[key] = eq < 0 ? '' : item.slice(eq + 1);
  }
  return out;
}

/**
 * The build command's options, once: yargs registers them from here (`buildCommand`), and the
 * fast path (src/cli/fast-build.ts) reads a plain command line with them, without yargs.
 */
export const BUILD_OPTIONS = {
  file: { alias: 'f', type: 'string', describe: 'Dockerfile path (default: CONTEXT/Dockerfile; - for stdin)' },
  'build-arg': repeatable('set a build argument (KEY=VALUE, or KEY to take it from the environment)'),
  target: { type: 'string', describe: 'build this stage and what it needs' },
  platform: { type: 'string', describe: 'target platform (os/arch[/variant])' },
  'dry-run': { type: 'boolean', default: false, describe: 'print the build plan and warnings; execute nothing' },
  format: { choices: ['text', 'json'], default: 'text', describe: 'output format of --dry-run' },
  tag: { alias: 't', ...repeatable('name the image (repeatable)') },
  label: repeatable('set a label on the image (KEY=VALUE; over the Dockerfile\'s LABEL)'),
  // yargs reads --no-cache as the negation of --cache.
  cache: { type: 'boolean', default: true, describe: 'use the layer cache (--no-cache runs every step)' },
  'no-cache-filter': repeatable('run these stages\' steps again, the cache unused (stage names, comma-separated or repeated)'),
  'source-date-epoch': { type: 'number', describe: 'created times (and clamped file times) for a reproducible image; default $SOURCE_DATE_EPOCH' },
  isolation: { choices: ['auto', 'oci', 'chroot'], default: 'auto', describe: 'how RUN is sandboxed: oci (a container under runc), chroot (no namespaces: for unprivileged containers), auto (the strongest that works here)' },
  network: { choices: ['default', 'none', 'host'], default: 'default', describe: 'the network of RUN: default (user-mode, no host loopback), none, host (needs --allow network.host)' },
  allow: repeatable('grant an entitlement: network.host'),
  'security-opt': repeatable('seccomp=FILE (a profile in Docker\'s format) or seccomp=unconfined'),
  progress: { choices: ['auto', 'plain', 'json', 'tty'], default: 'auto', describe: 'progress output' },
  iidfile: { type: 'string', describe: 'write the image ID (config digest) to this file' },
  'metadata-file': { type: 'string', describe: 'write build metadata (JSON) to this file' },
  push: { type: 'boolean', default: false, describe: 'push the tagged image(s) after the build' },
  secret: repeatable('id=ID,src=FILE: a secret for RUN --mount=type=secret'),
  ssh: repeatable('default|ID=SOCKET: an ssh-agent socket for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)'),
  output: { alias: 'o', ...repeatable('type=local,dest=DIR; type=oci,dest=FILE.tar[,tar=false][,name=N]; type=docker,dest=FILE.tar[,name=N]; type=registry[,name=N]; type=image[,name=N][,push=true]') },
  'insecure-registry': repeatable('reach this registry host[:port] over plain HTTP'),
} as const satisfies Record<string, Options>;

/** The build command's positional: the context directory. */
export const BUILD_CONTEXT = { type: 'string', default: '.', describe: 'build context directory' } as const;

export function buildCommand(yargs: Argv<GlobalOptions>, handler: (argv: BuildArgs) => Promise<void> = runBuild): Argv<GlobalOptions> {
  return yargs.command<BuildArgs>(
    'build [context]',
    'Build an image from a Dockerfile',
    (y) => y.positional('context', BUILD_CONTEXT).options(BUILD_OPTIONS) as unknown as Argv<BuildArgs>,
    handler,
  );
}

/** What `gantry build` does with its parsed command line. */
export async function runBuild(argv: BuildArgs): Promise<void> {
  if (!argv['dry-run']) {
    const printer = await progressPrinter(chooseMode(argv.progress));
    // The warnings come once planned, so a build that fails later still shows them (as BuildKit does).
    const onProgress: typeof printer = (e) => {
      printer(e);
      if (e.type === 'plan') for (const w of e.plan.warnings) process.stderr.write(formatWarning(w) + '\n');
    };
    const result = await build({
      root: argv.root,
      context: argv.context,
      ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
      tags: argv.tag,
      labels: parseLabels(argv.label),
      buildArgs: parseBuildArgs(argv['build-arg']),
      ...(argv.target !== undefined ? { target: argv.target } : {}),
      ...(argv.platform !== undefined ? { platform: argv.platform } : {}),
      noCache: !argv.cache,
      noCacheFilter: argv['no-cache-filter'].flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean),
      ...(argv['source-date-epoch'] !== undefined ? { sourceDateEpoch: argv['source-date-epoch'] } : {}),
      isolation: argv.isolation,
      network: argv.network,
      allow: parseAllow(argv.allow),
      ...parseSecurityOpts(argv['security-opt']),
      insecureRegistries: argv['insecure-registry'],
      output: argv.output.map(parseOutput),
      secrets: parseSecrets(argv.secret),
      ssh: parseSsh(argv.ssh),
      push: argv.push,
      onProgress,
    });
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
  });
  if (argv.format === 'json') {
    process.stdout.write(JSON.stringify({ plan, warnings: plan.warnings }, null, 2) + '\n');
  } else {
    process.stdout.write(formatPlan(plan) + '\n');
    for (const w of plan.warnings) process.stderr.write(formatWarning(w) + '\n');
  }
}
