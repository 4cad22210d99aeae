import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tar from 'tar-stream';
import { afterEach, describe, expect, test } from 'vitest';
import { diff, layerTar, snapshot, type Entry, type Snapshot } from '../../src/snapshot/diff.js';
import { applyLayer } from '../../src/rootfs/apply.js';
import { loadIndexFile, loadSnapshot, saveSnapshot } from '../../src/snapshot/persist.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'gantry-snap-'));
  dirs.push(d);
  return d;
};

async function entries(stream: NodeJS.ReadableStream): Promise<{ name: string; type: string; linkname?: string | null; body: string; mode?: number }[]> {
  const extract = tar.extract();
  const out: { name: string; type: string; linkname?: string | null; body: string; mode?: number }[] = [];
  const done = (async () => {
    for await (const e of extract) {
      let body = '';
      for await (const c of e) body += (c as Buffer).toString();
      out.push({ name: e.header.name, type: e.header.type ?? 'file', linkname: e.header.linkname, body, mode: e.header.mode });
    }
  })();
  stream.pipe(extract);
  await done;
  return out;
}

describe('snapshot diff', () => {
  test('adds, changes, chmod-only changes, deletions, replaced directories, hard links', async () => {
    const root = tmp();
    mkdirSync(path.join(root, 'etc'));
    writeFileSync(path.join(root, 'etc/keep'), 'same');
    writeFileSync(path.join(root, 'etc/edit'), 'old');
    writeFileSync(path.join(root, 'etc/mode'), 'x');
    writeFileSync(path.join(root, 'etc/del'), 'x');
    mkdirSync(path.join(root, 'gone/sub'), { recursive: true });
    writeFileSync(path.join(root, 'gone/sub/f'), 'x');
    mkdirSync(path.join(root, 'redo'));
    writeFileSync(path.join(root, 'redo/old'), 'x');
    mkdirSync(path.join(root, 'again'));
    writeFileSync(path.join(root, 'again/old'), 'x');
    const before = await snapshot(root);
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(path.join(root, 'etc/edit'), 'new!');
    chmodSync(path.join(root, 'etc/mode'), 0o600);
    rmSync(path.join(root, 'etc/del'));
    rmSync(path.join(root, 'gone'), { recursive: true });
    renameSync(path.join(root, 'redo'), path.join(root, 'redo.tmp'));
    mkdirSync(path.join(root, 'redo'));
    rmSync(path.join(root, 'redo.tmp'), { recursive: true });
    writeFileSync(path.join(root, 'redo/new'), 'y');
    // rm -rf then mkdir: ext4 hands the same inode number back; the birth time tells.
    rmSync(path.join(root, 'again'), { recursive: true });
    mkdirSync(path.join(root, 'again'));
    writeFileSync(path.join(root, 'a'), 'hard');
    linkSync(path.join(root, 'a'), path.join(root, 'b'));
    symlinkSync('/etc/keep', path.join(root, 'ln'));
    const after = await snapshot(root);
    const changes = diff(before, after);
    expect(changes.map((c) => `${c.kind}:${c.path}`)).toEqual([
      '.wh.gone',
      'add:a',
      'add:again',
      'opaque:again/.wh..wh..opq',
      'add:b',
      'whiteout:etc/.wh.del',
      'add:etc/edit',
      'add:etc/mode',
      'add:ln',
      'add:redo',
      'opaque:redo/.wh..wh..opq',
      'add:redo/new',
    ].map((s) => (s.startsWith('.wh.') ? `whiteout:${s}` : s)));
    const tarEntries = await entries(layerTar(root, after, changes, { sourceDateEpoch: 0 }));
    const byName = Object.fromEntries(tarEntries.map((e) => [e.name, e]));
    expect(byName['b']).toMatchObject({ type: 'link', linkname: 'a' });
    expect(byName['ln']).toMatchObject({ type: 'symlink', linkname: '/etc/keep' });
    expect(byName['etc/mode']?.mode).toBe(0o600);
    expect(byName['etc/edit']?.body).toBe('new!');

    // Applying the diff to a copy of the old tree gives the new tree.
    const copy = tmp();
    mkdirSync(path.join(copy, 'etc'));
    writeFileSync(path.join(copy, 'etc/keep'), 'same');
    writeFileSync(path.join(copy, 'etc/edit'), 'old');
    writeFileSync(path.join(copy, 'etc/mode'), 'x');
    writeFileSync(path.join(copy, 'etc/del'), 'x');
    mkdirSync(path.join(copy, 'gone/sub'), { recursive: true });
    mkdirSync(path.join(copy, 'redo'));
    writeFileSync(path.join(copy, 'redo/old'), 'x');
    await applyLayer(copy, layerTar(root, after, changes) as never);
    const left = [...(await snapshot(copy)).entries()].map(([p, e]) => `${p}:${e.type}:${e.mode.toString(8)}:${e.size}`).sort();
    const right = [...after.entries()].map(([p, e]) => `${p}:${e.type}:${e.mode.toString(8)}:${e.size}`).sort();
    expect(left).toEqual(right);
  });

  test('a directory made again with its old inode number (ext4 reuses them) is still replaced: opaque', () => {
    const e = (over: Partial<Entry>): Entry => ({ type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 1, ctimeMs: 1, ino: 7, birthtimeMs: 100, nlink: 2, rdev: 0, ...over });
    const before: Snapshot = new Map([['d', e({})], ['d/old', e({ type: 'file', ino: 8, nlink: 1 })]]);
    const after: Snapshot = new Map([['d', e({ birthtimeMs: 200, mtimeMs: 2, ctimeMs: 2 })]]);
    expect(diff(before, after).map((c) => `${c.kind}:${c.path}`)).toEqual(['add:d', 'opaque:d/.wh..wh..opq']);
  });

  test('a directory replaced by a file: the file alone, no whiteout under it (a tar cannot hold one below a file)', () => {
    const e = (over: Partial<Entry>): Entry => ({ type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtimeMs: 1, ctimeMs: 1, ino: 7, birthtimeMs: 100, nlink: 2, rdev: 0, ...over });
    const before: Snapshot = new Map([['n', e({ ino: 5 })], ['n/a', e({})], ['n/a/b', e({ ino: 9 })], ['n/a/b/f', e({ type: 'file', ino: 8, nlink: 1 })]]);
    const after: Snapshot = new Map([['n', e({ ino: 5 })], ['n/a', e({ type: 'file', ino: 10, nlink: 1, size: 5 })]]);
    expect(diff(before, after).map((c) => `${c.kind}:${c.path}`)).toEqual(['add:n/a']);
    expect(diff(before, after, { overlay: true, touched: new Set(['n/a', 'n/a/b', 'n/a/b/f']) }).map((c) => `${c.kind}:${c.path}`)).toEqual(['add:n/a']);
  });

  test('nothing changed → no entries', async () => {
    const root = tmp();
    writeFileSync(path.join(root, 'f'), 'x');
    const a = await snapshot(root);
    const b = await snapshot(root);
    expect(diff(a, b)).toEqual([]);
  });
});

describe('owner ids above 2^21 - 1', () => {
  test('a layer records them as PAX uid/gid records, and applying it gives them back exactly', async () => {
    if (process.getuid?.() !== 0) return; // chown to such ids needs root
    const root = path.join(tmp(), 'rootfs');
    mkdirSync(root);
    const before = await snapshot(root);
    writeFileSync(path.join(root, 'big'), 'x');
    const { chownSync, lstatSync } = await import('node:fs');
    chownSync(path.join(root, 'big'), 3_000_000, 2_097_152);
    const after = await snapshot(root);
    const { Readable } = await import('node:stream');
    const chunks: Buffer[] = [];
    for await (const c of layerTar(root, after, diff(before, after))) chunks.push(c as Buffer);
    // The PAX records are in the tar itself (tar-stream alone wrote 7777777 in the header).
    expect(Buffer.concat(chunks).toString('latin1')).toMatch(/\d+ uid=3000000\n\d+ gid=2097152\n/);
    const other = path.join(tmp(), 'rootfs');
    mkdirSync(other);
    await applyLayer(other, Readable.from([Buffer.concat(chunks)]));
    const st = lstatSync(path.join(other, 'big'));
    expect([st.uid, st.gid]).toEqual([3_000_000, 2_097_152]);
  });
});

describe('kept snapshots (snapshot/persist.ts)', () => {
  test('a kept snapshot is the one taken; one of a tree removed and made again at the same path is not used', async () => {
    const base = tmp();
    const tree = path.join(base, 'tree');
    mkdirSync(path.join(tree, 'etc'), { recursive: true });
    writeFileSync(path.join(tree, 'etc/a'), 'a');
    symlinkSync('a', path.join(tree, 'etc/l'));
    const snap = await snapshot(tree);
    const file = path.join(base, 'cache', 'snapshot-x.bin');
    await saveSnapshot(file, path.join(base, 'tmp-x'), tree, snap);
    expect(await loadSnapshot(file, tree)).toEqual(snap);
    // The same path, extracted again: other inodes, other times inside; the file must not serve.
    rmSync(tree, { recursive: true });
    await new Promise((r) => setTimeout(r, 20));
    mkdirSync(path.join(tree, 'etc'), { recursive: true });
    writeFileSync(path.join(tree, 'etc/a'), 'a');
    expect(await loadSnapshot(file, tree)).toBeUndefined();
    // Garbage, or no file: nothing, and no error.
    writeFileSync(file, 'gantry-snapshot\n\u0002');
    expect(await loadSnapshot(file, tree)).toBeUndefined();
    expect(await loadSnapshot(path.join(base, 'none.bin'), tree)).toBeUndefined();
  });

  test('names and link targets beyond ASCII, files, directories, links and fifos come back as taken; a cut file is not used', async () => {
    const base = tmp();
    const tree = path.join(base, 'tree');
    mkdirSync(path.join(tree, 'dir ü', 'ß'), { recursive: true });
    writeFileSync(path.join(tree, 'dir ü', 'ß', '日本'), 'x'.repeat(70_000));
    symlinkSync('../ünïcode/目标', path.join(tree, 'dir ü', 'link'));
    execFileSync('mkfifo', [path.join(tree, 'pipe')]);
    const taken = await snapshot(tree);
    expect(new Set([...taken.values()].map((e) => e.type))).toEqual(new Set(['directory', 'file', 'symlink', 'fifo']));
    const file = path.join(base, 'snapshot-y.bin');
    await saveSnapshot(file, path.join(base, 'tmp-y'), tree, taken);
    expect(await loadSnapshot(file, tree)).toEqual(taken);
    const bytes = readFileSync(file);
    for (const cut of [bytes.length - 1, bytes.length - 40, 60]) {
      writeFileSync(file, bytes.subarray(0, cut));
      expect(await loadSnapshot(file, tree), `cut at ${cut}`).toBeUndefined();
    }
  });

  test('a change to another index comes back as written (removed paths, entries set); an empty one too; loadSnapshot takes only whole ones', async () => {
    const base = tmp();
    const tree = path.join(base, 'tree');
    mkdirSync(path.join(tree, 'd ü'), { recursive: true });
    writeFileSync(path.join(tree, 'd ü', 'f'), 'f');
    const entries = await snapshot(tree);
    const file = path.join(base, 'delta.bin');
    await saveSnapshot(file, path.join(base, 'tmp-d'), tree, entries, ['gone', 'gone/ünder', 'x y']);
    expect(await loadIndexFile(file, tree)).toEqual({ entries, removed: ['gone', 'gone/ünder', 'x y'] });
    expect(await loadSnapshot(file, tree)).toBeUndefined(); // not a whole index
    await saveSnapshot(file, path.join(base, 'tmp-e'), tree, new Map(), []);
    expect(await loadIndexFile(file, tree)).toEqual({ entries: new Map(), removed: [] });
    await saveSnapshot(file, path.join(base, 'tmp-f'), tree, new Map());
    expect(await loadSnapshot(file, tree)).toEqual(new Map());
  });
});
