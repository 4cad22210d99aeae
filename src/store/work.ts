/**
 * The store's work area: temp entries (`<kind>-<pid>-<host>-<random>` in tmp/, where <host>
 * stands for the host name and PID namespace: a process that finds an entry of a dead process of
 * its own namespace removes it, a build killed mid-step leaves its rootfs there; an entry from
 * another namespace is left alone, its process may well be alive), this process's lease (the
 * blobs it uses before index.json names them, which prune keeps), the lock that index.json and
 * the leases are changed under, and the private directories (0700).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readdirSync, readlinkSync, rmdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { chmod, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GantryError, isSystemError, StoreError } from '../errors/index.js';
import { crashPoint, execFileAsync } from '../support/process.js';
import { Layout, PRIVATE_DIRS } from './layout.js';
import { removeTree, treeReleaser } from './trash.js';

export class WorkArea {
  private leaseFile: string | undefined;
  /** What this process's lease file holds. */
  private readonly leased = new Set<string>();
  /** The temp entries of dead processes that opening the store removed. */
  cleaned: string[] = [];
  /** Every path of the store. */
  readonly layout: Layout;
  /** The work area: temp entries and leases. */
  readonly tmpDir: string;
  /** Base images' layers extracted once, by chain: the lower directories of build overlays. */
  readonly rootfsDir: string;

  protected constructor(readonly root: string) {
    this.layout = new Layout(root);
    this.tmpDir = this.layout.tmpDir;
    this.rootfsDir = this.layout.rootfsDir;
  }

  /**
   * Note that this process uses `digests`, before the blobs become visible or are reused:
   * `prune` keeps every blob named in a live process's lease (tmp/lease-<pid>-...).
   */
  async lease(...digests: string[]): Promise<void> {
    const fresh = [...new Set(digests)].filter((d) => !this.leased.has(d)); // not yet in this process's lease file
    if (fresh.length === 0) return;
    this.leaseFile ??= this.tempPath('lease');
    const file = this.leaseFile;
    // Under the lock (taken once for all of them), so a prune that is sweeping finishes first and the next one sees it.
    await this.withLock(async () => appendFileSync(file, fresh.map((d) => d + '\n').join(''))).catch((err: unknown) => {
      throw this.ioError(err, `recording a lease in the store ${this.root}`);
    });
    for (const d of fresh) this.leased.add(d);
  }

  /** Drop this process's lease: what it wrote is referenced from index.json by now, or garbage. */
  async releaseLease(): Promise<void> {
    if (this.leaseFile) rmSync(this.leaseFile, { force: true });
    this.leaseFile = undefined;
    this.leased.clear();
  }

  /** Digests leased by processes that may still be running. */
  async liveLeases(): Promise<Set<string>> {
    const out = new Set<string>();
    for (const name of await readdir(this.tmpDir).catch(() => [] as string[])) {
      const owner = tempOwner(name);
      if (!owner || owner.kind !== 'lease' || !owner.alive) continue;
      const text = await readFile(path.join(this.tmpDir, name), 'utf8').catch(() => '');
      for (const d of text.split('\n')) if (d) out.add(d);
    }
    return out;
  }


  /**
   * The directories that hold extracted trees, a RUN's files and cache mounts (tmp/, rootfs/,
   * cache-mounts/, trash/) are the store owner's alone (0700): a set-user-ID program or a device
   * node from a layer or a RUN is never reachable by another host user through them. A store made
   * by an earlier gantry with wider modes is closed here.
   */
  protected closePrivateDirs(): void {
    for (const dir of PRIVATE_DIRS) {
      try {
        const p = path.join(this.root, dir);
        if ((statSync(p).mode & 0o077) !== 0) chmodSync(p, 0o700);
      } catch {
        // not made yet: made 0700 when first needed (privateDir)
      }
    }
  }

  /** One of the private directories (PRIVATE_DIRS), made 0700 when missing; its path. */
  async privateDir(name: (typeof PRIVATE_DIRS)[number]): Promise<string> {
    const p = path.join(this.root, name);
    if ((await mkdir(p, { recursive: true, mode: 0o700 })) !== undefined) await chmod(p, 0o700);
    return p;
  }

  /** A fresh temp path inside the store (same file system as the blobs, so rename is atomic). */
  tempPath(prefix = 'blob'): string {
    return path.join(this.tmpDir, `${prefix}-${process.pid}-${processHost()}-${randomBytes(8).toString('hex')}`);
  }

  /** A file-system error (a full disk, a read-only store) as a StoreError saying what was being done. */
  ioError(err: unknown, doing: string): unknown {
    if (err instanceof GantryError || !isSystemError(err)) return err;
    const code = err.code;
    const hint = code === 'ENOSPC' || code === 'EDQUOT' ? '; free some space (gantry prune) and run the command again' : '';
    return new StoreError('STORE_IO', `${doing}: ${(err as Error).message}${hint}`, { cause: err });
  }

  /** The turn of the last caller of withLock in this process. */
  private lockTurn: Promise<void> = Promise.resolve();

  /** Run `fn` holding the store's index lock (across processes). */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    // Callers in this process take turns first: the lock directory would turn one away to
    // proper-lockfile's retries (20 ms and more) while the other holds it for microseconds.
    const previous = this.lockTurn;
    let done!: () => void;
    this.lockTurn = new Promise<void>((resolve) => (done = resolve));
    await previous;
    try {
      return await this.withFileLock(fn);
    } finally {
      done();
    }
  }

  private async withFileLock<T>(fn: () => Promise<T>): Promise<T> {
    const options = {
      lockfilePath: this.layout.lockFile,
      // A holder killed with the lock held delays the next command by this much; the holders
      // keep it for milliseconds, and refresh it every second.
      stale: 4_000,
      update: 1_000,
      realpath: false,
    };
    // A free lock is taken here with synchronous calls, as proper-lockfile takes one (a lease
    // takes it for every cache hit, and a warm build cannot spare the thread-pool round trips,
    // nor loading proper-lockfile, which patches fs through graceful-fs: 7 ms); a held or stale
    // one is left to proper-lockfile, which waits for it or takes it over.
    let release: () => Promise<void>;
    const free = takeFreeLock(options.lockfilePath, options.update);
    if (free) release = async () => free();
    else release = await properLockfile().lock(this.root, { ...options, retries: { retries: 200, minTimeout: 20, maxTimeout: 250, factor: 1.3 } });
    try {
      crashPoint?.('index-locked');
      return await fn();
    } finally {
      await release();
    }
  }

  /** Remove temp entries left by processes of this host and PID namespace that are gone. */
  async cleanTemp(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of readdirOrNone(this.tmpDir)) {
      const owner = tempOwner(name);
      if (owner && !owner.alive) {
        // A killed build's overlay may still be mounted there, a chroot RUN's processes still
        // running in it: released first (store/trash.ts), or left for a command that can.
        if (owner.kind === 'rootfs' || owner.kind === 'run') {
          const release = treeReleaser();
          if (!release) continue;
          await release(path.join(this.tmpDir, name));
        }
        // Another process may be removing it too: whoever comes second finds less, or nothing.
        await removeTree(path.join(this.tmpDir, name));
        removed.push(name);
      }
    }
    return removed;
  }

  protected async atomicWrite(file: string, text: string): Promise<void> {
    const tmp = this.tempPath('meta');
    try {
      await mkdir(path.dirname(tmp), { recursive: true });
      await writeFile(tmp, text, { flag: 'wx', mode: 0o644 });
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw this.ioError(err, `writing ${file}`);
    }
  }
}

let hostTag: string | undefined;

/** This process's host name and PID namespace, as a short tag for temp names. */
export function processHost(): string {
  if (hostTag === undefined) {
    let ns = '';
    try {
      ns = readlinkSync('/proc/self/ns/pid');
    } catch {
      // no /proc: the host name alone
    }
    hostTag = createHash('sha256').update(`${hostname()}\0${ns}`).digest('hex').slice(0, 8);
  }
  return hostTag;
}

/**
 * Who owns a temp entry: its kind and whether its process may be alive. Undefined for names
 * gantry did not make. A process of another host or PID namespace counts as alive.
 */
export function tempOwner(name: string): { kind: string; pid: number; alive: boolean } | undefined {
  const m = /^([a-z]+)-(\d+)-(?:([0-9a-f]{8})-)?[0-9a-f]{16}$/.exec(name);
  if (!m) return undefined;
  const pid = Number(m[2]);
  if (!(pid > 0)) return undefined;
  const ours = m[3] === undefined || m[3] === processHost();
  return { kind: m[1] as string, pid, alive: !ours || pid === process.pid || isAlive(pid) };
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Mark `dir` as a top of a directory hierarchy for ext4 (`chattr +T`), so that the allocator
 * places each directory made in it (a build's rootfs) in a block group of its own choosing
 * rather than beside its siblings. Without it a build's new files take their inodes from the
 * groups where the last build's files were just removed (a RUN's `rm -rf`, an old rootfs), and
 * ext4 without a journal skips, one by one, every inode freed in the last 30 seconds: bigrun's
 * `cp -a /usr /usr2` took 0.35 to 1.35 s depending on what ran before it, and 0.3 to 0.4 s with
 * the flag. Best effort: other file systems do not have the flag, and nothing else depends on it.
 */
export async function spreadOut(dir: string): Promise<void> {
  const chattr = ['/usr/bin/chattr', '/bin/chattr'].find((p) => existsSync(p));
  if (!chattr) return;
  await execFileAsync(chattr, ['+T', dir]).catch(() => undefined);
}

/** proper-lockfile, loaded when a lock is found taken (see withLock). */
function properLockfile(): typeof import('proper-lockfile') {
  return createRequire(import.meta.url)('proper-lockfile') as typeof import('proper-lockfile');
}

/**
 * Take the lock directory `dir` if it does not exist, by proper-lockfile's protocol: made with
 * mkdir, its mtime refreshed every `update` ms while held, so that waiting processes do not
 * judge it stale. Undefined when it exists. The release throws, removing nothing, when the
 * lock was taken over meanwhile (its mtime is not the one last set: this process was paused
 * past the stale time), as proper-lockfile reports a compromised lock.
 */
function takeFreeLock(dir: string, update: number): (() => void) | undefined {
  try {
    mkdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw err;
  }
  let mtime = statSync(dir).mtimeMs;
  let lost = false;
  const stillOurs = (): boolean => {
    if (!lost && statSync(dir, { throwIfNoEntry: false })?.mtimeMs !== mtime) lost = true;
    return !lost;
  };
  const timer = setInterval(() => {
    if (!stillOurs()) return clearInterval(timer);
    touch(dir);
    mtime = statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? mtime;
  }, update);
  timer.unref();
  return () => {
    clearInterval(timer);
    if (!stillOurs()) throw new StoreError('STORE_LOCK', `${dir}: the lock was taken over while this process held it (paused longer than the lock's stale time)`);
    // An empty directory, as proper-lockfile leaves it: rmdir, not a recursive removal's walk.
    try {
      rmdirSync(dir);
    } catch {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/*
 * The store's metadata calls (does a blob exist, its size, touch it, list tmp/) are synchronous:
 * each takes microseconds, and a build makes dozens of them, where a thread-pool round trip of
 * fs/promises costs a few hundred microseconds on a 2-core machine (a no-op rebuild: 81 → 70 ms).
 * Reading and writing blobs' content stays asynchronous.
 */
export function exists(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false }) !== undefined;
}

export function touch(p: string): void {
  const now = new Date();
  try {
    utimesSync(p, now, now);
  } catch {
    // a blob another process just removed: the caller finds out when it reads it
  }
}

function readdirOrNone(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
