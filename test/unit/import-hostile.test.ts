import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, describe, expect, test } from 'vitest';
import { importImage } from '../../src/builder/import.js';
import { Store } from '../../src/store/store.js';

// A rootfs tarball from a stranger: names that climb out are refused, nothing is stored,
// and nothing is written outside the store.

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tarOf(entries: { name: string; type?: 'file' | 'link' | 'symlink' | 'directory'; linkname?: string; body?: string }[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: 0o644, ...(e.linkname ? { linkname: e.linkname } : {}) } as const;
    if (header.type === 'file') pack.entry(header, e.body ?? 'x');
    else pack.entry(header);
  }
  pack.finalize();
  return pack as unknown as Readable;
}

function setup() {
  const dir = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-'));
  dirs.push(dir);
  const victim = path.join(dir, 'victim');
  mkdirSync(victim);
  return { root: path.join(dir, 'store'), victim, dir };
}

describe('import of a hostile rootfs tarball', () => {
  test.each([
    ['../victim/x'],
    ['a/../../victim/x'],
    ['./../../x'],
    ['/../victim/x'],
  ])('member %j is refused and nothing is stored', async (name) => {
    const { root, victim, dir } = setup();
    await expect(importImage({ root, source: tarOf([{ name: 'ok' }, { name }]), reference: 'evil:1' })).rejects.toThrow(
      `archive member "${name}" escapes the root`,
    );
    const store = await Store.open(root);
    expect(await store.entries()).toEqual([]);
    expect(readdirSync(path.join(root, 'blobs', 'sha256'))).toEqual([]);
    expect(readdirSync(path.join(root, 'tmp'))).toEqual([]);
    expect(readdirSync(victim)).toEqual([]);
    expect(existsSync(path.join(dir, 'x'))).toBe(false);
  });

  test('a hard link that climbs out is refused', async () => {
    const { root } = setup();
    await expect(importImage({ root, source: tarOf([{ name: 'l', type: 'link', linkname: '../../etc/passwd' }]) })).rejects.toThrow(
      'archive member "../../etc/passwd" escapes the root',
    );
  });

  test('absolute names are made relative; symlink targets are kept verbatim', async () => {
    const { root } = setup();
    const r = await importImage({
      root,
      source: tarOf([{ name: '/etc/hostname', body: 'h' }, { name: 'link', type: 'symlink', linkname: '/etc/passwd' }]),
      reference: 'fine:1',
    });
    expect(r.name).toBe('docker.io/library/fine:1');
  });
});
