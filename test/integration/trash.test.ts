import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { Store } from '../../src/store/store.js';
import { pruneStore } from '../../src/store/prune.js';
import { collectTrash, discard, isTrashEntry, trashDir } from '../../src/store/trash.js';
import { setTreeReleaser } from '../../src/store/trash.js';
import { resetSettings } from '../../src/support/settings.js';
// The module that makes build trees gives the store the way to release them (store/trash.ts).
import { releaseTree } from '../../src/builder/workspace.js';

let work: string;
let store: Store;
/** The process's settings with GANTRY_TRASH_BUDGET set to `value` (unset when undefined). */
function trashBudgetIs(value: string | undefined): void {
  const env = { ...process.env };
  if (value === undefined) delete env.GANTRY_TRASH_BUDGET;
  else env.GANTRY_TRASH_BUDGET = value;
  resetSettings(env);
}

beforeEach(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'gantry-trash-'));
  store = await Store.open(path.join(work, 'store'));
});
afterEach(() => {
  resetSettings();
  rmSync(work, { recursive: true, force: true });
});

/** A trash entry made by hand: `time` orders them, `bytes` is what it claims to hold. */
function entry(time: number, bytes: number): string {
  const name = `${time}-${bytes}-${time.toString(16).padStart(16, '0')}`;
  mkdirSync(path.join(trashDir(store), name, 'tree'), { recursive: true });
  writeFileSync(path.join(trashDir(store), name, 'tree', 'f'), 'x');
  return name;
}
const left = () => readdirSync(trashDir(store)).sort();

describe('trash', () => {
  test.runIf(process.getuid?.() === 0)('removing a tree never crosses into a mount left in it (what a released tree should not have, but must survive)', async () => {
    const { removeTree } = await import('../../src/store/trash.js');
    const tree = path.join(work, 'tree');
    const mnt = path.join(tree, 'sub', 'mnt');
    mkdirSync(mnt, { recursive: true });
    writeFileSync(path.join(tree, 'sub', 'f'), 'x');
    execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', mnt]);
    try {
      writeFileSync(path.join(mnt, 'kept'), 'what the mount shows');
      await removeTree(tree);
      expect(existsSync(path.join(tree, 'sub', 'f'))).toBe(false);
      expect(existsSync(path.join(mnt, 'kept'))).toBe(true);
    } finally {
      execFileSync('umount', [mnt]);
    }
    await removeTree(tree);
    expect(existsSync(tree)).toBe(false);
  });

  test('a store not given the way to release build trees removes none of them: trash entries and a dead build\'s rootfs stay', async () => {
    trashBudgetIs('0');
    const a = entry(1, 300);
    const dead = Number(execFileSync('sh', ['-c', 'echo $$']).toString().trim()); // a pid that has ended
    const temp = path.join(store.tmpDir, path.basename(store.tempPath('rootfs')).replace(/^rootfs-\d+-/, `rootfs-${dead}-`));
    mkdirSync(path.join(temp, 'merged'), { recursive: true });
    setTreeReleaser(undefined);
    try {
      expect(await collectTrash(store)).toEqual({ entries: 0, bytes: 0 });
      expect(left()).toEqual([a]);
      expect(await store.cleanTemp()).toEqual([]);
      expect(existsSync(temp)).toBe(true);
    } finally {
      setTreeReleaser(releaseTree);
    }
    expect(await collectTrash(store)).toEqual({ entries: 1, bytes: 300 });
    expect(await store.cleanTemp()).toEqual([path.basename(temp)]);
    expect(existsSync(temp)).toBe(false);
  });

  test('discard moves a tree into the trash, under a name that dates it and carries its size, out of reach of others', async () => {
    const dir = store.tempPath('rootfs');
    mkdirSync(path.join(dir, 'upper', 'usr'), { recursive: true });
    writeFileSync(path.join(dir, 'upper', 'usr', 'x'), 'hello');
    const before = Date.now();
    await discard(store, dir, 1234.4);
    expect(existsSync(dir)).toBe(false);
    const [name] = left();
    expect(isTrashEntry(name as string)).toBe(true);
    const [time, bytes] = (name as string).split('-').map(Number);
    expect(time).toBeGreaterThanOrEqual(before);
    expect(bytes).toBe(1234);
    expect(existsSync(path.join(trashDir(store), name as string, 'upper', 'usr', 'x'))).toBe(true);
    expect(statSync(trashDir(store)).mode & 0o777).toBe(0o700);
    // A tree that is already gone is no error.
    await discard(store, dir, 0);
  });

  test('under its budget the trash is left alone; over it, the oldest entries go until it holds half the budget', async () => {
    trashBudgetIs('1000');
    const a = entry(1, 300);
    const b = entry(2, 300);
    const c = entry(3, 300);
    expect(await collectTrash(store)).toEqual({ entries: 0, bytes: 0 });
    expect(left()).toEqual([a, b, c]);
    const d = entry(4, 300); // 1,200 > 1,000: down to 500 or less
    expect(await collectTrash(store)).toEqual({ entries: 3, bytes: 900 });
    expect(left()).toEqual([d]);
  });

  test('a budget of 0 empties it at once, as does prune; a name gantry did not give is removed', async () => {
    trashBudgetIs('1G');
    entry(5, 10);
    mkdirSync(path.join(trashDir(store), 'stray'));
    expect(await collectTrash(store)).toEqual({ entries: 1, bytes: 0 });
    expect(left()).toHaveLength(1);
    trashBudgetIs('0');
    expect(await collectTrash(store)).toEqual({ entries: 1, bytes: 10 });
    expect(left()).toEqual([]);
    trashBudgetIs(undefined);
    entry(6, 20);
    entry(7, 30);
    expect((await pruneStore(store.root)).trash).toEqual({ entries: 2, bytes: 50 });
    expect(left()).toEqual([]);
  });

  test('the default budget is a share of the file system, so a small trash stays', async () => {
    trashBudgetIs(undefined);
    entry(8, 1000);
    expect(await collectTrash(store)).toEqual({ entries: 0, bytes: 0 });
    expect(left()).toHaveLength(1);
  });

  test('GANTRY_TRASH_BUDGET takes bytes or binary units, and names itself when it is not a size', async () => {
    entry(9, 600 * 2 ** 20);
    trashBudgetIs('1G');
    expect((await collectTrash(store)).entries).toBe(0);
    trashBudgetIs('512M');
    expect((await collectTrash(store)).entries).toBe(1);
    trashBudgetIs('lots');
    entry(10, 1);
    await expect(collectTrash(store)).rejects.toThrow('GANTRY_TRASH_BUDGET=lots: expected a size in bytes');
    expect(left()).toHaveLength(1);
  });

  test('past 100 entries the oldest go down to 50, whatever their bytes (a build on overlays sets aside empty directories)', async () => {
    trashBudgetIs('1G');
    const names = Array.from({ length: 120 }, (_, i) => entry(1000 + i, 0));
    await collectTrash(store);
    expect(left()).toEqual(names.slice(70));
    // Under the count and the budget: nothing goes.
    await collectTrash(store);
    expect(left()).toHaveLength(50);
  });
});
