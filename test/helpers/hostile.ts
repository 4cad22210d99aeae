/**
 * What every hostile-input test asserts besides its own point:
 *
 * - the **victim**: a directory beside the rootfs or store, with files of several modes, a
 *   subdirectory and a symlink, whose entries, contents, modes and owners must not change, and
 *   whose marker bytes must not appear in anything gantry stored;
 * - the **store invariant**: every blob hashes to its name, nothing but the layout's own
 *   entries outside the temp area, and every reference (index.json, manifests, the layer
 *   cache) resolves to a blob of the right size.
 */
import { createHash, randomBytes } from 'node:crypto';
import { snapshotId } from '../../src/store/snapshots.js';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import { isTrashEntry } from '../../src/store/trash.js';

export interface Victim {
  dir: string;
  /** Bytes only the victim holds: finding them in the store means something leaked. */
  marker: string;
  /** Assert nothing in the victim changed. */
  unchanged(): void;
}

function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = path.join(dir, r);
      const st = lstatSync(p);
      const what = st.isSymbolicLink() ? `-> ${readlinkSync(p)}` : st.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : st.isDirectory() ? 'dir' : 'other';
      out.push(`${r} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.nlink} ${what}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** A victim directory at `dir` (made here), with `extra` files (name → content) besides its own. */
export function makeVictim(dir: string, extra: Record<string, string> = {}): Victim {
  const marker = `VICTIM-${randomBytes(12).toString('hex')}`;
  mkdirSync(path.join(dir, 'sub'), { recursive: true });
  writeFileSync(path.join(dir, 'secret'), `${marker} secret\n`, { mode: 0o600 });
  writeFileSync(path.join(dir, 'tool'), `#!/bin/sh\necho ${marker}\n`, { mode: 0o755 });
  writeFileSync(path.join(dir, 'sub', 'file'), `${marker} sub\n`, { mode: 0o644 });
  symlinkSync('secret', path.join(dir, 'link'));
  for (const [name, body] of Object.entries(extra)) writeFileSync(path.join(dir, name), body);
  const before = listing(dir);
  return { dir, marker, unchanged: () => expect(listing(dir)).toEqual(before) };
}

/**
 * The layout's own entries; `tmp` is the temp area, where anything may be left by a crash;
 * `trash` holds builds' scratch trees (store/trash.ts).
 */
const STORE_ENTRIES = new Set(['blobs', 'index.json', 'index.json.lock', 'oci-layout', 'tmp', 'cache', 'cache-mounts', 'rootfs', 'snapshots', 'trash']);

interface Desc {
  mediaType?: string;
  digest: string;
  size: number;
}

/** Assert the store invariant at `root`; with `marker`, also that no blob holds those bytes. */
export function expectStoreConsistent(root: string, marker?: string): void {
  if (!existsSync(root)) return; // never made: trivially consistent
  // Killed while the store was being made (store.ts: a few calls between blobs/ and index.json):
  // no index yet, and so nothing stored either.
  if (!existsSync(path.join(root, 'index.json'))) {
    expect(existsSync(path.join(root, 'blobs', 'sha256')) ? readdirSync(path.join(root, 'blobs', 'sha256')) : [], 'blobs of a store with no index.json').toEqual([]);
    return;
  }
  // index.json.broken-<time>: what fsck --repair keeps of an unreadable index, on purpose.
  const stray = readdirSync(root).filter((n) => !STORE_ENTRIES.has(n) && !/^index\.json\.broken-\d+$/.test(n));
  expect(stray, 'entries outside the layout and its temp area').toEqual([]);
  const trash = path.join(root, 'trash');
  if (existsSync(trash)) {
    expect(statSync(trash).mode & 0o777, 'the trash is private').toBe(0o700);
    expect(readdirSync(trash).filter((n) => !isTrashEntry(n)), 'trash entries gantry named').toEqual([]);
  }
  const blobDir = path.join(root, 'blobs', 'sha256');
  expect(readdirSync(path.join(root, 'blobs')), 'algorithms under blobs/').toEqual(['sha256']);
  const sizes = new Map<string, number>();
  for (const name of readdirSync(blobDir)) {
    const bytes = readFileSync(path.join(blobDir, name));
    expect(createHash('sha256').update(bytes).digest('hex'), `blob ${name} hashes to its name`).toBe(name);
    sizes.set(`sha256:${name}`, bytes.length);
    if (marker) {
      const plain = bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes;
      expect(plain.includes(marker), `blob ${name} holds the victim's bytes`).toBe(false);
    }
  }
  const resolves = (d: Desc, from: string): void => {
    expect(sizes.get(d.digest), `${from} names ${d.digest}, which must be stored with size ${d.size}`).toBe(d.size);
  };
  const json = (d: Desc): { manifests?: Desc[]; config?: Desc; layers?: Desc[] } => JSON.parse(readFileSync(path.join(blobDir, d.digest.slice(7)), 'utf8'));
  const index = JSON.parse(readFileSync(path.join(root, 'index.json'), 'utf8')) as { manifests: Desc[] };
  for (const top of index.manifests) {
    resolves(top, 'index.json');
    const doc = json(top);
    const manifests = doc.manifests ? doc.manifests.filter((m) => sizes.has(m.digest)) : [top];
    for (const m of manifests) {
      const man = json(m);
      if (man.config) resolves(man.config, `manifest ${m.digest}`);
      for (const l of man.layers ?? []) resolves(l, `manifest ${m.digest}`);
    }
  }
  // Step snapshots (workspace/snapshots.ts): private; each whole (fs, index, meta) with its parents and base present.
  const snapDir = path.join(root, 'snapshots');
  if (existsSync(snapDir)) {
    expect(statSync(snapDir).mode & 0o777, 'snapshots/ is private').toBe(0o700);
    for (const id of readdirSync(snapDir)) {
      expect(readdirSync(path.join(snapDir, id)).sort(), `snapshot ${id} is whole`).toEqual(['fs', 'index.bin', 'meta.json']);
      const meta = JSON.parse(readFileSync(path.join(snapDir, id, 'meta.json'), 'utf8')) as { key: string; chain: string; parents: string[]; base: string };
      expect(snapshotId(meta.key, meta.chain), `snapshot ${id} is named by its key and layers`).toBe(id);
      for (const p of meta.parents) expect(existsSync(path.join(snapDir, p, 'fs')), `snapshot ${id}'s parent ${p}`).toBe(true);
      expect(existsSync(path.join(root, 'rootfs', meta.base)), `snapshot ${id}'s base chain`).toBe(true);
    }
  }
  const cacheDir = path.join(root, 'cache');
  for (const name of existsSync(cacheDir) ? readdirSync(cacheDir) : []) {
    if (!name.endsWith('.json')) continue; // a writer's temp file beside its entry
    const entry = JSON.parse(readFileSync(path.join(cacheDir, name), 'utf8')) as { layer: Desc | null };
    if (entry.layer) resolves(entry.layer, `cache entry ${name}`);
  }
}
