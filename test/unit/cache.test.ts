import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LayerCache } from '../../src/store/cache.js';
import { Store } from '../../src/store/store.js';

// prune --all clears the build cache while builds may be writing entries into it. Clearing
// used to remove the directory itself, which failed (ENOTEMPTY) when an entry landed in it
// mid-way; it now removes the entries and leaves the directory.

const work = mkdtempSync(path.join(tmpdir(), 'gantry-cache-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('layer cache', () => {
  test('clearing while entries are written never fails, and leaves the directory', async () => {
    const store = await Store.open(path.join(work, 'store'));
    const cache = new LayerCache(store);
    const key = (i: number) => i.toString(16).padStart(64, '0');
    const entry = { layer: null, created: new Date(0).toISOString() };
    for (let i = 0; i < 50; i++) await cache.put(key(i), entry);
    const writes = Array.from({ length: 200 }, (_, i) => cache.put(key(1000 + i), entry));
    const clears = Array.from({ length: 5 }, () => cache.clear());
    await expect(Promise.all([...writes, ...clears])).resolves.toBeDefined();
    expect(readdirSync(path.join(store.root, 'cache')).every((n) => /^[0-9a-f]{64}\.json$/.test(n))).toBe(true);
    await cache.clear();
    expect(readdirSync(path.join(store.root, 'cache'))).toEqual([]);
  });
});
