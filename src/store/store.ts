/**
 * The local store: an OCI image layout (image-spec image-layout.md) that skopeo and umoci read
 * as it is (layout.ts names every path in it). Split by job: the work area (work.ts: temp
 * entries, leases, the lock), the blobs (blobs.ts), and here the names (index.json: the images
 * and their names, changed under the lock and replaced atomically) and the opening of a store.
 * A command opens it once, with `withStore`.
 */
import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StoreError } from '../errors/index.js';
import { crashPoint } from '../support/process.js';
import { MediaType } from '../oci/media-types.js';
import { REF_NAME_ANNOTATION, type Descriptor, type Index } from '../oci/types.js';
import { Blobs } from './blobs.js';
import { isCurrentLayout, LAYOUT_VERSION } from './layout.js';
import { exists, spreadOut } from './work.js';

export { storeFailure, type BlobInfo } from './blobs.js';
export { isCurrentLayout, LAYOUT_VERSION, PRIVATE_DIRS } from './layout.js';
export { isAlive, processHost, tempOwner } from './work.js';

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

export class Store extends Blobs {
  private constructor(root: string) {
    super(root);
  }

  /** Open the store at `root`, creating an empty layout when there is none. */
  static async open(root: string): Promise<Store> {
    const store = new Store(path.resolve(root));
    await store.init();
    store.cleaned = await store.cleanTemp();
    return store;
  }

  private async init(): Promise<void> {
    const layoutFile = this.layout.layoutFile;
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
    const indexFile = this.layout.indexFile;
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
      crashPoint?.('store-created');
      // Until oci-layout is written (last: a directory that has it is a whole layout) the store
      // is a new one, so a process killed before then leaves the flag to the next one.
      await spreadOut(this.tmpDir);
      await this.atomicWrite(layoutFile, JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    } else if (newTmp) {
      await spreadOut(this.tmpDir);
    }
  }

  // --- index.json --------------------------------------------------------------------

  async readIndex(): Promise<Index> {
    const file = this.layout.indexFile;
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
    await this.atomicWrite(this.layout.indexFile, JSON.stringify(index, null, 2) + '\n');
  }

  /** Change index.json under the lock; `fn` edits the manifests in place. An index `fn` left as it was is not written again. */
  async updateIndex(fn: (manifests: Descriptor[]) => void | Promise<void>): Promise<Index> {
    return this.withLock(async () => {
      const index = await this.readIndex();
      const before = JSON.stringify(index.manifests);
      await fn(index.manifests);
      if (JSON.stringify(index.manifests) !== before) await this.writeIndex(index);
      crashPoint?.('index-written');
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
        // As fsck has it: an index may name manifests the store does not hold (another platform
        // of a pulled index, an attestation a load left out); those it holds must be whole, and
        // it must hold one.
        const ix = JSON.parse(readFileSync(this.blobPath(d.digest)).toString('utf8')) as Index;
        const held: Descriptor[] = [];
        for (const x of ix.manifests) if (await this.hasBlob(x.digest)) held.push(x);
        if (held.length === 0) missing.push(`every manifest of index ${d.digest}`);
        for (const x of held) await visit(x);
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

  /**
   * Add an untagged entry (an image with no name yet) unless the image is already listed; with
   * `dangling`, one that plain prune removes (docker's `<none>` of an unnamed commit).
   */
  async addUntagged(descriptor: Descriptor, options: { dangling?: boolean } = {}): Promise<void> {
    await this.updateIndex(async (manifests) => {
      await this.assertComplete(descriptor);
      if (!manifests.some((m) => m.digest === descriptor.digest)) {
        const { annotations: _drop, ...rest } = descriptor;
        manifests.push(options.dangling ? { ...rest, annotations: { [DANGLING_ANNOTATION]: 'true' } } : rest);
      }
    });
  }
}

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

/** The name of an extracted chain of layers under rootfs/: a sum of their diff IDs in order. */
export function chainName(diffIds: readonly string[]): string {
  return createHash('sha256').update(diffIds.join('\n')).digest('hex');
}

