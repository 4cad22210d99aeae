/**
 * The local store: an OCI image layout (image-spec image-layout.md) that skopeo and umoci
 * read as it is.
 *
 *   <root>/oci-layout        {"imageLayoutVersion":"1.0.0"}
 *   <root>/index.json        the images; names in org.opencontainers.image.ref.name
 *   <root>/blobs/<alg>/<hex> content, written once
 *   <root>/tmp/              gantry's work area (temp files, leases); ignored by other tools
 *
 * Blobs are written to tmp/, fsynced, verified against their digest and size, then renamed
 * into place, so a blob is either whole or absent. Reads verify too. Only index.json is
 * shared mutable state; it is changed under a lock and replaced atomically.
 *
 * Temp entries are named `<kind>-<pid>-<host>-<random>`, where <host> stands for the host
 * name and PID namespace: a process that finds an entry of a dead process of its own
 * namespace removes it (a build killed mid-step leaves its rootfs there); an entry from
 * another namespace is left alone, its process may well be alive.
 */
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, existsSync, fstatSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm, writeFile, readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GantryError, isSystemError, StoreError } from '../errors/index.js';
import { crashPerChunk, crashPoint } from '../support/crash.js';
import { execFileAsync } from '../support/lazy.js';
import { removeTree, treeReleaser } from './trees.js';
import { digestOf, parseDigest, VerifyStream, DigestMismatchError, SizeMismatchError } from '../oci/digest.js';
import { MediaType } from '../oci/media-types.js';
import { ChunkWriter } from '../tar/writer.js';
import { REF_NAME_ANNOTATION, type Descriptor, type Index } from '../oci/types.js';

export const LAYOUT_VERSION = '1.0.0';

/** Whether an oci-layout file's text names the layout version gantry reads and writes. */
export function isCurrentLayout(text: string): boolean {
  try {
    return (JSON.parse(text) as { imageLayoutVersion?: unknown }).imageLayoutVersion === LAYOUT_VERSION;
  } catch {
    return false;
  }
}

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface StoreEntry {
  /** The full normalised name, when the entry is tagged. */
  name?: string;
  descriptor: Descriptor;
}

export const DANGLING_ANNOTATION = 'dev.gantry.dangling';
/**
 * On an entry of the store's index: where the image is known to be in a registry, as
 * space-separated `REPOSITORY@DIGEST` (docker's RepoDigests). Pull and push write it; the digest
 * is the registry's (a pushed image is compressed on the way, so its manifest there differs).
 */
export const REPO_DIGESTS_ANNOTATION = 'dev.gantry.repo-digests';

/** The repository digests an index entry records. */
export function repoDigestsOf(d: Descriptor): string[] {
  return (d.annotations?.[REPO_DIGESTS_ANNOTATION] ?? '').split(' ').filter(Boolean);
}

/** Blobs up to this size are read whole with synchronous calls (readBlob). */
const SMALL_BLOB = 1024 * 1024;

/** The store's directories that only its owner may enter (see Store.closePrivateDirs). */
export const PRIVATE_DIRS = ['tmp', 'rootfs', 'snapshots', 'cache-mounts', 'trash'] as const;

export class Store {
  private leaseFile: string | undefined;
  /** What this process's lease file holds. */
  private readonly leased = new Set<string>();
  /** The temp entries of dead processes that opening the store removed. */
  cleaned: string[] = [];

  private constructor(readonly root: string) {}

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

  /** Open the store at `root`, creating an empty layout when there is none. */
  static async open(root: string): Promise<Store> {
    const store = new Store(path.resolve(root));
    await store.init();
    store.cleaned = await store.cleanTemp();
    return store;
  }

  get tmpDir(): string {
    return path.join(this.root, 'tmp');
  }

  /** Base images' layers extracted once, by chain: the lower directories of build overlays. */
  get rootfsDir(): string {
    return path.join(this.root, 'rootfs');
  }

  /** Where a compiled seccomp program is kept for later builds (sandbox/runtime.ts), by its key. */
  seccompProgramPath(key: string): string {
    return path.join(this.root, 'cache', `seccomp-${key}.json`);
  }

  /** Where the snapshot of the extracted chain `chain` is kept (snapshot/persist.ts). */
  chainSnapshotPath(chain: string): string {
    return path.join(this.root, 'cache', `snapshot-${chain}.bin`);
  }

  private async init(): Promise<void> {
    const layoutFile = path.join(this.root, 'oci-layout');
    let layout: string | undefined;
    try {
      layout = readFileSync(layoutFile, 'utf8');
    } catch {
      layout = undefined;
    }
    if (layout !== undefined && !isCurrentLayout(layout)) {
      throw new StoreError('STORE_LAYOUT', `${layoutFile}: not an OCI image layout ${LAYOUT_VERSION} (${layout.slice(0, 80)})`);
    }
    // Synchronous until index.json is in place: a process killed while making a new store
    // leaves, but for a few system calls' time, either nothing or blobs/, tmp/ and an empty index.
    mkdirSync(path.join(this.root, 'blobs', 'sha256'), { recursive: true });
    const newTmp = mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 }) !== undefined;
    // A new store's empty index is linked into place, which fails when another process made
    // one first: no lock is needed, and a crash leaves either no index.json or a whole one.
    const indexFile = path.join(this.root, 'index.json');
    if (!exists(indexFile)) {
      const tmp = this.tempPath('meta');
      try {
        writeFileSync(tmp, JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] }, null, 2) + '\n', { flag: 'wx' });
        try {
          linkSync(tmp, indexFile);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      } catch (err) {
        throw this.ioError(err, `creating ${indexFile}`);
      } finally {
        rmSync(tmp, { force: true });
      }
    }
    // After the index: the window in which a new store has no index.json stays a few calls wide.
    this.closePrivateDirs();
    if (layout === undefined) {
      crashPoint('store-created');
      // Until oci-layout is written (last: a directory that has it is a whole layout) the store
      // is a new one, so a process killed before then leaves the flag to the next one.
      await spreadOut(this.tmpDir);
      await this.atomicWrite(layoutFile, JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    } else if (newTmp) {
      await spreadOut(this.tmpDir);
    }
  }

  /**
   * The directories that hold extracted trees, a RUN's files and cache mounts (tmp/, rootfs/,
   * cache-mounts/, trash/) are the store owner's alone (0700): a set-user-ID program or a device
   * node from a layer or a RUN is never reachable by another host user through them. A store made
   * by an earlier gantry with wider modes is closed here.
   */
  private closePrivateDirs(): void {
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

  /** The path of a blob; the digest is validated first, so it can never name another file. */
  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return path.join(this.root, 'blobs', algorithm, hex);
  }

  async hasBlob(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  async blobSize(digest: string): Promise<number> {
    try {
      return statSync(this.blobPath(digest)).size;
    } catch (err) {
      throw this.missing(digest, err);
    }
  }

  private missing(digest: string, err: unknown): StoreError {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      return new StoreError('BLOB_NOT_FOUND', `blob ${digest} is not in the store ${this.root}`, { cause: err });
    }
    return new StoreError('STORE_IO', `blob ${digest}: ${(err as Error).message}`, { cause: err });
  }

  /** A fresh temp path inside the store (same file system as the blobs, so rename is atomic). */
  tempPath(prefix = 'blob'): string {
    return path.join(this.tmpDir, `${prefix}-${process.pid}-${processHost()}-${randomBytes(8).toString('hex')}`);
  }

  /**
   * Write a blob. With `expected`, the bytes must match its digest and size or nothing is
   * stored. A blob already present is not written again.
   */
  async writeBlob(data: Buffer | string | Readable | AsyncIterable<Buffer>, expected?: Partial<BlobInfo>): Promise<BlobInfo> {
    if (expected?.digest !== undefined) {
      parseDigest(expected.digest);
      await this.lease(expected.digest);
    }
    if (expected?.digest !== undefined && (await this.hasBlob(expected.digest))) {
      // Drain the source so callers' pipelines finish; the stored copy is already verified.
      if (!(typeof data === 'string' || Buffer.isBuffer(data))) for await (const _ of data) void _;
      const size = await this.blobSize(expected.digest);
      if (expected.size !== undefined && size !== expected.size) {
        throw new SizeMismatchError(expected.digest, expected.size, size);
      }
      touch(this.blobPath(expected.digest));
      return { digest: expected.digest, size };
    }
    const tmp = this.tempPath();
    const verify = new VerifyStream({
      ...(expected?.digest !== undefined ? { digest: expected.digest } : {}),
      ...(expected?.size !== undefined ? { size: expected.size } : {}),
    });
    const source = typeof data === 'string' || Buffer.isBuffer(data) ? Readable.from([Buffer.from(data)]) : Readable.from(data);
    try {
      await pipeline([source, verify, ...crashPerChunk('blob-chunk'), createWriteStream(tmp, { flags: 'wx', mode: 0o644 })]);
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      return await this.commitTemp(tmp, verify.digest, verify.size);
    } catch (err) {
      await rm(tmp, { force: true });
      throw this.ioError(err, `writing a blob to the store ${this.root}`);
    }
  }

  /** A whole, synced temp file named into place as the blob `digest`. */
  private async commitTemp(tmp: string, digest: string, size: number): Promise<BlobInfo> {
    crashPoint('blob-temp');
    await this.lease(digest);
    const dest = this.blobPath(digest);
    await mkdir(path.dirname(dest), { recursive: true });
    await rename(tmp, dest);
    crashPoint('blob-stored');
    return { digest, size };
  }

  /**
   * Write a blob that `produce` lays out in a ChunkWriter (the build's layers: see
   * src/tar/writer.ts). Chunks are hashed and written as they fill. A failed write of the
   * store (a full disk) is reported as such; an error of `produce` itself (a file it could
   * not read) is passed on as it is. Nothing is left behind either way.
   */
  async writeWith(produce: (out: ChunkWriter) => Promise<void>): Promise<BlobInfo> {
    const tmp = this.tempPath();
    const hash = createHash('sha256');
    let storeErr: unknown;
    /** The store's own I/O: its failure is the one to report. */
    const io = <T>(p: Promise<T>): Promise<T> =>
      p.catch((err: unknown) => {
        storeErr = err;
        throw err;
      });
    let fh: FileHandle | undefined;
    try {
      const file = (fh = await io(open(tmp, 'wx', 0o644)));
      const out = new ChunkWriter(
        async (chunk) => {
          hash.update(chunk);
          for (let at = 0; at < chunk.length; ) at += (await io(file.write(chunk, at, chunk.length - at))).bytesWritten;
          crashPoint('blob-chunk');
        },
        { reuse: true },
      );
      await produce(out);
      await out.end();
      await io(file.sync());
      fh = undefined;
      await io(file.close());
      return await this.commitTemp(tmp, `sha256:${hash.digest('hex')}`, out.size);
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true });
      if (storeErr !== undefined) throw this.ioError(storeErr, `writing a blob to the store ${this.root}`);
      throw err;
    }
  }

  /** A file-system error (a full disk, a read-only store) as a StoreError saying what was being done. */
  ioError(err: unknown, doing: string): unknown {
    if (err instanceof GantryError || !isSystemError(err)) return err;
    const code = err.code;
    const hint = code === 'ENOSPC' || code === 'EDQUOT' ? '; free some space (gantry prune) and run the command again' : '';
    return new StoreError('STORE_IO', `${doing}: ${(err as Error).message}${hint}`, { cause: err });
  }

  /**
   * Write what a chain of streams produces (a source and its transforms) as a blob. When the
   * store's write fails (a full disk), its error is the one reported, not the torn-down
   * chain's.
   */
  async writeFrom(streams: (NodeJS.ReadableStream | NodeJS.ReadWriteStream)[]): Promise<BlobInfo> {
    const out = new PassThrough();
    const writing = this.writeBlob(out);
    try {
      await Promise.all([pipeline([...streams, out]), writing]);
    } catch (err) {
      out.destroy();
      throw await storeFailure(err, writing);
    }
    return writing;
  }

  async writeJSON(value: unknown): Promise<BlobInfo & { bytes: Buffer }> {
    const bytes = Buffer.from(JSON.stringify(value));
    // Summed first: a config or manifest the store has (a rebuild that changed nothing) is not written again.
    const info = await this.writeBlob(bytes, { digest: digestOf(bytes), size: bytes.length });
    return { ...info, bytes };
  }

  /** A verified read stream: errors at the end when the bytes do not hash to the digest. */
  openBlob(digest: string, size?: number): Readable {
    const file = this.blobPath(digest);
    const verify = new VerifyStream({ digest, ...(size !== undefined ? { size } : {}) });
    const input = createReadStream(file);
    input.on('error', (err) => verify.destroy(this.missing(digest, err)));
    verify.on('error', (err) => {
      if (err instanceof DigestMismatchError) {
        Object.assign(err, { message: `corrupted blob in the store ${this.root}: ${err.message}` });
      }
    });
    return input.pipe(verify);
  }

  /**
   * Read a whole (small) blob, verified. Up to 1 MiB (manifests, configs, indexes) it is read
   * with synchronous calls, no stream: a few µs instead of the six thread-pool round trips of
   * stat and a read stream, and a build reads a dozen of these before its first step.
   */
  async readBlob(digest: string, maxSize = 64 * 1024 * 1024): Promise<Buffer> {
    const file = this.blobPath(digest);
    let bytes: Buffer | undefined;
    let size: number;
    try {
      const fd = openSync(file, 'r');
      try {
        size = fstatSync(fd).size;
        if (size <= Math.min(maxSize, SMALL_BLOB)) bytes = readFileSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      throw this.missing(digest, err);
    }
    if (size > maxSize) throw new StoreError('BLOB_TOO_LARGE', `blob ${digest} is ${size} bytes, more than ${maxSize}`);
    if (bytes === undefined) {
      const chunks: Buffer[] = [];
      for await (const chunk of this.openBlob(digest, size)) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    }
    const expected = parseDigest(digest);
    const actual = digestOf(bytes, expected.algorithm);
    if (actual !== digest) {
      const err = new DigestMismatchError(digest, actual, `blob ${digest}`);
      throw Object.assign(err, { message: `corrupted blob in the store ${this.root}: ${err.message}` });
    }
    return bytes;
  }

  async readJSON<T>(digest: string): Promise<T> {
    const bytes = await this.readBlob(digest);
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (err) {
      throw new StoreError('STORE_JSON', `blob ${digest} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  }

  // --- index.json --------------------------------------------------------------------

  async readIndex(): Promise<Index> {
    const file = path.join(this.root, 'index.json');
    // Synchronous: a small file every command reads, and a thread-pool round trip costs more than the read.
    const text = readFileSync(file, 'utf8');
    let index: Index;
    try {
      index = JSON.parse(text) as Index;
    } catch (err) {
      throw new StoreError('STORE_INDEX', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
    if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) {
      throw new StoreError('STORE_INDEX', `${file} is not an OCI image index`);
    }
    return index;
  }

  /** Replace index.json; only call while holding the lock (withLock). */
  async writeIndex(index: Index): Promise<void> {
    await this.atomicWrite(path.join(this.root, 'index.json'), JSON.stringify(index, null, 2) + '\n');
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
      lockfilePath: path.join(this.root, 'index.json.lock'),
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
      crashPoint('index-locked');
      return await fn();
    } finally {
      await release();
    }
  }

  /** Change index.json under the lock; `fn` edits the manifests in place. An index `fn` left as it was is not written again. */
  async updateIndex(fn: (manifests: Descriptor[]) => void | Promise<void>): Promise<Index> {
    return this.withLock(async () => {
      const index = await this.readIndex();
      const before = JSON.stringify(index.manifests);
      await fn(index.manifests);
      if (JSON.stringify(index.manifests) !== before) await this.writeIndex(index);
      crashPoint('index-written');
      return index;
    });
  }

  async entries(): Promise<StoreEntry[]> {
    const index = await this.readIndex();
    return index.manifests.map((descriptor) => {
      const name = descriptor.annotations?.[REF_NAME_ANNOTATION];
      return name !== undefined ? { name, descriptor } : { descriptor };
    });
  }

  /**
   * Point `name` (a full normalised reference) at `descriptor`. The image that had the
   * name keeps an untagged entry when no other name refers to it (docker's dangling image).
   */
  /** Under the lock: the manifest and everything it references must be present. */
  private async assertComplete(descriptor: Descriptor): Promise<void> {
    const missing: string[] = [];
    const visit = async (d: Descriptor): Promise<void> => {
      if (!(await this.hasBlob(d.digest))) {
        missing.push(d.digest);
        return;
      }
      if (d.mediaType === MediaType.ociManifest || d.mediaType === MediaType.dockerManifest) {
        const m = JSON.parse(readFileSync(this.blobPath(d.digest)).toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
        for (const x of [m.config, ...m.layers]) if (!(await this.hasBlob(x.digest))) missing.push(x.digest);
      } else if (d.mediaType === MediaType.ociIndex || d.mediaType === MediaType.dockerManifestList) {
        const ix = JSON.parse(readFileSync(this.blobPath(d.digest)).toString('utf8')) as Index;
        for (const x of ix.manifests) await visit(x);
      }
    };
    await visit(descriptor);
    if (missing.length > 0) {
      throw new StoreError('STORE_INCOMPLETE', `image ${descriptor.digest} is incomplete in the store: missing ${missing.join(', ')} (removed by a concurrent prune?); retry`);
    }
  }

  async tag(name: string, descriptor: Descriptor): Promise<void> {
    await this.updateIndex(async (manifests) => {
      await this.assertComplete(descriptor);
      // What the registry is known to hold of this image stays known under the new name.
      const known = [...new Set([...repoDigestsOf(descriptor), ...manifests.filter((m) => m.digest === descriptor.digest).flatMap(repoDigestsOf)])];
      const i = manifests.findIndex((m) => m.annotations?.[REF_NAME_ANNOTATION] === name);
      const previous = i >= 0 ? manifests[i] : undefined;
      if (i >= 0) manifests.splice(i, 1);
      // An untagged entry for this image is superseded by the name.
      for (let j = manifests.length - 1; j >= 0; j--) {
        const m = manifests[j] as Descriptor;
        if (m.digest === descriptor.digest && m.annotations?.[REF_NAME_ANNOTATION] === undefined) manifests.splice(j, 1);
      }
      const { annotations, ...rest } = descriptor;
      const others = Object.fromEntries(
        Object.entries(annotations ?? {}).filter(([k]) => k !== REF_NAME_ANNOTATION && k !== DANGLING_ANNOTATION),
      );
      if (known.length > 0) others[REPO_DIGESTS_ANNOTATION] = known.join(' ');
      const entry = { ...rest, annotations: { ...others, [REF_NAME_ANNOTATION]: name } };
      // A name that already points there keeps its place (a rebuild that changed nothing).
      if (previous && JSON.stringify(previous) === JSON.stringify(entry)) manifests.splice(Math.min(i, manifests.length), 0, entry);
      else manifests.push(entry);
      if (previous && previous.digest !== descriptor.digest && !manifests.some((m) => m.digest === previous.digest)) {
        const { annotations: prevAnn, ...prevRest } = previous;
        const kept = Object.fromEntries(Object.entries(prevAnn ?? {}).filter(([k]) => k !== REF_NAME_ANNOTATION));
        // The image lost its last name: docker's dangling image, which prune removes.
        manifests.push({ ...prevRest, annotations: { ...kept, [DANGLING_ANNOTATION]: 'true' } });
      }
    });
  }

  /**
   * Record that `repository` (a normalised name without tag) holds the image whose manifest
   * here is `digest` under the registry digest `repoDigest`, on every entry of the image: one
   * digest per repository, the newest.
   */
  async recordRepoDigest(digest: string, repository: string, repoDigest: string): Promise<void> {
    await this.updateIndex((manifests) => {
      for (const m of manifests) {
        if (m.digest !== digest) continue;
        const list = [...repoDigestsOf(m).filter((r) => r.slice(0, r.lastIndexOf('@')) !== repository), `${repository}@${repoDigest}`];
        m.annotations = { ...m.annotations, [REPO_DIGESTS_ANNOTATION]: list.join(' ') };
      }
    });
  }

  /** Add an untagged entry (an image with no name yet) unless the image is already listed. */
  async addUntagged(descriptor: Descriptor): Promise<void> {
    await this.updateIndex(async (manifests) => {
      await this.assertComplete(descriptor);
      if (!manifests.some((m) => m.digest === descriptor.digest)) {
        const { annotations: _drop, ...rest } = descriptor;
        manifests.push(rest);
      }
    });
  }

  // --- temp area -----------------------------------------------------------------------

  /** Remove temp entries left by processes of this host and PID namespace that are gone. */
  async cleanTemp(): Promise<string[]> {
    const removed: string[] = [];
    for (const name of readdirOrNone(this.tmpDir)) {
      const owner = tempOwner(name);
      if (owner && !owner.alive) {
        // A killed build's overlay may still be mounted there, a chroot RUN's processes still
        // running in it: released first (store/trees.ts), or left for a command that can.
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

  private async atomicWrite(file: string, text: string): Promise<void> {
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

/**
 * The error to report when a stream into the store failed: when the store's own write failed
 * (a full disk), the other streams only saw theirs torn down, and the store's error is the
 * one that says what happened.
 */
/**
 * Run `fn` with the store at `root`, opened once for it, and release this process's lease
 * however `fn` ends: the one way a command opens the store. A command that does several
 * things (a build, then its outputs and pushes) does them all in one scope.
 */
export async function withStore<T>(root: string, fn: (store: Store) => Promise<T>): Promise<T> {
  const store = await Store.open(root);
  try {
    return await fn(store);
  } finally {
    await store.releaseLease();
  }
}

export async function storeFailure(err: unknown, writing: Promise<unknown>): Promise<unknown> {
  const stored = await writing.then(
    () => undefined,
    (e: unknown) => e,
  );
  return stored instanceof StoreError && stored.code === 'STORE_IO' ? stored : err;
}

/** The name of an extracted chain of layers under rootfs/: a sum of their diff IDs in order. */
export function chainName(diffIds: readonly string[]): string {
  return createHash('sha256').update(diffIds.join('\n')).digest('hex');
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

/**
 * Mark `dir` as a top of a directory hierarchy for ext4 (`chattr +T`), so that the allocator
 * places each directory made in it (a build's rootfs) in a block group of its own choosing
 * rather than beside its siblings. Without it a build's new files take their inodes from the
 * groups where the last build's files were just removed (a RUN's `rm -rf`, an old rootfs), and
 * ext4 without a journal skips, one by one, every inode freed in the last 30 seconds: bigrun's
 * `cp -a /usr /usr2` took 0.35 to 1.35 s depending on what ran before it, and 0.3 to 0.4 s with
 * the flag. Best effort: other file systems do not have the flag, and nothing else depends on it.
 */
async function spreadOut(dir: string): Promise<void> {
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
function exists(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false }) !== undefined;
}

function touch(p: string): void {
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

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
