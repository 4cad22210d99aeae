/**
 * Working containers, daemonless (buildah's `from`/`run`/`copy`/`config`/`commit`, docker's
 * `run`/`cp`/`commit`): a container is an image's layers unpacked into a writable tree in the
 * store (store/containers.ts keeps the records), changed by commands run in the RUN sandbox
 * and by copies, and committed as one diff layer over the image, as `docker commit` makes it.
 *
 * What a commit records is the difference between the tree as `from` made it (its stat index,
 * kept as `base.bin`) and the tree now: the same snapshot diff and layer writer a build's steps
 * use (snapshot/diff.ts), so a commit's layer holds exactly the change.
 */
import { lstat, mkdir, readdir, readlink, realpath, rename, stat, cp as copyTree } from 'node:fs/promises';
import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GantryError, OptionError, StoreError } from '../errors/index.js';
import type { Image } from '../image/image.js';
import { withHistory } from '../image/mutate.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import { formatPlatform, hostPlatform, parsePlatform } from '../oci/platform.js';
import { familiarName, formatReference, normalizeReference } from '../oci/reference.js';
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/types.js';
import { applyLayer } from '../rootfs/apply.js';
import { resolveInRoot } from '../rootfs/resolve.js';
import { runInSandbox, type Isolation } from '../sandbox/run.js';
import { diff, snapshot, writeLayer } from '../snapshot/diff.js';
import { loadSnapshot, saveSnapshot } from '../snapshot/persist.js';
import {
  CONTAINER_NAME,
  containerBusy,
  containerDir,
  freeName,
  isContainer,
  listContainers,
  newContainerId,
  discardContainer,
  withContainerLock,
  writeRecord,
  type ContainerRecord,
} from '../store/containers.js';
import { configDigestOf, writeImage } from '../store/images.js';
import { withStore, type Store } from '../store/store.js';
import { crashPoint } from '../support/process.js';
import { settings } from '../support/settings.js';
import tar, { entryFrom, type Pack } from '../tar/tar.js';
import { layerTar } from '../tar/decompress.js';
import { TarWriter } from '../tar/writer.js';
import { obtainImage } from './bases.js';
import { applyChanges, configFromChanges } from './import.js';
import { layerXattrs } from './layer.js';
import type { RegistryAccess } from './registry.js';
import { resolveUser } from './users.js';

export type { ContainerRecord } from '../store/containers.js';

/** docker's PATH for a container whose image sets none. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// --- from ----------------------------------------------------------------------------------------

export interface FromOptions extends RegistryAccess {
  root: string;
  /** The image: a name, or an ID in the store; pulled when the store lacks it. */
  image: string;
  /** The container's name (default: buildah's `<image>-working-container`, numbered when taken). */
  name?: string;
  /** Which platform of a multi-platform image (default: this host's). */
  platform?: string;
  /** Pull even when the store has the image. */
  pull?: boolean;
  signal?: AbortSignal;
}

/** What commands tell of a container. */
export interface ContainerInfo {
  id: string;
  name: string;
  /** The image's name as it was given, and its ID (config digest). */
  image: string;
  imageId: string;
  created: string;
}

const infoOf = (r: ContainerRecord): ContainerInfo => ({ id: r.id, name: r.name, image: r.image.name, imageId: r.image.id, created: r.created });

/** `gantry from IMAGE`: a new working container on the image. */
export async function fromImage(options: FromOptions): Promise<ContainerInfo> {
  return withStore(options.root, async (store) => infoOf(await createContainer(store, options)));
}

async function createContainer(store: Store, options: Omit<FromOptions, 'root'>): Promise<ContainerRecord> {
  if (options.name !== undefined && !CONTAINER_NAME.test(options.name)) {
    throw new OptionError('CONTAINER_NAME', `invalid container name "${options.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  }
  const platform = options.platform !== undefined ? formatPlatform(parsePlatform(options.platform)) : formatPlatform(hostPlatform());
  const image = await obtainImage(store, { ref: options.image, platform }, {
    ...(options.pull ? { pull: true } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.insecureRegistries ? { insecureRegistries: options.insecureRegistries } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    ...(options.caCertFile ? { caCertFile: options.caCertFile } : {}),
  });
  nameFree(store, options.name); // said before the image is unpacked
  // Leased until the record names it: a concurrent prune keeps the image's blobs meanwhile.
  await store.lease(image.digest, image.configDigest, ...image.layers.map((l) => l.digest));
  const id = newContainerId();
  const tmp = store.tempPath('container');
  const rootfs = path.join(tmp, 'rootfs');
  await mkdir(rootfs, { recursive: true, mode: 0o755 });
  for (const l of image.layers) {
    await applyLayer(rootfs, layerTar(l.open(), layerCompression(l.mediaType), `layer ${l.digest}`), { what: `layer ${l.digest} of ${options.image}` });
  }
  const imageName = imageNameOf(options.image, image);
  // What commit diffs against: a container without it could never be committed.
  await saveSnapshot(path.join(tmp, 'base.bin'), path.join(tmp, 'base.bin.tmp'), rootfs, await snapshot(rootfs));
  if (!existsSync(path.join(tmp, 'base.bin'))) throw new StoreError('STORE_IO', `container of ${options.image}: the index of its tree could not be written in ${tmp}`);
  await store.privateDir('containers');
  // Named and put in place under the store's lock: two `from`s never take the same name.
  return store.withLock(async () => {
    nameFree(store, options.name);
    const record: ContainerRecord = {
      id,
      name: options.name ?? freeName(store, `${baseName(imageName)}-working-container`),
      image: { digest: image.digest, mediaType: image.mediaType, id: image.configDigest, name: imageName },
      created: new Date().toISOString(),
      config: image.config,
      runs: [],
    };
    await writeRecord(store, record, tmp);
    await rename(tmp, containerDir(store, id));
    return record;
  });
}

/** Refuse a name another container has. */
function nameFree(store: Store, name: string | undefined): void {
  const taken = name !== undefined ? listContainers(store).find((c) => c.name === name) : undefined;
  if (taken) throw new StoreError('CONTAINER_NAME', `the container name "${name}" is already in use by container ${taken.id.slice(0, 12)}: remove it (gantry rm) or choose another name`);
}

/** The name a container tells its image by: a name as docker shows it, or the ID given. */
function imageNameOf(ref: string, image: Image): string {
  try {
    const norm = normalizeReference(ref);
    if (!/^(sha256:)?[0-9a-f]{4,64}$/.test(ref) || norm.tag !== undefined) return familiarName(norm) + (norm.digest !== undefined ? `@${norm.digest}` : `:${norm.tag ?? 'latest'}`);
  } catch {
    // an ID
  }
  return image.configDigest;
}

/** buildah's base of a container name: the image's repository, without registry, path or tag. */
function baseName(imageName: string): string {
  if (imageName.startsWith('sha256:')) return 'working';
  try {
    const last = normalizeReference(imageName).path.split('/').pop() ?? 'working';
    return CONTAINER_NAME.test(last) ? last : 'working';
  } catch {
    return 'working';
  }
}

// --- containers, rm ------------------------------------------------------------------------------

export interface ContainerRow extends ContainerInfo {
  /** The last command run in it (docker ps's COMMAND), or none. */
  command?: string;
  /** docker ps's STATUS words: Created, Running, Exited (N). */
  state: 'created' | 'running' | 'exited';
  exitCode?: number;
  /** When its last command ended. */
  finished?: string;
}

/** `gantry containers`: every working container, oldest first. */
export async function containers(options: { root: string }): Promise<ContainerRow[]> {
  return withStore(options.root, async (store) => {
    const rows: ContainerRow[] = [];
    for (const r of listContainers(store)) {
      const last = r.runs.at(-1);
      const running = containerBusy(store, r.id);
      rows.push({
        ...infoOf(r),
        ...(last ? { command: last.argv.join(' '), exitCode: last.exitCode, finished: last.finished } : { command: [...(r.config.config?.Entrypoint ?? []), ...(r.config.config?.Cmd ?? [])].join(' ') }),
        state: running ? 'running' : last ? 'exited' : 'created',
      });
    }
    return rows;
  });
}

/** `gantry rm`: the containers go, with their trees; one a command is using is refused. Returns their IDs. */
export async function removeContainers(options: { root: string; containers: string[] }): Promise<string[]> {
  return withStore(options.root, async (store) => {
    const removed: string[] = [];
    for (const ref of options.containers) {
      removed.push(await withContainerLock(store, ref, 'rm', async (record) => {
        await discardContainer(store, record.id);
        return record.id;
      }));
    }
    return removed;
  });
}

// --- run -----------------------------------------------------------------------------------------

export interface RunOptions extends RegistryAccess {
  root: string;
  /** A container (name or ID), or an image: then a container is made from it first (kept unless `rm`). */
  target: string;
  /** The command; default: the config's ENTRYPOINT and CMD. For an image, as docker run: after its ENTRYPOINT, in place of its CMD. */
  argv?: string[];
  /** More environment variables, `KEY=VALUE` (or `KEY`: the caller's value). */
  env?: string[];
  workdir?: string;
  user?: string;
  network?: 'default' | 'none' | 'host';
  isolation?: Isolation;
  /** The caller's standard input (-i) and a terminal (-t). */
  interactive?: boolean;
  tty?: boolean;
  /** For an image: remove the container made for the run when it ends. */
  rm?: boolean;
  /** For an image: the name of the container made for the run. */
  name?: string;
  platform?: string;
  pull?: boolean;
  /** Output, when not attached to the caller's streams (the API's default). */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Give the command the caller's streams (the CLI does). */
  attach?: boolean;
  signal?: AbortSignal;
}

export interface RunResult {
  exitCode: number;
  /** The container it ran in (removed again with `rm`). */
  container: ContainerInfo;
}

/** `gantry run`: a command in a working container, in the RUN sandbox. */
export async function runContainer(options: RunOptions): Promise<RunResult> {
  return withStore(options.root, async (store) => {
    const existing = isContainer(store, options.target);
    if (existing && (options.rm || options.name !== undefined || options.platform !== undefined)) {
      throw new OptionError('CONTAINER_RUN', `${options.target} is a container: --rm, --name and --platform are for running an image`);
    }
    const made = existing ? undefined : await createContainer(store, { ...options, image: options.target, ...(options.name !== undefined ? { name: options.name } : {}) });
    const ref = made?.id ?? options.target;
    return withContainerLock(store, ref, 'run', async (record) => {
      try {
        const exitCode = await runIn(store, record, options, made !== undefined);
        return { exitCode, container: infoOf(record) };
      } finally {
        if (made && options.rm) await discardContainer(store, record.id);
      }
    });
  });
}

async function runIn(store: Store, record: ContainerRecord, options: RunOptions, fromImage: boolean): Promise<number> {
  const config = record.config.config ?? {};
  const entrypoint = config.Entrypoint ?? [];
  const argv = options.argv?.length ? (fromImage ? [...entrypoint, ...options.argv] : options.argv) : [...entrypoint, ...(config.Cmd ?? [])];
  if (argv.length === 0) throw new GantryError('CONTAINER_RUN', `no command given, and ${record.name}'s config has no ENTRYPOINT or CMD`);
  const rootfs = path.join(containerDir(store, record.id), 'rootfs');
  const ids = await resolveUser(rootfs, options.user ?? (config.User || '0'), 'run');
  const hostname = record.id.slice(0, 12);
  const env = runEnv(config.Env ?? [], options.env ?? [], { hostname, home: ids.home ?? '/', tty: options.tty === true });
  const started = new Date().toISOString();
  const r = await runInSandbox({
    rootfs,
    argv,
    env,
    cwd: options.workdir ?? (config.WorkingDir || '/'),
    uid: ids.uid,
    gid: ids.gid,
    groups: ids.groups,
    hostname,
    network: options.network ?? 'default',
    ...(options.isolation ? { isolation: options.isolation } : {}),
    workDir: store.tempPath('run'),
    keepProgram: (key) => ({ file: store.layout.seccompProgramPath(key), temp: store.tempPath('seccomp') }),
    ...(options.attach ? { attach: { stdin: options.interactive === true, tty: options.tty === true } } : {}),
    ...(options.onStdout ? { onStdout: options.onStdout } : {}),
    ...(options.onStderr ? { onStderr: options.onStderr } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  record.runs.push({ argv, exitCode: r.exitCode, started, finished: new Date().toISOString() });
  await writeRecord(store, record);
  return r.exitCode;
}

/**
 * A run's environment, as docker run makes it: PATH when the config has none, HOSTNAME, HOME
 * (the user's, from /etc/passwd), TERM with a terminal; then the config's, then the caller's
 * (`KEY` alone takes the caller's own value, or is left out).
 */
export function runEnv(configEnv: readonly string[], extra: readonly string[], ctx: { hostname: string; home: string; tty: boolean }): string[] {
  const out = new Map<string, string>();
  const set = (kv: string): void => {
    const eq = kv.indexOf('=');
    if (eq > 0) out.set(kv.slice(0, eq), kv);
  };
  set(DEFAULT_PATH);
  set(`HOSTNAME=${ctx.hostname}`);
  for (const kv of configEnv) set(kv);
  if (ctx.tty && !out.has('TERM')) set('TERM=xterm');
  if (!out.has('HOME')) set(`HOME=${ctx.home}`);
  for (const kv of extra) {
    if (kv.includes('=')) set(kv);
    else {
      const value = settings.variable(kv);
      if (value !== undefined) set(`${kv}=${value}`);
    }
  }
  return [...out.values()];
}

// --- config --------------------------------------------------------------------------------------

export interface ConfigChanges {
  /** `KEY=VALUE` sets, `KEY-` removes (buildah's). */
  env?: string[];
  /** A JSON array (exec form) or a command line (run with /bin/sh -c); an empty string clears it. */
  cmd?: string;
  entrypoint?: string;
  workingDir?: string;
  user?: string;
  /** `KEY=VALUE` sets, `KEY-` removes. */
  labels?: string[];
  /** Dockerfile instructions, as `commit -c` takes them (CMD, ENV, LABEL, ...). */
  changes?: string[];
}

/** `gantry config`: change the config the container's next commit gives its image. */
export async function configureContainer(options: { root: string; container: string } & ConfigChanges): Promise<ContainerInfo> {
  return withStore(options.root, async (store) => {
    return withContainerLock(store, options.container, 'config', async (record) => {
      record.config = applyConfigChanges(record.config, options);
      await writeRecord(store, record);
      return infoOf(record);
    });
  });
}

/** A config with `c`'s changes made (pure). */
export function applyConfigChanges(image: ImageConfig, c: ConfigChanges): ImageConfig {
  let config: ContainerConfig = { ...(image.config ?? {}) };
  if (c.env?.length) config.Env = setPairs(config.Env ?? [], c.env, 'env');
  if (c.labels?.length) {
    const pairs = setPairs(Object.entries(config.Labels ?? {}).map(([k, v]) => `${k}=${v}`), c.labels, 'label');
    config.Labels = Object.fromEntries(pairs.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  }
  if (c.cmd !== undefined) config = withCommand(config, 'Cmd', c.cmd);
  if (c.entrypoint !== undefined) config = withCommand(config, 'Entrypoint', c.entrypoint);
  if (c.workingDir !== undefined) config.WorkingDir = c.workingDir === '' ? '' : path.posix.resolve(config.WorkingDir || '/', c.workingDir);
  if (c.user !== undefined) config.User = c.user;
  // Whole: a field cleared stays cleared. Then `-c` instructions over it, as commit -c.
  return applyChanges({ ...image, config }, c.changes ?? []);
}

function withCommand(config: ContainerConfig, key: 'Cmd' | 'Entrypoint', value: string): ContainerConfig {
  const out = { ...config };
  if (value.trim() === '') {
    delete out[key];
    return out;
  }
  let argv: unknown;
  try {
    argv = JSON.parse(value);
  } catch {
    argv = undefined;
  }
  out[key] = Array.isArray(argv) && argv.every((a) => typeof a === 'string') ? (argv as string[]) : ['/bin/sh', '-c', value];
  return out;
}

/** `KEY=VALUE` pairs set over `current` (by key, in place), `KEY-` removing one. */
function setPairs(current: readonly string[], changes: readonly string[], what: string): string[] {
  const out = new Map(current.map((kv) => [kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv, kv]));
  for (const c of changes) {
    if (c.endsWith('-') && !c.includes('=')) out.delete(c.slice(0, -1));
    else if (c.indexOf('=') > 0) out.set(c.slice(0, c.indexOf('=')), c);
    else throw new OptionError('CHANGE_INVALID', `--${what} "${c}": give KEY=VALUE, or KEY- to remove one`);
  }
  return [...out.values()];
}

// --- commit --------------------------------------------------------------------------------------

export interface CommitOptions {
  root: string;
  container: string;
  /** The new image's name; without one the image is dangling, as docker commit's. */
  reference?: string;
  /** The image's and its history entry's author (`-a`). */
  author?: string;
  /** The history entry's comment (`-m`). */
  message?: string;
  /** Dockerfile instructions applied to the config (`-c 'CMD ["app"]'`). */
  changes?: string[];
  /** Seconds since the epoch for `created` and the layer's times (clamped); default now. */
  sourceDateEpoch?: number;
}

export interface CommitResult {
  /** The image ID (config digest). */
  id: string;
  /** The manifest digest. */
  digest: string;
  name?: string;
  /** The layer the commit added, or none when nothing changed (as docker: an empty_layer history entry). */
  layer?: string;
}

/** `gantry commit`: the container's change as one layer over its image, with its config. */
export async function commitContainer(options: CommitOptions): Promise<CommitResult> {
  const name = options.reference !== undefined ? commitName(options.reference) : undefined;
  configFromChanges(options.changes ?? []); // refused before anything is written
  return withStore(options.root, async (store) => {
    return withContainerLock(store, options.container, 'commit', async (record) => {
      const dir = containerDir(store, record.id);
      const rootfs = path.join(dir, 'rootfs');
      const base = await loadSnapshot(path.join(dir, 'base.bin'), rootfs);
      if (!base) throw new StoreError('STORE_INVALID', `container ${record.name}: the index of its tree as it was made (${path.join(dir, 'base.bin')}) is missing or stale, so what changed cannot be told; make a new container`);
      const after = await snapshot(rootfs);
      const change = diff(base, after);
      const created = new Date(options.sourceDateEpoch !== undefined ? options.sourceDateEpoch * 1000 : Date.now()).toISOString();
      let layer: { digest: string; size: number } | undefined;
      if (change.length > 0) {
        const xattrs = await layerXattrs(rootfs, after, change);
        layer = await store.writeWith((out) =>
          writeLayer(new TarWriter(out), rootfs, after, change, { ...(options.sourceDateEpoch !== undefined ? { sourceDateEpoch: options.sourceDateEpoch } : {}), xattrs }),
        );
        await store.lease(layer.digest);
      }
      crashPoint?.('commit-layer-written');
      const config = commitConfig(record, { created, ...(layer ? { diffId: layer.digest } : {}), ...(options.author ? { author: options.author } : {}), ...(options.message ? { message: options.message } : {}), ...(options.changes?.length ? { changes: options.changes } : {}) });
      const image = await store.readJSON<{ layers: { digest: string; size: number; mediaType: string }[] }>(record.image.digest);
      const layers = [...image.layers, ...(layer ? [{ ...layer, mediaType: MediaType.ociLayer }] : [])];
      const descriptor = await writeImage(store, { config, layers });
      await store.lease(descriptor.digest);
      crashPoint?.('commit-image-written');
      if (name) await store.tag(name, descriptor);
      else await store.addUntagged(descriptor, { dangling: true });
      return { id: await configDigestOf(store, descriptor), digest: descriptor.digest, ...(name ? { name } : {}), ...(layer ? { layer: layer.digest } : {}) };
    });
  });
}

/** A commit's name, normalised: a tag, never a digest (the image's own is not known yet), as docker commit. */
function commitName(reference: string): string {
  const norm = normalizeReference(reference);
  if (norm.digest !== undefined) throw new OptionError('REFERENCE_INVALID', `${reference}: a commit is named by a tag; a digest reference cannot name it`);
  return formatReference(norm);
}

/** The committed image's config: the container's, its layer added, a history entry as docker commit's. */
export function commitConfig(
  record: Pick<ContainerRecord, 'config' | 'runs'>,
  c: { created: string; diffId?: string; author?: string; message?: string; changes?: readonly string[] },
): ImageConfig {
  let image: ImageConfig = { ...record.config, created: c.created };
  if (c.author) image.author = c.author;
  else delete image.author;
  if (c.changes?.length) image = applyChanges(image, c.changes);
  image.rootfs = { type: 'layers', diff_ids: [...(record.config.rootfs?.diff_ids ?? []), ...(c.diffId ? [c.diffId] : [])] };
  // docker commit's created_by is the container's command; here, the commands run in it.
  const entry: HistoryEntry = {
    created: c.created,
    ...(c.author ? { author: c.author } : {}),
    created_by: record.runs.map((r) => r.argv.join(' ')).join(' && '),
    ...(c.message ? { comment: c.message } : {}),
    ...(c.diffId ? {} : { empty_layer: true }),
  };
  return withHistory(image, entry);
}

// --- cp ------------------------------------------------------------------------------------------

export interface CopyOptions {
  root: string;
  /** `CONTAINER:PATH` or a host path. */
  source: string;
  /** `CONTAINER:PATH` or a host path; one of the two names a container. */
  destination: string;
  /** Follow a symbolic link that the source path names (docker cp -L). */
  followLink?: boolean;
}

/** A `CONTAINER:PATH` argument, as docker cp reads one (a host path with a colon starts with / or .). */
function splitContainerPath(arg: string): { container: string; path: string } | undefined {
  if (arg.startsWith('/') || arg.startsWith('.')) return undefined;
  const i = arg.indexOf(':');
  if (i <= 0) return undefined;
  return { container: arg.slice(0, i), path: arg.slice(i + 1) || '/' };
}

/**
 * `gantry cp`: files between a container's tree and the host, as docker cp copies them (a
 * directory into an existing directory goes inside it, `SRC/.` copies what is in it). Into the
 * container, the files are unpacked as a layer is (every path resolved inside its root, owned
 * by root); out of it, symbolic links are copied as links, never followed.
 */
export async function copyFiles(options: CopyOptions): Promise<void> {
  const src = splitContainerPath(options.source);
  const dst = splitContainerPath(options.destination);
  if (src && dst) throw new GantryError('CONTAINER_COPY', 'copying between containers is not supported: copy to the host first');
  if (!src && !dst) throw new GantryError('CONTAINER_COPY', `one of "${options.source}" and "${options.destination}" must be CONTAINER:PATH`);
  if (options.source === '-' || options.destination === '-') throw new OptionError('CONTAINER_COPY', 'cp to or from standard input (a tar stream) is not supported: give a path');
  const inside = (src ?? dst) as { container: string; path: string };
  await withStore(options.root, async (store) => {
    await withContainerLock(store, inside.container, 'cp', async (record) => {
      const rootfs = path.join(containerDir(store, record.id), 'rootfs');
      try {
        if (src) await copyOut(rootfs, src.path, options.destination, options.followLink === true);
        else await copyIn(rootfs, options.source, inside.path, options.followLink === true);
      } catch (err) {
        // fs.cp's and the file system's refusals (a file where a directory is, no permission) said for cp.
        const code = (err as NodeJS.ErrnoException).code;
        if (err instanceof GantryError || typeof code !== 'string') throw err;
        throw new GantryError('CONTAINER_COPY', `cp ${options.source} ${options.destination}: ${(err as Error).message}`, { cause: err });
      }
    });
  });
}

const contentsOnly = (p: string): boolean => p === '.' || p.endsWith('/.');

async function copyOut(rootfs: string, inner: string, hostDest: string, follow: boolean): Promise<void> {
  const { host: from, inner: resolved } = await resolveInRoot(rootfs, inner, follow || contentsOnly(inner));
  const st = await lstat(from).catch(() => undefined);
  if (!st) throw new GantryError('CONTAINER_COPY', `could not find the file ${inner} in the container`);
  // The copy is named as the path given names it (a link followed with -L keeps the link's name).
  const named = path.posix.basename(path.posix.resolve('/', inner));
  // The host side is the caller's: a link there is followed, as docker cp follows it.
  const destSt = await stat(hostDest).catch(() => undefined);
  if (!destSt && !(await stat(path.dirname(path.resolve(hostDest))).catch(() => undefined))?.isDirectory()) {
    throw new GantryError('CONTAINER_COPY', `${path.dirname(path.resolve(hostDest))}: no such directory`);
  }
  let target = hostDest;
  if (st.isDirectory()) {
    if (destSt?.isDirectory() && !contentsOnly(inner)) target = path.join(hostDest, named || 'rootfs');
    else if (destSt && !destSt.isDirectory()) throw new GantryError('CONTAINER_COPY', `cannot copy the directory ${inner} to ${hostDest}: it is not a directory`);
  } else {
    if (hostDest.endsWith('/') && !destSt) throw new GantryError('CONTAINER_COPY', `${hostDest}: no such directory`);
    if (destSt?.isDirectory()) target = path.join(hostDest, named || path.posix.basename(resolved));
  }
  await refuseSpecial(from, inner);
  await copyTree(from, target, { recursive: true, verbatimSymlinks: true, force: true, preserveTimestamps: true, dereference: false });
}

/** Only directories, files and links leave a container by cp (a device, a FIFO or a socket is refused). */
async function refuseSpecial(hostPath: string, shown: string): Promise<void> {
  const st = await lstat(hostPath);
  if (st.isDirectory()) {
    for (const name of await readdir(hostPath)) await refuseSpecial(path.join(hostPath, name), path.posix.join(shown, name));
  } else if (!st.isFile() && !st.isSymbolicLink()) {
    throw new GantryError('CONTAINER_COPY', `${shown} is a device, FIFO or socket: cp copies only files, directories and links`);
  }
}

async function copyIn(rootfs: string, given: string, inner: string, follow: boolean): Promise<void> {
  // -L: a link the source path names is followed (the caller's own file system).
  const hostSrc = follow || contentsOnly(given) ? await realpath(given).then((p) => (contentsOnly(given) ? `${p}/.` : p)).catch(() => given) : given;
  const st = await lstat(hostSrc).catch(() => undefined);
  if (!st) throw new GantryError('CONTAINER_COPY', `${hostSrc}: no such file or directory`);
  const dest = await resolveInRoot(rootfs, inner);
  const destSt = await lstat(dest.host).catch(() => undefined);
  const parent = await lstat(path.dirname(dest.host)).catch(() => undefined);
  if (!destSt && (!parent?.isDirectory() || inner.endsWith('/'))) throw new GantryError('CONTAINER_COPY', `${inner}: no such directory in the container`);
  let prefix: string;
  if (st.isDirectory()) {
    if (destSt && !destSt.isDirectory()) throw new GantryError('CONTAINER_COPY', `cannot copy the directory ${hostSrc} over the file ${inner}`);
    prefix = destSt && !contentsOnly(hostSrc) ? path.posix.join(dest.inner, path.basename(path.resolve(given))) : dest.inner;
  } else {
    prefix = destSt?.isDirectory() ? path.posix.join(dest.inner, path.basename(given)) : dest.inner;
  }
  const out = tar.pack();
  const writing = (async () => {
    try {
      await packHost(out, hostSrc, prefix);
      out.finalize();
    } catch (err) {
      out.destroy(err as Error);
    }
  })();
  // Unpacked as a layer is (every path resolved inside the root, nothing written through a link
  // out of it), `.wh.` names kept as files, every file root's: docker cp's owner.
  await applyLayer(rootfs, out, { what: `cp ${hostSrc}`, whiteouts: false, owner: { uid: 0, gid: 0 } });
  await writing;
}

/** The host tree at `host` as tar entries named under `name` (a directory's entries after it). */
async function packHost(out: Pack, host: string, name: string): Promise<void> {
  const st = await lstat(host);
  const header = { name: name.replace(/^\/+/, '') || '.', mode: st.mode & 0o7777, mtime: st.mtime, uid: 0, gid: 0 };
  if (st.isDirectory()) {
    await entryFrom(out, { ...header, type: 'directory' }, Readable.from([]));
    for (const child of (await readdir(host)).sort()) await packHost(out, path.join(host, child), path.posix.join(name, child));
  } else if (st.isSymbolicLink()) {
    await entryFrom(out, { ...header, type: 'symlink', linkname: await readlink(host) }, Readable.from([]));
  } else if (st.isFile()) {
    await entryFrom(out, { ...header, type: 'file', size: st.size }, createReadStream(host));
  } else {
    throw new GantryError('CONTAINER_COPY', `${host} is a device, FIFO or socket: cp copies only files, directories and links`);
  }
}
