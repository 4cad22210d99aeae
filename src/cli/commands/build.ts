import type { Argv, Options } from 'yargs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isIP } from 'node:net';
import { build, lint, namedContextRefs, parseBuildContexts, parseCacheSpec, planBuild, parseOutput, redactUrl, version, warningsOf, type OutputSpec, GantryError, OptionError, ULIMIT_NAMES, type ExecuteResult as BuildResult, type ProgressEvent, type Ulimit } from '../../index.js';
import { parseBuildArgs, repeatable } from '../build-args.js';
import { formatPlan, formatWarning } from '../output.js';
import { chooseMode, reporter, type ProgressMode } from '../progress.js';
import { EXIT } from '../exit-codes.js';
import type { GlobalOptions } from '../main.js';

/**
 * `--secret id=npmrc,src=$HOME/.npmrc`, `--secret id=token,env=TOKEN`, `type=file|env`, or
 * `--secret id=X` alone (the variable X when set, else the file X), as buildx reads them →
 * id → a file or an environment variable.
 */
export function parseSecrets(items: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string | { env: string }> {
  const out: Record<string, string | { env: string }> = {};
  for (const item of items) {
    const bad = (why: string): OptionError => new OptionError('SECRET_INVALID', `--secret ${item}: ${why}`);
    const f: Record<string, string> = {};
    for (const field of item.split(',')) {
      const eq = field.indexOf('=');
      if (eq < 0) throw bad(`'${field}' must be a key=value pair`);
      const key = field.slice(0, eq).toLowerCase();
      const key2 = key === 'source' ? 'src' : key;
      if (!['type', 'id', 'src', 'env'].includes(key2)) throw bad(`unexpected key '${key}' (id, src, env, type)`);
      f[key2] = field.slice(eq + 1);
    }
    if (f.type !== undefined && f.type !== 'file' && f.type !== 'env') throw bad(`unsupported secret type "${f.type}" (file, env)`);
    const id = f.id;
    if (!id) throw bad('expected id=ID with src=FILE or env=VARIABLE');
    if (f.src !== undefined && f.env !== undefined) throw bad('give src= or env=, not both');
    // type=env with src=: the source names the variable (buildx).
    const variable = f.env ?? (f.type === 'env' ? (f.src ?? id) : undefined);
    if (variable !== undefined) out[id] = { env: variable };
    else if (f.src !== undefined) out[id] = f.src;
    else out[id] = env[id] !== undefined ? { env: id } : id;
  }
  return out;
}

/** `--add-host NAME:IP` or `NAME=IP` (an IPv6 address may be in brackets): extra /etc/hosts lines of RUN. */
export function parseAddHosts(items: string[]): { name: string; ip: string }[] {
  return items.map((item) => {
    // The name ends at the first `=`, else the first `:` (an IPv6 address has more colons).
    const eq = item.indexOf('=');
    const sep = eq >= 0 ? eq : item.indexOf(':');
    const name = sep < 0 ? '' : item.slice(0, sep);
    let ip = sep < 0 ? '' : item.slice(sep + 1);
    if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
    if (!name || !ip) throw new OptionError('ADD_HOST_INVALID', `--add-host ${item}: expected NAME:IP`);
    if (ip === 'host-gateway') throw new OptionError('ADD_HOST_INVALID', `--add-host ${item}: host-gateway is not supported (RUN cannot reach the host's network by default); give an address`);
    if (isIP(ip) === 0) throw new OptionError('ADD_HOST_INVALID', `--add-host ${item}: "${ip}" is not an IP address`);
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new OptionError('ADD_HOST_INVALID', `--add-host ${item}: "${name}" is not a host name`);
    return { name, ip };
  });
}

/** `--shm-size 128m` (docker's units: b, k, m, g, binary, an optional b after them) → bytes. */
export function parseShmSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(text.trim());
  if (!m) throw new OptionError('SHM_SIZE_INVALID', `--shm-size ${text}: expected a size such as 64m or 1g`);
  const bytes = Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()));
  if (bytes <= 0) throw new OptionError('SHM_SIZE_INVALID', `--shm-size ${text}: must be more than 0`);
  return bytes;
}

/** `--ulimit nofile=1024[:2048]` (-1: unlimited) as docker reads it. */
export function parseUlimits(items: string[]): Ulimit[] {
  const out = new Map<string, Ulimit>();
  for (const item of items) {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(item);
    const bad = (why: string): OptionError => new OptionError('ULIMIT_INVALID', `--ulimit ${item}: ${why}`);
    if (!m) throw bad('expected NAME=SOFT[:HARD]');
    const name = m[1] as string;
    if (!(ULIMIT_NAMES as readonly string[]).includes(name)) throw bad(`unknown limit "${name}" (${ULIMIT_NAMES.join(', ')})`);
    const soft = Number(m[2]);
    const hard = m[3] !== undefined ? Number(m[3]) : soft;
    if (soft < -1 || hard < -1) throw bad('a limit is a number, or -1 for unlimited');
    if (hard !== -1 && (soft === -1 || soft > hard)) throw bad(`the soft limit ${soft} is above the hard limit ${hard}`);
    out.set(name, { name, soft, hard });
  }
  return [...out.values()];
}

/**
 * `--annotation KEY=VALUE`, `manifest:KEY=VALUE` (the image's manifest; of each platform's, in a
 * multi-platform build) or `index:KEY=VALUE` (a multi-platform image's index). Descriptor
 * annotations (manifest-descriptor:, index-descriptor:) and `[platform]` qualifiers are refused.
 */
export function parseAnnotations(items: string[]): { manifest: Record<string, string>; index: Record<string, string> } {
  const out = { manifest: {} as Record<string, string>, index: {} as Record<string, string> };
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new OptionError('ANNOTATION_INVALID', `--annotation ${item}: expected [manifest:|index:]KEY=VALUE`);
    let key = item.slice(0, eq);
    let kind: 'manifest' | 'index' = 'manifest';
    const typed = /^([a-z-]+)(\[[^\]]*\])?:(.+)$/.exec(key);
    if (typed && ['manifest', 'index', 'manifest-descriptor', 'index-descriptor'].includes(typed[1] as string)) {
      if (typed[1] !== 'manifest' && typed[1] !== 'index') throw new OptionError('ANNOTATION_INVALID', `--annotation ${item}: ${typed[1]} annotations are not supported; use manifest:KEY=VALUE or index:KEY=VALUE`);
      if (typed[2]) throw new OptionError('ANNOTATION_INVALID', `--annotation ${item}: platform-specific annotations are not supported`);
      kind = typed[1];
      key = typed[3] as string;
    }
    out[kind][key] = item.slice(eq + 1);
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
  platform: string[];
  'dry-run': boolean;
  format: 'text' | 'json';
  tag: string[];
  cache: boolean;
  'no-cache-filter': string[];
  'cache-to': string[];
  'cache-from': string[];
  'source-date-epoch'?: number;
  isolation: 'auto' | 'oci' | 'chroot';
  network: 'default' | 'none' | 'host';
  allow: string[];
  'security-opt': string[];
  progress?: string;
  quiet: boolean;
  pull: boolean;
  check: boolean;
  annotation: string[];
  'add-host': string[];
  'shm-size'?: string;
  ulimit: string[];
  'build-context': string[];
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
 * plain reader (src/cli/plain.ts) records them from that registration, without yargs.
 */
export const BUILD_OPTIONS = {
  file: { alias: 'f', type: 'string', describe: 'Dockerfile path (default: CONTEXT/Dockerfile; - for stdin)' },
  'build-arg': repeatable('set a build argument (KEY=VALUE, or KEY to take it from the environment)'),
  target: { type: 'string', describe: 'build this stage and what it needs' },
  platform: repeatable('target platform (os/arch[/variant]); several (comma-separated or repeated) make a multi-platform image'),
  'dry-run': { type: 'boolean', default: false, describe: 'print the build plan and warnings; execute nothing' },
  format: { choices: ['text', 'json'], default: 'text', describe: 'output format of --dry-run' },
  tag: { alias: 't', ...repeatable('name the image (repeatable)') },
  label: repeatable('set a label on the image (KEY=VALUE; over the Dockerfile\'s LABEL)'),
  // yargs reads --no-cache as the negation of --cache.
  cache: { type: 'boolean', default: true, describe: 'use the layer cache (--no-cache runs every step)' },
  'no-cache-filter': repeatable('run these stages\' steps again, the cache unused (stage names, comma-separated or repeated)'),
  'cache-to': repeatable('export the build cache: type=registry,ref=REF[,mode=min|max][,compression=...]; type=local,dest=DIR[,mode=...]; type=inline'),
  'cache-from': repeatable('take steps from a cache: REF, type=registry,ref=REF (a cache, or an image with an inline cache), type=local,src=DIR'),
  'source-date-epoch': { type: 'number', describe: 'created times (and clamped file times) for a reproducible image; default $SOURCE_DATE_EPOCH' },
  isolation: { choices: ['auto', 'oci', 'chroot'], default: 'auto', describe: 'how RUN is sandboxed: oci (an OCI container, under crun or runc), chroot (no namespaces: for unprivileged containers), auto (the strongest that works here)' },
  network: { choices: ['default', 'none', 'host'], default: 'default', describe: 'the network of RUN: default (user-mode, no host loopback), none, host (needs --allow network.host)' },
  allow: repeatable('grant an entitlement: network.host'),
  'security-opt': repeatable('seccomp=FILE (a profile in Docker\'s format) or seccomp=unconfined'),
  progress: { type: 'string', choices: ['auto', 'plain', 'tty', 'json', 'quiet', 'rawjson'], describe: 'progress output: auto, plain, tty, json, quiet (default: $BUILDKIT_PROGRESS, else auto)' },
  quiet: { alias: 'q', type: 'boolean', default: false, describe: 'no progress output; print the image ID when done' },
  pull: { type: 'boolean', default: false, describe: 'pull every image the Dockerfile names, even those in the store' },
  check: { type: 'boolean', default: false, describe: 'run the Dockerfile\'s build checks only (exit 1 when there are warnings)' },
  annotation: repeatable('an annotation of the image\'s manifest ([manifest:]KEY=VALUE)'),
  'add-host': repeatable('an /etc/hosts entry for RUN (NAME:IP)'),
  'shm-size': { type: 'string', describe: 'the size of RUN\'s /dev/shm (64m, 1g; default 64m)' },
  ulimit: repeatable('a resource limit of RUN (nofile=1024[:2048], -1 unlimited)'),
  'build-context': repeatable('a named context: NAME=DIR, NAME=docker-image://REF, NAME=oci-layout://PATH[:TAG][@DIGEST], NAME=URL (a git repository or a tar)'),
  iidfile: { type: 'string', describe: 'write the image ID (config digest) to this file' },
  'metadata-file': { type: 'string', describe: 'write build metadata (JSON) to this file' },
  push: { type: 'boolean', default: false, describe: 'push the tagged image(s) after the build' },
  secret: repeatable('id=ID,src=FILE or id=ID,env=VARIABLE: a secret for RUN --mount=type=secret'),
  ssh: repeatable('default|ID=SOCKET|ID=KEYFILE[,KEYFILE]: an ssh-agent socket or keys for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)'),
  output: { alias: 'o', ...repeatable('type=local,dest=DIR; type=tar,dest=FILE|-; type=oci,dest=FILE.tar|-[,tar=false][,name=N]; type=docker,dest=FILE.tar|-[,name=N]; type=registry[,name=N]; type=image[,name=N][,push=true]; - (a tar on standard output)') },
  'insecure-registry': repeatable('reach this registry host[:port] over plain HTTP'),
} as const satisfies Record<string, Options>;

/** The build command's positional: the context directory. */
export const BUILD_CONTEXT = { type: 'string', default: '.', describe: 'build context: a directory, a git or http(s) URL (a tar, or a Dockerfile), or - (standard input: a tar, or a Dockerfile)' } as const;

export function buildCommand(yargs: Argv<GlobalOptions>, handler: (argv: BuildArgs) => Promise<void> = runBuild): Argv<GlobalOptions> {
  return yargs.command<BuildArgs>(
    'build [context]',
    'Build an image from a Dockerfile',
    (y) => y.positional('context', BUILD_CONTEXT).options(BUILD_OPTIONS) as unknown as Argv<BuildArgs>,
    handler,
  );
}

/** The progress mode: --progress, else $BUILDKIT_PROGRESS, else auto; --quiet is quiet. */
export function progressMode(argv: Pick<BuildArgs, 'progress' | 'quiet'>, env: NodeJS.ProcessEnv = process.env): ProgressMode {
  if (argv.quiet) return 'quiet';
  const given = argv.progress ?? (env.BUILDKIT_PROGRESS || undefined);
  const from = argv.progress !== undefined ? '--progress' : 'BUILDKIT_PROGRESS';
  if (given === undefined) return 'auto';
  if (given === 'rawjson') throw new OptionError('PROGRESS_INVALID', `${from} rawjson: BuildKit's raw status stream is not what gantry has; use json (its schema is in docs/cli.md)`);
  if (!['auto', 'plain', 'tty', 'json', 'quiet'].includes(given)) throw new OptionError('PROGRESS_INVALID', `${from} ${given}: expected auto, plain, tty, json or quiet`);
  return given as ProgressMode;
}

/** buildx's metadata file keys for the built (or pushed) image. */
export function metadataOf(result: BuildResult): Record<string, unknown> {
  // Pushed: the digest the registry holds (layers are compressed on the way); else the store's.
  const pushed = result.pushed?.[0];
  const descriptor = pushed ? { mediaType: pushed.mediaType, digest: pushed.digest, size: pushed.size } : { mediaType: result.descriptor.mediaType, digest: result.descriptor.digest, size: result.descriptor.size };
  const names = result.pushed?.length ? result.pushed.map((p) => p.name) : result.tags;
  return {
    // A multi-platform image has no one config: BuildKit gives none.
    ...(result.platforms ? {} : { 'containerimage.config.digest': result.configDigest }),
    'containerimage.descriptor': descriptor,
    'containerimage.digest': descriptor.digest,
    ...(names.length ? { 'image.name': [...new Set(names)].join(',') } : {}),
  };
}

/** `gantry build --check`: the build checks, printed as BuildKit's summary; exit 1 when any warns. */
async function runCheck(argv: BuildArgs): Promise<void> {
  const result = await lint({
    context: argv.context,
    ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
    buildArgs: parseBuildArgs(argv['build-arg']),
    ...(argv.target !== undefined ? { target: argv.target } : {}),
  });
  const n = result.warnings.length;
  process.stdout.write(n === 0 ? 'Check complete, no warnings found.\n' : `Check complete, ${n} warning${n === 1 ? ' has' : 's have'} been found!\n`);
  for (const w of result.warnings) process.stdout.write(formatWarning(w) + '\n');
  if (result.error) throw result.error;
  if (n > 0) process.exitCode = EXIT.failure;
}

/**
 * Run a build whose Ctrl-C (SIGINT) or SIGTERM cancels it: the build stops, cleans up (its
 * mounts and temp trees), and says so. The signal may come twice at once (from the terminal
 * and from the parent that entered the user namespace): only a third ends gantry at once.
 */
async function cancellable<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (): void => {
    signals++;
    if (signals >= 3) process.exit(EXIT.interrupted);
    controller.abort(new BuildCancelled());
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await run(controller.signal);
  } catch (err) {
    if (controller.signal.aborted) throw controller.signal.reason as BuildCancelled;
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** The build was cancelled by a signal: said once, exit status 130 (128 + SIGINT) as a shell gives. */
export class BuildCancelled extends Error {
  readonly exitCode = EXIT.interrupted;
  constructor() {
    super('build cancelled');
  }
}

/** An error the progress output already told (as JSON): main only sets the exit status. */
export class ReportedError extends Error {
  readonly reported = true;
  constructor(
    override readonly cause: unknown,
    readonly exitCode: number,
  ) {
    super((cause as Error).message);
  }
}

/** `--iidfile` and `--metadata-file`: written whole (a temp file renamed), an error naming the file. */
async function writeResultFile(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    throw new OptionError('OUTPUT_OPEN', `cannot write ${file}: ${e.code === 'ENOENT' ? `${path.dirname(file)} does not exist` : e.message}`);
  }
}

/** What `gantry build` does with its parsed command line. */
export async function runBuild(argv: BuildArgs): Promise<void> {
  if (argv.check) return runCheck(argv);
  if (!argv['dry-run']) {
    const mode = chooseMode(progressMode(argv));
    const report = await reporter(mode);
    // The warnings come once planned, so a build that fails later still shows them (as BuildKit does).
    const warned = new Set<string>();
    const onProgress = (e: ProgressEvent): void => {
      report.event(e);
      if (e.type === 'plan') {
        // A multi-platform build plans once per platform: a warning they share is said once.
        for (const w of e.plan.warnings) {
          const key = JSON.stringify([w.rule, w.message, w.location]);
          if (!warned.has(key)) report.warning(w);
          warned.add(key);
        }
      }
    };
    // A URL's credentials are never said.
    report.start({ version, context: redactUrl(argv.context), ...(argv.file !== undefined ? { dockerfile: argv.file } : {}) });
    let result: BuildResult;
    let output: OutputSpec[] = [];
    try {
      output = argv.output.map(parseOutput);
      const annotations = parseAnnotations(argv.annotation);
      result = await cancellable((signal) =>
        build({
          root: argv.root,
          context: argv.context,
          ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
          tags: argv.tag,
          labels: parseLabels(argv.label),
          annotations: annotations.manifest,
          ...(Object.keys(annotations.index).length > 0 ? { indexAnnotations: annotations.index } : {}),
          buildArgs: parseBuildArgs(argv['build-arg']),
          ...(argv.target !== undefined ? { target: argv.target } : {}),
          ...(argv.platform.length > 0 ? { platform: argv.platform.join(',') } : {}),
          noCache: !argv.cache,
          cacheTo: argv['cache-to'].map((t) => parseCacheSpec(t, 'to')),
          cacheFrom: argv['cache-from'].map((t) => parseCacheSpec(t, 'from')),
          noCacheFilter: argv['no-cache-filter'].flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean),
          ...(argv['source-date-epoch'] !== undefined ? { sourceDateEpoch: argv['source-date-epoch'] } : {}),
          isolation: argv.isolation,
          network: argv.network,
          allow: parseAllow(argv.allow),
          extraHosts: parseAddHosts(argv['add-host']),
          ...(argv['shm-size'] !== undefined ? { shmSize: parseShmSize(argv['shm-size']) } : {}),
          ulimits: parseUlimits(argv.ulimit),
          pull: argv.pull,
          namedContexts: parseBuildContexts(argv['build-context']),
          ...parseSecurityOpts(argv['security-opt']),
          insecureRegistries: argv['insecure-registry'],
          output,
          secrets: parseSecrets(argv.secret),
          ssh: parseSsh(argv.ssh),
          push: argv.push,
          onProgress,
          signal,
        }),
      );
      // The files asked for are written before the build is said to be finished: one that
      // cannot be written fails the build, naming it.
      if (argv.iidfile) await writeResultFile(argv.iidfile, result.configDigest);
      if (argv['metadata-file']) await writeResultFile(argv['metadata-file'], JSON.stringify(metadataOf(result), null, 2));
    } catch (err) {
      const cancelled = err instanceof BuildCancelled;
      if (mode === 'json') for (const w of warningsOf(err)) report.warning(w); // as main would print them
      report.end(cancelled ? { status: 'cancelled' } : { status: 'failed', error: err as Error });
      // As JSON, the error was one of the lines: nothing more is printed.
      if (mode === 'json') throw new ReportedError(err, cancelled ? EXIT.interrupted : err instanceof OptionError ? EXIT.usage : err instanceof GantryError ? EXIT.failure : EXIT.internal);
      throw err;
    }
    report.end({ status: 'finished' });
    // Standard output may carry an output's tar: then the image ID is not printed there.
    if (!output.some((o) => 'dest' in o && o.dest === '-')) process.stdout.write(result.configDigest + '\n');
    return;
  }
  const plan = await planBuild({
    namedContexts: namedContextRefs(parseBuildContexts(argv['build-context'])),
    context: argv.context,
    ...(argv.file !== undefined ? { dockerfile: argv.file } : {}),
    buildArgs: parseBuildArgs(argv['build-arg']),
    ...(argv.target !== undefined ? { target: argv.target } : {}),
    ...(argv.platform.length > 0 ? { platform: argv.platform.join(',') } : {}),
  });
  if (argv.format === 'json') {
    process.stdout.write(JSON.stringify({ plan, warnings: plan.warnings }, null, 2) + '\n');
  } else {
    process.stdout.write(formatPlan(plan) + '\n');
    for (const w of plan.warnings) process.stderr.write(formatWarning(w) + '\n');
  }
}
