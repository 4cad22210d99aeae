/**
 * Working containers (`gantry from`), as the store keeps them: each a directory
 * `containers/<id>/` holding `container.json` (the record below), `rootfs/` (the writable tree,
 * the image's layers unpacked) and `base.bin` (the tree's stat index as `from` made it, which
 * `commit` diffs against). A container is whole when its directory is in place: `from` makes
 * it in the work area and renames it in, so a killed `from` leaves only a temp entry.
 *
 * The store's invariants know them: prune keeps the image a container was made from (its
 * manifest, config and layers), rmi refuses to remove that image's last name unless forced, and
 * fsck checks every record and the image it names. What a container does (run, cp, commit) is
 * builder/containers.ts.
 */
import { randomBytes } from 'node:crypto';
import { linkSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StoreError } from '../errors/index.js';
import type { Descriptor, ImageConfig } from '../oci/types.js';
import type { Store } from './store.js';
import { isAlive, processHost } from './work.js';

/** What the store records of a working container. */
export interface ContainerRecord {
  /** 64 hex digits; commands take any unique prefix of 4 or more, or the name. */
  id: string;
  name: string;
  /** The image it was made from: the platform image's manifest digest, its config digest (the image ID), and the name it was asked by. */
  image: { digest: string; mediaType: string; id: string; name: string };
  /** When `from` made it (RFC 3339). */
  created: string;
  /** The config the next commit gives its image: the image's, changed by `gantry config`. */
  config: ImageConfig;
  /** The commands run in it, in order (the history entry of a commit says them). */
  runs: { argv: string[]; exitCode: number; started: string; finished: string }[];
}

const ID = /^[0-9a-f]{64}$/;
/** docker's rule for container names. */
export const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export function containersDir(store: Store): string {
  return path.join(store.root, 'containers');
}

export function containerDir(store: Store, id: string): string {
  if (!ID.test(id)) throw new StoreError('STORE_INVALID', `"${id}" is not a container ID`);
  return path.join(containersDir(store), id);
}

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

/** Every container record the store holds, oldest first; a directory whose record cannot be read is left out (fsck reports it). */
export function listContainers(store: Store): ContainerRecord[] {
  const out: ContainerRecord[] = [];
  for (const name of readdirSafe(containersDir(store))) {
    if (!ID.test(name)) continue;
    const r = readRecord(path.join(containersDir(store), name));
    if (r && r.id === name) out.push(r);
  }
  return out.sort((a, b) => (a.created < b.created ? -1 : a.created > b.created ? 1 : 0));
}

/** The record in a container directory, or undefined when it has none that reads as one. */
export function readRecord(dir: string): ContainerRecord | undefined {
  let r: ContainerRecord;
  try {
    r = JSON.parse(readFileSync(path.join(dir, 'container.json'), 'utf8')) as ContainerRecord;
  } catch {
    return undefined;
  }
  const ok =
    typeof r === 'object' && r !== null && typeof r.id === 'string' && ID.test(r.id) && typeof r.name === 'string' && typeof r.created === 'string' &&
    typeof r.image?.digest === 'string' && typeof r.image.mediaType === 'string' && typeof r.image.id === 'string' && typeof r.config === 'object' && r.config !== null && Array.isArray(r.runs);
  return ok ? r : undefined;
}

/** A container by name, full ID or unique ID prefix (4 or more hex digits), as docker finds one. */
export function findContainer(store: Store, ref: string): ContainerRecord {
  const all = listContainers(store);
  const byName = all.find((c) => c.name === ref);
  if (byName) return byName;
  if (/^[0-9a-f]{4,64}$/.test(ref)) {
    const byId = all.filter((c) => c.id.startsWith(ref));
    if (byId.length > 1) throw new StoreError('CONTAINER_AMBIGUOUS', `"${ref}" matches ${byId.length} containers; give more of the ID`);
    if (byId[0]) return byId[0];
  }
  throw new StoreError('CONTAINER_NOT_FOUND', `no such container: ${ref}`);
}

/** Whether `ref` names a container (by name, or a unique ID prefix). */
export function isContainer(store: Store, ref: string): boolean {
  try {
    findContainer(store, ref);
    return true;
  } catch {
    return false;
  }
}

/** Replace a container's record (written to a temp file, renamed over). */
export async function writeRecord(store: Store, record: ContainerRecord, dir = containerDir(store, record.id)): Promise<void> {
  const tmp = path.join(dir, `.container.json.${randomBytes(6).toString('hex')}`);
  await writeFile(tmp, JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path.join(dir, 'container.json'));
}

/**
 * Run `fn` holding the container's lock (`containers/<id>.lock`, naming this process and host),
 * with the container's record as it is once the lock is held: one command at a time changes a
 * container (a run, a copy into it, a commit, its removal). Another that finds it held fails at
 * once, saying so. The lock file is linked into place whole (never seen empty); a lock whose
 * process is gone (a command killed) is taken over under the store's lock, so two commands
 * cannot both take it. A lock of another host (a store shared between machines or PID
 * namespaces) cannot be checked, and is held until removed by hand.
 */
export async function withContainerLock<T>(store: Store, ref: string, doing: string, fn: (record: ContainerRecord) => Promise<T>): Promise<T> {
  const found = findContainer(store, ref);
  const dir = containerDir(store, found.id);
  const file = `${dir}.lock`;
  const mine = path.join(containersDir(store), `.lock-${randomBytes(8).toString('hex')}`);
  writeFileSync(mine, `${process.pid} ${processHost()}\n`, { mode: 0o600 });
  const take = (): boolean => {
    try {
      linkSync(mine, file);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  };
  try {
    let taken = take();
    if (!taken && lockHolder(file) === undefined) {
      taken = await store.withLock(async () => {
        if (lockHolder(file) !== undefined) return false;
        rmSync(file, { force: true }); // its holder is gone
        return take();
      });
    }
    if (!taken) throw new StoreError('CONTAINER_BUSY', `container ${found.name} is in use by another gantry command (a run, cp or commit; ${file} names it): ${doing} waits for nothing, try again when it ends`);
  } finally {
    rmSync(mine, { force: true });
  }
  try {
    // Read again under the lock: what the command before this one wrote is kept.
    const record = readRecord(dir);
    if (!record) throw new StoreError('CONTAINER_NOT_FOUND', `no such container: ${ref} (removed meanwhile)`);
    return await fn(record);
  } finally {
    rmSync(file, { force: true });
  }
}

/** The live process holding a lock file (its pid), or undefined when none is (no file, or its process is gone). */
function lockHolder(file: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : -1;
  }
  const [pid, host] = text.trim().split(' ');
  const n = Number(pid);
  if (!(n > 0)) return -1; // not gantry's: held, not taken over
  // Another host's process (a store shared over the network) cannot be checked: held.
  if (host !== processHost()) return n;
  return n === process.pid || isAlive(n) ? n : undefined;
}

/** Whether a gantry command holds the container's lock now (a run in it, say). */
export function containerBusy(store: Store, id: string): boolean {
  return lockHolder(`${containerDir(store, id)}.lock`) !== undefined;
}

/**
 * Remove a container: its directory renamed aside into the work area first (a removal killed
 * half way leaves a temp entry the next command removes, never a half container), then its lock.
 */
export async function discardContainer(store: Store, id: string): Promise<void> {
  const aside = store.tempPath('containerrm');
  await rename(containerDir(store, id), aside);
  await rm(aside, { recursive: true, force: true });
}

/** The images working containers were made from, as descriptors: prune and the build cache keep their blobs, fsck checks them. */
export function containerManifests(store: Store): Descriptor[] {
  return listContainers(store).map((c) => ({ digest: c.image.digest, mediaType: c.image.mediaType, size: 0 }));
}

/** A name no container has: `base` (buildah's `<image>-working-container`), else `base-2`, `base-3`… */
export function freeName(store: Store, base: string): string {
  const taken = new Set(listContainers(store).map((c) => c.name));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
