/**
 * gantry's public API. The CLI uses nothing else; Node programs import from 'gantry'.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileError, GantryError, OptionError } from './errors/index.js';
import { plan, planModel, type BuildPlan, type PlanOptions } from './plan/planner.js';
import { checkViolation, warningsOf } from './dockerfile/lint.js';
import { parseDockerfile } from './dockerfile/stages.js';
import { dump, parse } from './dockerfile/parser.js';
import type { Warning } from './dockerfile/warnings.js';

// --- errors: every one a GantryError with a code of ERROR_CODES ---------------------------
export {
  GantryError,
  DockerfileError,
  OptionError,
  RegistryError,
  SandboxError,
  StoreError,
  ERROR_CODES,
  type ErrorCode,
  type SourceLocation,
} from './errors/index.js';
import { BuildError } from './builder/errors.js';
import { ImageError } from './image/image.js';
import { ArchiveError } from './archive/load.js';
import { DigestError, DigestMismatchError, SizeMismatchError } from './oci/digest.js';
import { InvalidReferenceError } from './oci/reference.js';
export { BuildError, ImageError, ArchiveError, DigestError, DigestMismatchError, SizeMismatchError, InvalidReferenceError };
export type { Warning } from './dockerfile/warnings.js';
export type {
  BuildPlan,
  PlannedStage,
  Step,
  StepState,
  BaseRef,
  CopySource,
  ResolvedArg,
  PlanOptions,
  BaseImageInfo,
} from './plan/planner.js';
export type { Instruction, InstructionKind, CommandLine } from './dockerfile/instructions.js';
export type { Mount } from './dockerfile/mounts.js';
export type { Node, Heredoc, ParseResult } from './dockerfile/parser.js';
export type { DockerfileModel, Stage } from './dockerfile/stages.js';
export { plan, parseDockerfile, parse, dump };
export { warningsOf } from './dockerfile/lint.js';
export { expand, expandWord, expandWords, envFromMap } from './dockerfile/shell.js';
export { parsePlatform, formatPlatform, hostPlatform, type Platform } from './oci/platform.js';

export { resolveRoot } from './store/layout.js';
import { resolveRoot as resolveRootDefault } from './store/layout.js';

export const version: string = '0.1.0';

export interface DockerfileSource {
  /** The build context directory (default: the current directory). */
  context?: string;
  /** The Dockerfile path; default `<context>/Dockerfile`. `-` reads standard input. */
  dockerfile?: string;
}

export interface LoadedDockerfile {
  /** The name used in messages: the path as given, or `<context>/Dockerfile`. */
  file: string;
  text: string;
}

export async function loadDockerfile(
  source: DockerfileSource,
  stdin: () => Promise<string> = readStdin,
): Promise<LoadedDockerfile> {
  const context = source.context ?? '.';
  if (source.dockerfile === '-') return { file: '<stdin>', text: await stdin() };
  // As BuildKit: a context with no Dockerfile but a lowercase dockerfile builds that one. The
  // context's own is read inside it (a link there cannot lead out of it, to a host file whose
  // first word an error would show); one given with -f is the caller's path.
  const file = source.dockerfile ?? [path.join(context, 'Dockerfile'), path.join(context, 'dockerfile')].find((f) => existsSync(f)) ?? path.join(context, 'Dockerfile');
  const cannot = (why: string, err?: unknown): OptionError => new OptionError('DOCKERFILE_NOT_FOUND', `cannot read Dockerfile ${file}: ${why}`, { cause: err });
  if (source.dockerfile === undefined) {
    const found = await readContextFile(context, path.relative(context, file), `the context ${context}`).catch((err: unknown) => {
      throw err instanceof GantryError ? cannot(err.message.replace(/^.*?: /, ''), err) : err;
    });
    if (!found) throw cannot(existsSync(file) ? 'a link that leads outside the context, or nowhere' : 'no such file');
    return { file, text: found.text };
  }
  try {
    // Synchronous, as the store's small reads are: a thread-pool round trip costs more than the read.
    const st = statSync(file);
    if (st.isDirectory()) throw cannot('is a directory');
    if (!st.isFile()) throw cannot('not a regular file');
    return { file, text: readFileSync(file, 'utf8') };
  } catch (err) {
    if (err instanceof OptionError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw cannot(code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (err as Error).message, err);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface PlanBuildOptions extends DockerfileSource, Omit<PlanOptions, 'file'> {}

/** Read the Dockerfile and plan the build without executing anything. */
export async function planBuild(options: PlanBuildOptions): Promise<BuildPlan> {
  const platforms = platformList(options.platform);
  if (platforms.length > 1) throw new OptionError('PLATFORM_INVALID', `a plan is for one platform; "${options.platform}" names several (plan each on its own)`);
  const { file, text } = await loadDockerfile(options);
  return plan(text, { ...options, file, ...(platforms[0] !== undefined ? { platform: platforms[0] } : {}) });
}

export interface LintResult {
  file: string;
  warnings: Warning[];
  /** Set when the Dockerfile does not parse or plan. */
  error?: GantryError;
}

/**
 * Parse and plan every stage, collecting warnings; errors are returned, not thrown, with the
 * warnings found before them (BuildKit's lint request: `check=error=true` is an error beside them).
 */
export async function lint(options: PlanBuildOptions): Promise<LintResult> {
  const { file, text } = await loadDockerfile(options);
  const warnings: Warning[] = [];
  const seen = new Set<string>();
  const collect = (found: readonly Warning[]): void => {
    for (const w of found) {
      const key = `${w.rule}|${w.message}|${w.location?.line ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      warnings.push(w);
    }
  };
  const byLine = (): Warning[] => warnings.sort((a, b) => (a.location?.line ?? Infinity) - (b.location?.line ?? Infinity));
  try {
    const model = parseDockerfile(text, { file, ...(options.buildArgs ? { buildArgs: options.buildArgs } : {}) });
    // Lint every stage, not only the ones the default target needs.
    const targets = model.stages.flatMap((s) => (s.name ? [s.name] : []));
    for (const target of [undefined, ...targets]) {
      collect(planModel(model, { ...options, file, checkErrors: false, ...(target ? { target } : {}) }).warnings);
    }
    const violation = checkViolation(warnings, model.checks);
    return { file, warnings: byLine(), ...(violation ? { error: violation } : {}) };
  } catch (err) {
    if (!(err instanceof GantryError)) throw err;
    collect(warningsOf(err));
    return { file, warnings: byLine(), error: err };
  }
}


// --- the image store and the image commands -------------------------------------------
export {
  listImages,
  tagImage,
  removeImages,
  inspectImage,
  imageHistory,
  type ImageSummary,
  type ListFilter,
  type ListOptions,
  type RemoveResult,
  type InspectResult,
  type HistoryRow,
} from './store/operations.js';
export { importImage, type ImportOptions, type ImportResult } from './builder/import.js';
export {
  fromImage as from,
  runContainer as run,
  commitContainer as commit,
  containers,
  configureContainer,
  copyFiles,
  removeContainers,
  type FromOptions,
  type RunOptions,
  type RunResult,
  type CommitOptions,
  type CommitResult,
  type ContainerInfo,
  type ContainerRow,
  type ConfigChanges,
  type CopyOptions,
} from './builder/containers.js';
export { parseReference, normalizeReference, formatReference, familiarName, type Reference } from './oci/reference.js';
export { parseDigest, digestOf } from './oci/digest.js';
export { MediaType } from './oci/media-types.js';
export type { Descriptor, Manifest, Index, ImageConfig, ContainerConfig, HistoryEntry } from './oci/types.js';
export { pruneStore, type PruneOptions, type PruneResult } from './store/prune.js';
export { diskUsage, type DiskUsage, type UsageRow, type UsageKind, type ImageUsage, type CacheUsage, type TreeUsage } from './store/usage.js';
export { fsckStore, type FsckOptions, type FsckResult, type Problem, type ProblemKind } from './store/fsck.js';
export { save, load, exportRootfs, type SaveOptions, type LoadOptions, type ExportOptions } from './archive/commands.js';
export type { LoadedImage } from './archive/load.js';
export { pull, push, login, logout, type PullCommandOptions, type PushCommandOptions, type RegistryAccess, type LoginOptions } from './builder/registry.js';
export { lookupCredentials, dockerConfigPath } from './registry/credentials.js';
export { search, type SearchOptions, type SearchResult } from './registry/search.js';
export type { PullResult, PullProgress } from './registry/pull.js';
export type { PushResult } from './registry/push.js';
export type { Credentials, CredentialLookup } from './registry/client.js';

// --- building --------------------------------------------------------------------------
export type { ExecuteResult as BuildResult, ExecuteResult, ProgressEvent, BuildSettings } from './builder/execute.js';
import { execute, type BuildSettings, type ExecuteResult as BuildExecResult } from './builder/execute.js';
import { withStore } from './store/store.js';
import { resolveNamedContexts } from './builder/named-contexts.js';
import { resolvePlan } from './builder/resolve.js';
import { buildPlatforms, executePlatforms, platformList } from './builder/platforms.js';
import { exportCache, importCache, type SharedCacheRun } from './builder/shared-cache.js';
import { trace } from './support/process.js';
import type { RegistryAccess as Access } from './builder/registry.js';
export type { Isolation } from './sandbox/run.js';
export { ULIMIT_NAMES, type Ulimit } from './sandbox/types.js';
export { reexecInUserNamespace } from './sandbox/rootless.js';

export interface BuildOptions extends Omit<BuildSettings, 'ssh'> {
  /**
   * For RUN --mount=type=ssh, by id: an ssh-agent's socket, or key files, which are loaded into
   * an agent of the build's own (as `docker build --ssh default=~/.ssh/id_ed25519`).
   */
  ssh?: Record<string, string | string[]>;
  /** The store (default: resolveRoot()). */
  root?: string;
  context?: string;
  /** Dockerfile path; default <context>/Dockerfile; '-' is standard input. */
  dockerfile?: string;
  /** Outputs besides the store: `{ type: 'oci' | 'docker' | 'local', dest }` or `{ type: 'registry', name? }`. */
  output?: OutputSpec[];
  /** Push every tag after the build (like `-o type=registry`). */
  push?: boolean;
}

/**
 * Build a Dockerfile into the store. Resolves to the image's digests and the plan it
 * followed. `sourceDateEpoch` defaults to the SOURCE_DATE_EPOCH build argument (BuildKit's way
 * to give it), else to $SOURCE_DATE_EPOCH when that is set.
 */
export async function build(options: BuildOptions = {}): Promise<BuildExecResult> {
  // Cancelled before it started: nothing is pulled or run.
  options.signal?.throwIfAborted();
  // A context from standard input or a URL becomes a temp directory first (remote-context.ts).
  if (options.context !== undefined && isRemoteContext(options.context)) {
    const prepared = await prepareContext(options.context, options.dockerfile);
    try {
      const dockerfile = await dockerfileIn(prepared, options.dockerfile);
      return await build({ ...options, context: prepared.context, ...(dockerfile !== undefined ? { dockerfile } : {}) });
    } finally {
      await prepared.cleanup();
    }
  }
  checkContext(options.context ?? '.');
  const agents = await sshAgents(options.ssh ?? {});
  try {
    const { ssh, ...rest } = options;
    const withSockets = { ...rest, ...(ssh ? { ssh: agents.sockets } : {}) };
    // A non-root caller builds in a user namespace, as the gantry command does (sandbox/rootless.ts).
    if (needsUserNamespace()) return await buildInUserNamespace(withSockets);
    return await buildHere(withSockets);
  } finally {
    await agents.stop();
  }
}

/** The build context must be a directory that exists (docker: "unable to prepare context"). */
function checkContext(context: string): void {
  const st = statSync(context, { throwIfNoEntry: false });
  if (!st) throw new OptionError('CONTEXT_NOT_FOUND', `build context ${context}: no such directory`);
  if (!st.isDirectory()) throw new OptionError('CONTEXT_NOT_FOUND', `build context ${context}: not a directory`);
}

/**
 * The agent socket of each `ssh` id: a socket as given; key files loaded into an ssh-agent of
 * this build's own (in a private directory, stopped with `stop`).
 */
async function sshAgents(ssh: Record<string, string | string[]>): Promise<{ sockets: Record<string, string>; stop: () => Promise<void> }> {
  const sockets: Record<string, string> = {};
  const started: KeyAgent[] = [];
  const dirs: string[] = [];
  const stop = async (): Promise<void> => {
    for (const a of started) await a.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    for (const [id, value] of Object.entries(ssh)) {
      const paths = Array.isArray(value) ? value : [value];
      const kinds = paths.map((p) => statSync(p, { throwIfNoEntry: false }));
      const missing = paths.find((_, i) => kinds[i] === undefined);
      if (missing !== undefined) throw new OptionError('SSH_INVALID', `--ssh ${id}: ${missing}: no such file`);
      if (paths.length === 1 && kinds[0]?.isSocket()) {
        sockets[id] = paths[0] as string;
        continue;
      }
      if (kinds.some((k) => !k?.isFile())) throw new OptionError('SSH_INVALID', `--ssh ${id}: give one agent socket, or key files`);
      const dir = mkdtempSync(path.join(tmpdir(), 'gantry-ssh-'));
      dirs.push(dir);
      const agent = await agentWithKeys(paths, dir);
      started.push(agent);
      sockets[id] = agent.socket;
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { sockets, stop };
}

/**
 * The build, as it reads: the Dockerfile read and parsed; in one store scope, the named contexts
 * fetched, the plan made until the images it names are at hand (pulled where the store lacks
 * them), the plan executed into an image, and the image written to each output.
 */
async function buildHere(options: Omit<BuildOptions, 'ssh'> & { ssh?: Record<string, string> }): Promise<BuildExecResult> {
  const { root: givenRoot, context = '.', dockerfile, output = [], push: pushAfter, ...settings } = options;
  trace?.('build start');
  const { file, text } = await loadDockerfile({ context, ...(dockerfile !== undefined ? { dockerfile } : {}) });
  const model = parseDockerfile(text, { file });
  trace?.('Dockerfile parsed');
  settings.sourceDateEpoch ??= epochSeconds(settings.buildArgs?.SOURCE_DATE_EPOCH) ?? envSettings.sourceDateEpoch;
  const root = givenRoot ?? resolveRootDefault();
  // The platforms given, each once (`linux/amd64,` and a platform given twice are one), and whether the image is an index of theirs.
  const { platforms, index } = buildPlatforms(settings);
  const buildOptions = { ...settings, root, context, dockerfile: file, ...(platforms.length === 1 ? { platform: platforms[0] as string } : {}) };
  const emit = settings.onProgress ?? (() => undefined);
  return withStore(root, async (store) => {
    // Named contexts first: a URL one is fetched before anything is planned on it.
    const named = settings.namedContexts && Object.keys(settings.namedContexts).length > 0 ? await resolveNamedContexts(settings.namedContexts) : undefined;
    // The caches --cache-from names are read before the build (one that cannot be is a notice).
    const shared = await sharedCache(settings, emit);
    try {
      const executeOptions = { ...buildOptions, text, ...(shared ? { shared } : {}) };
      // Several platforms: built one after the other, their images made one index (platforms.ts).
      const result =
        index
          ? await executePlatforms(store, model, platforms, executeOptions, named)
          : await execute(store, await resolvePlan(store, model, buildOptions, named, emit), executeOptions, named);
      const pushed = await writeOutputs(store, result.descriptor, result.tags, [...output, ...(pushAfter ? [{ type: 'registry' as const }] : [])], registryAccess(settings), emit, settings.signal);
      if (shared && settings.cacheTo) await exportCache(store, settings.cacheTo, shared.recorded, shared.leaving, registryAccess(settings), emit);
      return pushed.length > 0 ? { ...result, pushed: pushed.map((p) => ({ name: p.name, digest: p.digest, mediaType: p.mediaType, size: p.size })) } : result;
    } finally {
      await shared?.imported?.close();
      await named?.cleanup();
    }
  });
}

/** The build's part in sharing its cache, when `--cache-to` or `--cache-from` asks for one: the imported caches read. */
async function sharedCache(settings: BuildSettings, emit: (e: { type: 'notice'; text: string }) => void): Promise<SharedCacheRun | undefined> {
  const to = settings.cacheTo ?? [];
  const from = settings.cacheFrom ?? [];
  if (to.length === 0 && from.length === 0) return undefined;
  const modes = to.filter((s) => s.type !== 'inline').map((s) => ('mode' in s ? (s.mode ?? 'min') : 'min'));
  return {
    ...(from.length > 0 && !settings.noCache ? { imported: await importCache(from, registryAccess(settings), (text) => emit({ type: 'notice', text })) } : {}),
    inline: to.some((s) => s.type === 'inline'),
    exported: modes.includes('max') ? 'max' : modes.length > 0 ? 'min' : 'none',
    recorded: [],
    leaving: new Set(),
  };
}

/** How the build's outputs reach registries: its insecure registries, credentials and CA file. */
function registryAccess(settings: BuildSettings): Access {
  const { insecureRegistries, credentials, caCertFile } = settings;
  return {
    ...(insecureRegistries ? { insecureRegistries } : {}),
    ...(credentials ? { credentials } : {}),
    ...(caCertFile ? { caCertFile } : {}),
  };
}

export { parseOutput, type OutputSpec } from './builder/outputs.js';
export { parseCacheSpec, type CacheSpec } from './builder/shared-cache.js';
export { parseBuildContexts, namedContextRefs } from './builder/named-contexts.js';
export { redactUrl } from './builder/sources.js';
import { writeOutputs, type OutputSpec } from './builder/outputs.js';
import { needsUserNamespace, startInUserNamespace } from './sandbox/rootless.js';
import { agentWithKeys, type KeyAgent } from './sandbox/ssh-agent.js';
import { dockerfileIn, isRemoteContext, prepareContext } from './builder/remote-context.js';
import { readContextFile } from './builder/context.js';
import { errorRecord, reviveError, RegistryError, SandboxError, StoreError } from './errors/index.js';
import type { WorkerReply, WorkerRequest } from './rootless-protocol.js';
import { epochSeconds, settings as envSettings } from './support/settings.js';

// Every public error class: an error from the worker comes back as the class it was.
const ERROR_CLASSES = [
  DockerfileError,
  OptionError,
  RegistryError,
  SandboxError,
  StoreError,
  BuildError,
  ImageError,
  ArchiveError,
  DigestError,
  DigestMismatchError,
  SizeMismatchError,
  InvalidReferenceError,
  GantryError,
] as const;

/**
 * build() for a non-root caller: a worker process in the user namespace runs it, and this
 * process relays what stays here (progress, credential look-ups, the abort signal).
 */
function buildInUserNamespace(options: BuildOptions): Promise<BuildExecResult> {
  const { onProgress, signal, credentials, ...rest } = options;
  signal?.throwIfAborted();
  const child = startInUserNamespace(fileURLToPath(new URL('./rootless-worker.js', import.meta.url)));
  return new Promise((resolve, reject) => {
    let settled = false;
    const send = (m: WorkerRequest): void => {
      if (child.connected) child.send(m);
    };
    const abort = (): void => send({ type: 'abort' });
    const finish = (settle: () => void): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', abort);
      settle();
    };
    signal?.addEventListener('abort', abort, { once: true });
    child.on('message', (m: WorkerReply) => {
      if (m.type === 'event') onProgress?.(m.event);
      else if (m.type === 'credentials') {
        Promise.resolve()
          .then(() => credentials?.(m.registry))
          .then(
            (value) => send({ type: 'credentials', id: m.id, ...(value ? { value } : {}) }),
            (err: unknown) => send({ type: 'credentials', id: m.id, error: errorRecord(err) }),
          );
      } else if (m.type === 'done') finish(() => resolve(m.result));
      else finish(() => reject(reviveError(m.error, ERROR_CLASSES)));
    });
    child.on('error', (err) => finish(() => reject(new SandboxError('SANDBOX_ROOTLESS', `cannot enter a user namespace: ${err.message}`))));
    child.on('close', (code, sig) => finish(() => reject(new SandboxError('SANDBOX_ROOTLESS', `the build in the user namespace ended without a result (${sig ?? `exit code ${code}`})`))));
    send({ type: 'build', options: { ...rest, root: rest.root ?? resolveRootDefault() }, credentials: credentials !== undefined });
  });
}
