/**
 * `gantry fsck`: check a store against its invariant and, with `repair`, restore it.
 *
 * The invariant: every blob hashes to its name; blobs/ holds nothing but blobs; index.json
 * is an OCI index whose every entry resolves (manifest, config and layers present, of the
 * sizes their descriptors give); every build-cache entry names a stored layer; the temp area
 * holds only what live processes are writing; every working container has its record, its tree
 * and the image it was made from.
 *
 * A repair only removes what is broken, and re-creates what the layout needs:
 * - a blob whose bytes do not match its name, or a file in blobs/ that is not a blob, is deleted
 *   (a pull or build fetches or makes it again);
 * - an image that misses a blob, or whose blob is deleted above, leaves index.json; its name is
 *   reported so it can be pulled or built again;
 * - a cache entry that cannot be read or names a missing layer is deleted;
 * - an index.json that cannot be read is rebuilt from the manifests among the blobs, as
 *   untagged images (their names are lost with the file; the broken file is kept beside it);
 * - a missing oci-layout is written.
 * A missing index.json is rebuilt even without `repair`: opening the store would otherwise
 * leave an empty one, and a later prune would collect every image.
 * Temp entries of dead processes are removed whenever a store is opened.
 */
import { snapshotId, Snapshots } from './snapshots.js';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { INDEX_TYPES, MANIFEST_TYPES, MediaType } from '../oci/media-types.js';
import { REF_NAME_ANNOTATION, type Descriptor, type Index } from '../oci/types.js';
import { isCurrentLayout, LAYOUT_VERSION, withStore, type Store } from './store.js';
import { cacheFileKind, LAYOUT_ENTRIES } from './layout.js';
import { containersDir, readRecord } from './containers.js';
import { imageBlobs } from './cache.js';

export type ProblemKind = 'layout' | 'index' | 'blob-corrupt' | 'blob-stray' | 'image-incomplete' | 'cache-entry' | 'snapshot' | 'container' | 'temp' | 'unknown-entry';

export interface Problem {
  kind: ProblemKind;
  /** The digest, image name, file or entry concerned. */
  subject: string;
  detail: string;
  /** What the repair did, when it ran. */
  repaired?: string;
}

export interface FsckOptions {
  /** Fix what can be fixed (see the module comment); without it, only report. */
  repair?: boolean;
}

export interface FsckResult {
  problems: Problem[];
  /** Blobs read and hashed. */
  blobs: number;
  /** Images (index entries) checked. */
  images: number;
  /** True when nothing is wrong any more: no problems, or every one repaired. */
  ok: boolean;
}

const HEX_LENGTH: Record<string, number> = { sha256: 64, sha512: 128 };

export async function fsckStore(root: string, options: FsckOptions = {}): Promise<FsckResult> {
  const repair = options.repair === true;
  const problems: Problem[] = [];
  const layoutFile = path.join(path.resolve(root), 'oci-layout');
  // Opening re-creates a missing oci-layout and index.json: note what was missing first.
  const hadLayout = await readFile(layoutFile, 'utf8').catch(() => undefined);
  if (hadLayout !== undefined && !isCurrentLayout(hadLayout)) {
    const p: Problem = { kind: 'layout', subject: 'oci-layout', detail: `not an OCI image layout ${LAYOUT_VERSION}: ${hadLayout.slice(0, 80)}` };
    if (!repair) return { problems: [p], blobs: 0, images: 0, ok: false };
    await writeFile(layoutFile, JSON.stringify({ imageLayoutVersion: LAYOUT_VERSION }));
    p.repaired = 'rewritten';
    problems.push(p);
  }
  const indexFile = path.join(path.resolve(root), 'index.json');
  const indexText = await readFile(indexFile, 'utf8').catch(() => undefined);
  return withStore(root, async (store) => {
    if (hadLayout === undefined) problems.push({ kind: 'layout', subject: 'oci-layout', detail: 'missing', repaired: 'written' });
    for (const t of store.cleaned) problems.push({ kind: 'temp', subject: `tmp/${t}`, detail: 'left by a process that is gone', repaired: 'removed' });

    for (const name of await readdir(store.root)) {
      if (!LAYOUT_ENTRIES.has(name) && !/^index\.json\.broken-\d+$/.test(name)) problems.push({ kind: 'unknown-entry', subject: name, detail: 'not part of an OCI layout or of gantry\'s store; left alone' });
    }

    // 1. Blobs: each must be a regular file whose bytes hash to its name.
    const good = new Map<string, number>();
    let hashed = 0;
    for (const algorithm of await readdir(path.join(store.root, 'blobs'))) {
      const dir = path.join(store.root, 'blobs', algorithm);
      const st = await lstat(dir);
      const hexLength = HEX_LENGTH[algorithm];
      if (hexLength === undefined || !st.isDirectory()) {
        const p: Problem = { kind: 'blob-stray', subject: `blobs/${algorithm}`, detail: st.isDirectory() ? 'not a digest algorithm (sha256, sha512)' : 'not a directory' };
        if (repair) {
          await rm(dir, { recursive: true, force: true });
          p.repaired = 'removed';
        }
        problems.push(p);
        continue;
      }
      for (const hex of await readdir(dir)) {
        const file = path.join(dir, hex);
        const fst = await lstat(file);
        const digest = `${algorithm}:${hex}`;
        if (!new RegExp(`^[0-9a-f]{${hexLength}}$`).test(hex) || !fst.isFile()) {
          const p: Problem = { kind: 'blob-stray', subject: `blobs/${algorithm}/${hex}`, detail: fst.isFile() ? 'a file whose name is not a digest' : 'not a regular file' };
          if (repair) {
            await rm(file, { recursive: true, force: true });
            p.repaired = 'removed';
          }
          problems.push(p);
          continue;
        }
        const hash = createHash(algorithm);
        await pipeline(createReadStream(file), hash);
        hashed++;
        const actual = hash.digest('hex');
        if (actual !== hex) {
          const p: Problem = { kind: 'blob-corrupt', subject: digest, detail: `its bytes hash to ${algorithm}:${actual}` };
          if (repair) {
            await rm(file, { force: true });
            p.repaired = 'removed';
          }
          problems.push(p);
          continue;
        }
        good.set(digest, fst.size);
      }
    }

    // 2. index.json: readable, and every entry complete.
    let index: Index | undefined;
    try {
      index = JSON.parse(indexText ?? '') as Index;
      if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) throw new Error('not an OCI image index');
    } catch (err) {
      index = undefined;
      const p: Problem = { kind: 'index', subject: 'index.json', detail: indexText === undefined ? 'missing' : `unreadable: ${(err as Error).message}` };
      if (repair || indexText === undefined) {
        const rebuilt = await manifestsAmong(store, good);
        await store.withLock(async () => {
          if (indexText !== undefined) await writeFile(`${indexFile}.broken-${Date.now()}`, indexText);
          await store.writeIndex({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: rebuilt });
        });
        p.repaired = `rebuilt with ${rebuilt.length} untagged image(s) found among the blobs${indexText !== undefined ? '; the broken file was kept beside it' : ''}`;
        index = await store.readIndex();
      }
      problems.push(p);
    }

    const missingOf = async (d: Descriptor): Promise<string[]> => {
      const missing: string[] = [];
      /** False, noting what is wrong, when `x` is not stored with its size. */
      const have = (x: Descriptor): boolean => {
        if (good.get(x.digest) === x.size) return true;
        missing.push(good.has(x.digest) ? `${x.digest} (size ${good.get(x.digest)}, not ${x.size})` : x.digest);
        return false;
      };
      const visit = async (x: Descriptor): Promise<void> => {
        if (!have(x)) return;
        if (MANIFEST_TYPES.has(x.mediaType)) {
          const m = JSON.parse((await store.readBlob(x.digest)).toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
          for (const c of [...(m.config ? [m.config] : []), ...(m.layers ?? [])]) have(c);
        } else if (INDEX_TYPES.has(x.mediaType)) {
          const ix = JSON.parse((await store.readBlob(x.digest)).toString('utf8')) as Index;
          // An index pulled for one platform names the others' manifests without holding them.
          for (const c of ix.manifests) if (good.has(c.digest)) await visit(c);
          if (!ix.manifests.some((c) => good.has(c.digest))) missing.push(`every manifest of index ${x.digest}`);
        }
      };
      await visit(d);
      return missing;
    };

    let images = 0;
    if (index) {
      const broken = new Set<string>();
      for (const d of index.manifests) {
        images++;
        let missing: string[];
        try {
          missing = await missingOf(d);
        } catch (err) {
          missing = [`${d.digest} is not readable JSON (${(err as Error).message})`];
        }
        if (missing.length === 0) continue;
        const name = d.annotations?.[REF_NAME_ANNOTATION];
        const p: Problem = { kind: 'image-incomplete', subject: name ?? d.digest, detail: `missing ${missing.join(', ')}` };
        if (repair) {
          broken.add(`${d.digest} ${name ?? ''}`);
          p.repaired = `removed from index.json; pull or build ${name ?? 'it'} again`;
        }
        problems.push(p);
      }
      if (broken.size > 0) {
        await store.updateIndex((manifests) => {
          for (let i = manifests.length - 1; i >= 0; i--) {
            const m = manifests[i] as Descriptor;
            if (broken.has(`${m.digest} ${m.annotations?.[REF_NAME_ANNOTATION] ?? ''}`)) manifests.splice(i, 1);
          }
        });
      }
    }

    // 3. Extracted base chains (rootfs/): directories named by their chain, nothing else.
    for (const name of await readdir(store.rootfsDir).catch(() => [] as string[])) {
      const st = await lstat(path.join(store.rootfsDir, name));
      if (/^[0-9a-f]{64}$/.test(name) && st.isDirectory()) continue;
      const p: Problem = { kind: 'blob-stray', subject: `rootfs/${name}`, detail: 'not an extracted chain' };
      if (repair) {
        await rm(path.join(store.rootfsDir, name), { recursive: true, force: true });
        p.repaired = 'removed';
      }
      problems.push(p);
    }

    // 3b. Step snapshots (snapshots.ts): each whole, named by its key, with its parents and base chain.
    const snapshots = new Snapshots(store);
    const kept = snapshots.list();
    const ids = new Set(kept.map((k) => k.id));
    for (const { id, meta } of kept) {
      const dir = path.join(snapshots.dir, id);
      const detail = !meta
        ? 'meta.json missing or unreadable'
        : snapshotId(meta.key, meta.chain) !== id
          ? 'not named by its step key and layers'
          : !(await lstat(path.join(dir, 'fs')).catch(() => undefined))?.isDirectory()
            ? 'its directory (fs) is missing'
            : meta.parents.find((p) => !ids.has(p)) !== undefined
              ? `its parent ${meta.parents.find((p) => !ids.has(p))} is missing`
              : !(await lstat(path.join(store.rootfsDir, meta.base)).catch(() => undefined))
                ? `its base chain rootfs/${meta.base} is missing`
                : undefined;
      if (!detail) continue;
      const p: Problem = { kind: 'snapshot', subject: `snapshots/${id}`, detail };
      if (repair) {
        await rm(path.join(dir, 'meta.json'), { force: true });
        await rm(dir, { recursive: true, force: true });
        p.repaired = 'removed';
      }
      problems.push(p);
    }

    // 3c. Working containers (containers.ts): a readable record named by its ID, its tree and the
    // index of the tree as made, and the image it was made from (manifest, config, layers).
    for (const name of await readdir(containersDir(store)).catch(() => [] as string[])) {
      const dir = path.join(containersDir(store), name);
      if (name.endsWith('.lock') && (await lstat(dir.slice(0, -5)).catch(() => undefined))) continue; // a live container's lock
      const record = readRecord(dir);
      let detail: string | undefined;
      if (!record || record.id !== name) detail = 'no readable container.json naming this ID';
      else if (!(await lstat(path.join(dir, 'rootfs')).catch(() => undefined))?.isDirectory()) detail = 'its tree (rootfs/) is missing';
      else if (!(await lstat(path.join(dir, 'base.bin')).catch(() => undefined))) detail = 'the index of its tree as made (base.bin) is missing: it cannot be committed';
      else {
        const blobs = await imageBlobs(store, { manifests: [{ digest: record.image.digest, mediaType: record.image.mediaType, size: 0 }] });
        const missing = [...blobs].filter((d) => !good.has(d));
        if (missing.length > 0) detail = `the image it was made from (${record.image.name}) misses ${missing.join(', ')}: it cannot be committed`;
      }
      if (detail === undefined) continue;
      const p: Problem = { kind: 'container', subject: `containers/${name}${record ? ` (${record.name})` : ''}`, detail };
      // A container without a record is nothing any command can reach: removed. One with a
      // record holds someone's work: left for them to copy from and remove (gantry rm).
      if (repair && !record) {
        await rm(dir, { recursive: true, force: true });
        p.repaired = 'removed';
      } else if (repair) p.repaired = 'left as it is: copy out what you need (gantry cp), then gantry rm it';
      problems.push(p);
    }

    // 4. The build cache: each entry readable and naming a stored layer.
    const cacheDir = store.layout.cacheDir;
    for (const name of await readdir(cacheDir).catch(() => [] as string[])) {
      const file = path.join(cacheDir, name);
      const kind = cacheFileKind(name)?.kind;
      let detail: string | undefined;
      // An extracted chain's snapshot (snapshot/persist.ts), binary: checked against its tree when used.
      if (kind === 'chain-snapshot') continue;
      // A compiled seccomp program (sandbox/runtime.ts): its digest is checked when it is read, a bad one compiled again.
      if (kind === 'seccomp') continue;
      try {
        const e = JSON.parse(await readFile(file, 'utf8')) as { layer?: Descriptor | null; rows?: unknown };
        // A context's stat cache (builder/statcache.ts): only its shape matters, a wrong row costs a re-read.
        if (kind === 'stat') detail = typeof e.rows === 'object' && e.rows !== null ? undefined : 'a stat cache without rows';
        // A layer's content size (store/sizes.ts): a wrong one is only a wrong SIZE, read again once removed.
        else if (kind === 'size') detail = Number.isSafeInteger((e as { size?: unknown }).size) ? undefined : 'a layer size record without a size';
        // A snapshot in the JSON format kept before the binary one: unused, removed by prune.
        else if (kind === 'old-chain-snapshot') detail = Array.isArray(e.rows) ? undefined : 'a snapshot without rows';
        else if (kind !== 'entry') detail = 'not a cache entry name';
        else if (e.layer === undefined) detail = 'no layer field';
        else if (e.layer && good.get(e.layer.digest) !== e.layer.size) detail = `names layer ${e.layer.digest}, which is not stored`;
      } catch (err) {
        detail = `unreadable: ${(err as Error).message}`;
      }
      if (detail === undefined) continue;
      const p: Problem = { kind: 'cache-entry', subject: `cache/${name}`, detail };
      if (repair) {
        await rm(file, { recursive: true, force: true });
        p.repaired = 'removed (the step runs again next time)';
      }
      problems.push(p);
    }
    return { problems, blobs: hashed, images, ok: problems.every((p) => p.repaired !== undefined || p.kind === 'unknown-entry') };
  });
}

/** Manifests (and indexes) among the blobs, as untagged index entries: for rebuilding index.json. */
async function manifestsAmong(store: Store, good: Map<string, number>): Promise<Descriptor[]> {
  const docs = new Map<string, { mediaType: string; children: string[]; size: number }>();
  for (const [digest, size] of good) {
    if (size > 4 * 1024 * 1024) continue;
    const bytes = await readFile(store.blobPath(digest));
    if (bytes[0] !== 0x7b) continue; // '{'
    let doc: { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: unknown[] };
    try {
      doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
    } catch {
      continue;
    }
    if (doc.config && Array.isArray(doc.layers)) docs.set(digest, { mediaType: doc.mediaType ?? MediaType.ociManifest, children: [], size });
    else if (Array.isArray(doc.manifests)) docs.set(digest, { mediaType: doc.mediaType ?? MediaType.ociIndex, children: doc.manifests.map((m) => m.digest), size });
  }
  // A manifest that an index found here names is reached through that index.
  const named = new Set([...docs.values()].flatMap((d) => d.children));
  return [...docs]
    .filter(([digest]) => !named.has(digest))
    .map(([digest, d]) => ({ mediaType: d.mediaType, digest, size: d.size }))
    .sort((a, b) => a.digest.localeCompare(b.digest));
}
