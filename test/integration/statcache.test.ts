import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { checksumSources, type SourceItem } from '../../src/builder/context.js';
import { StatCache } from '../../src/builder/statcache.js';
import { writeTree } from '../helpers/files.js';

// The context stat cache: an unchanged file is not read again, a changed one always is (even
// when its size and modification time are put back), and the checksum is the same with the
// cache as without it.

const work = mkdtempSync(path.join(tmpdir(), 'gantry-statcache-'));
const ctx = path.join(work, 'ctx');
const cacheDir = path.join(work, 'cache');
let n = 0;
const open = () => StatCache.open((key) => path.join(cacheDir, `stat-${key}.json`), ctx, path.join(work, `tmp-${++n}`));
const items = (): SourceItem[] => [{ host: ctx, rel: '', name: '', isDir: true }];
const none = () => false;

beforeAll(async () => {
  writeTree(ctx, Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`d${i % 5}/f${i}`, `file ${i}\n`])));
  // Files written less than a second before a scan are "racy" and never remembered.
  await new Promise((r) => setTimeout(r, 1100));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('context stat cache', () => {
  test('a second build reads nothing, and sums the same as without the cache', async () => {
    const first = await open();
    const sum = await checksumSources(items(), none, first);
    expect([first.hits, first.misses]).toEqual([0, 50]);
    await first.save();
    const second = await open();
    expect(await checksumSources(items(), none, second)).toBe(sum);
    expect([second.hits, second.misses]).toEqual([50, 0]);
    expect(await checksumSources(items(), none)).toBe(sum);
  });

  test('a file rewritten with the same size and its old mtime put back is read again (ctime)', async () => {
    const file = path.join(ctx, 'd0', 'f0');
    const before = statSync(file);
    const cache = await open();
    const sum = await checksumSources(items(), none, cache);
    writeFileSync(file, 'FILE 0\n'); // same length
    utimesSync(file, before.atime, before.mtime);
    const after = await open();
    const changed = await checksumSources(items(), none, after);
    expect(changed).not.toBe(sum);
    expect(after.misses).toBe(1);
    // Just written: racy, so not remembered; it is hashed again next time too.
    await after.save();
    const again = await open();
    expect(await checksumSources(items(), none, again)).toBe(changed);
    expect(again.misses).toBe(1);
  });

  test("a file's layer xattrs are kept beside its sum, and forgotten with it when the file changes", async () => {
    const file = path.join(ctx, 'd1', 'f1');
    const cache = await open();
    await checksumSources(items(), none, cache);
    const st = statSync(file);
    expect(cache.xattrs(file, st)).toBeUndefined(); // not read yet: unknown, not "none"
    const cap = Buffer.from('0100000200200000', 'hex');
    cache.recordXattrs(file, st, new Map([['security.capability', cap]]));
    cache.recordXattrs(path.join(ctx, 'd2', 'f2'), statSync(path.join(ctx, 'd2', 'f2')), new Map());
    await cache.save();
    const again = await open();
    expect(again.xattrs(file, st)).toEqual(new Map([['security.capability', cap]]));
    expect(again.xattrs(path.join(ctx, 'd2', 'f2'), statSync(path.join(ctx, 'd2', 'f2')))).toEqual(new Map());
    // Setting or removing an xattr changes the ctime: the kept ones are then unknown again.
    writeFileSync(file, readFileSync(file));
    expect(again.xattrs(file, statSync(file))).toBeUndefined();
    // A file without a valid row keeps nothing.
    again.recordXattrs(file, statSync(file), new Map());
    expect(again.xattrs(file, statSync(file))).toBeUndefined();
  });

  test('files outside the context are never remembered', async () => {
    const other = writeTree(path.join(work, 'other'), { x: 'x\n' });
    const cache = await open();
    await checksumSources([{ host: other, rel: '', name: '', isDir: true }], none, cache);
    await cache.save();
    const again = await open();
    await checksumSources([{ host: other, rel: '', name: '', isDir: true }], none, again);
    expect(again.hits).toBe(0);
  });
});

describe('the content sum of another stage\'s files (COPY --from, `tree`)', () => {
  const sumOf = async (files: Record<string, string>, change: (dir: string) => void = () => undefined, tree = true): Promise<string> => {
    const dir = mkdtempSync(path.join(work, 'tree-'));
    writeTree(dir, files);
    change(dir);
    return checksumSources([{ host: dir, rel: '', name: '', isDir: true }], none, undefined, { tree });
  };
  const two = { a: 'same\n', b: 'same\n' };

  test('times do not count; content, modes, owners, hard links and capabilities do', async () => {
    const base = await sumOf(two);
    expect(await sumOf(two, (d) => utimesSync(path.join(d, 'a'), 1000, 1000))).toBe(base);
    expect(await sumOf({ a: 'same\n', b: 'other\n' })).not.toBe(base);
    expect(await sumOf(two, (d) => chmodSync(path.join(d, 'a'), 0o600))).not.toBe(base);
    if (process.getuid?.() === 0) expect(await sumOf(two, (d) => chownSync(path.join(d, 'a'), 7, 7))).not.toBe(base);
    const linked = (d: string) => {
      rmSync(path.join(d, 'b'));
      linkSync(path.join(d, 'a'), path.join(d, 'b'));
    };
    expect(await sumOf(two, linked)).not.toBe(base);
    // Without `tree` (a context's files), a hard link is two files of the same content.
    expect(await sumOf(two, linked, false)).toBe(await sumOf(two, () => undefined, false));
    if (process.getuid?.() === 0) {
      // security.capability, as setcap writes cap_net_bind_service=ep (VFS_CAP_REVISION_2).
      const cap = Buffer.from('0100000200040000000000000000000000000000', 'hex');
      const capped = await sumOf(two, (d) => execFileSync('setfattr', ['-n', 'security.capability', '-v', `0x${cap.toString('hex')}`, path.join(d, 'a')]));
      expect(capped).not.toBe(base);
    }
  });
});
