import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { cacheFileKind, Layout, LAYOUT_ENTRIES, PRIVATE_DIRS, type CacheFileKind } from '../../src/store/layout.js';

const hex = 'ab'.repeat(32);

describe('the store layout', () => {
  const layout = new Layout('/store');

  test.each<[CacheFileKind, string]>([
    ['entry', `${hex}.json`],
    ['size', `size-${hex}.json`],
    ['stat', `stat-${hex}.json`],
    ['seccomp', `seccomp-${hex}.json`],
    ['chain-snapshot', `snapshot-${hex}.bin`],
    ['old-chain-snapshot', `snapshot-${hex}.json`],
  ])('a %s file is named %s, and its name is read back as that kind', (kind, name) => {
    expect(layout.cachePath(kind, hex)).toBe(path.join('/store', 'cache', name));
    expect(cacheFileKind(name)).toEqual({ kind, id: hex });
  });

  test('names that are not gantry\'s are no kind; an id names a file in cache/ and nowhere else', () => {
    for (const name of ['notes.txt', `${hex}.json.tmp`, `size-${hex.slice(2)}.json`, `SNAPSHOT-${hex}.bin`, `../${hex}.json`]) expect(cacheFileKind(name)).toBeUndefined();
    // A stray name in rootfs/ (lost+found) names a snapshot file prune may remove: in cache/.
    expect(layout.chainSnapshotPath('lost+found')).toBe(path.join('/store', 'cache', 'snapshot-lost+found.bin'));
    for (const id of ['../../etc/passwd', '..', '', 'a/b']) expect(() => layout.cachePath('entry', id)).toThrow('cannot name a file there');
  });

  test('blobs/ is an entry of the layout (blobs.ts names its files), as are the private directories', () => {
    expect(layout.blobsDir).toBe(path.join('/store', 'blobs'));
    for (const d of PRIVATE_DIRS) expect(LAYOUT_ENTRIES.has(d)).toBe(true);
    expect([...LAYOUT_ENTRIES]).toEqual(expect.arrayContaining(['oci-layout', 'index.json', 'index.json.lock', 'blobs', 'cache']));
  });
});
