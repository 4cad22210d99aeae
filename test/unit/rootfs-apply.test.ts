import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import tar from 'tar-stream';
import { afterEach, describe, expect, test } from 'vitest';
import { applyLayer } from '../../src/rootfs/apply.js';
import { resolveInRoot } from '../../src/rootfs/resolve.js';

type E = { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo'; body?: string; linkname?: string; mode?: number; uid?: number; gid?: number };

function layer(entries: E[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    const header = { name: e.name, type: e.type ?? 'file', mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) } as const;
    if (header.type === 'file') pack.entry(header, e.body ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return pack as unknown as Readable;
}

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A rootfs and, beside it, a victim directory that must never change. */
function setup() {
  const base = mkdtempSync(path.join(tmpdir(), 'gantry-apply-'));
  dirs.push(base);
  const root = path.join(base, 'rootfs');
  const victim = path.join(base, 'victim');
  mkdirSync(root);
  mkdirSync(victim);
  writeFileSync(path.join(victim, 'secret'), 'do not touch');
  const before = () => JSON.stringify(readdirSync(victim).map((n) => [n, readFileSync(path.join(victim, n), 'utf8'), statSync(path.join(victim, n)).mode]));
  const snapshot = before();
  return { root, victim, base, victimUnchanged: () => expect(before()).toBe(snapshot) };
}

const read = (root: string, p: string) => readFileSync(path.join(root, p), 'utf8');

describe('applyLayer', () => {
  test('files, directories, symlinks (verbatim), hard links, modes including setuid', async () => {
    const { root } = setup();
    await applyLayer(root, layer([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o4755 },
      { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
      { name: 'etc/abs', type: 'symlink', linkname: '/etc/passwd' },
      { name: './etc/passwd', body: 'root:x:0:0::/:/bin/sh\n' },
    ]));
    expect(read(root, 'bin/tool')).toBe('#!/bin/sh\n');
    expect(statSync(path.join(root, 'bin/tool')).mode & 0o7777).toBe(0o4755);
    expect(statSync(path.join(root, 'bin/alias')).ino).toBe(statSync(path.join(root, 'bin/tool')).ino);
    expect(readlinkSync(path.join(root, 'etc/abs'))).toBe('/etc/passwd');
    expect(read(root, 'etc/passwd')).toContain('root:x');
  });

  test('a second layer: whiteouts delete, the opaque marker hides lower contents only, in any order', async () => {
    const { root } = setup();
    await applyLayer(root, layer([
      { name: 'a/keep', body: '1' },
      { name: 'a/gone', body: '1' },
      { name: 'o/old', body: '1' },
      { name: 'l', type: 'symlink', linkname: 'a' },
    ]));
    await applyLayer(root, layer([
      { name: 'a/.wh.gone' },
      { name: 'o/new', body: '2' },
      { name: 'o/.wh..wh..opq' },
      { name: '.wh.l' },
    ]));
    expect(readdirSync(path.join(root, 'a'))).toEqual(['keep']);
    expect(readdirSync(path.join(root, 'o'))).toEqual(['new']);
    expect(existsSync(path.join(root, 'l'))).toBe(false);
    expect(existsSync(path.join(root, 'a'))).toBe(true); // .wh.l removed the link, not its target
  });

  test.each(['../victim/x', '/../victim/x', './../../x', 'a/../../victim/x'])('member %j is refused; nothing outside is touched', async (name) => {
    const { root, victimUnchanged } = setup();
    await expect(applyLayer(root, layer([{ name, body: 'evil' }]))).rejects.toThrow('climbs out of the root');
    victimUnchanged();
  });

  test('writes through symlinks stay inside: l -> ../victim, two hops, an absolute link', async () => {
    const { root, base, victimUnchanged } = setup();
    await applyLayer(root, layer([
      { name: 'l', type: 'symlink', linkname: '../victim' },
      { name: 'l/f', body: 'one' },
      { name: 'a/up', type: 'symlink', linkname: '..' },
      { name: 'a/up/esc', type: 'symlink', linkname: '../victim' },
      { name: 'a/up/esc/g', body: 'two' },
      { name: 'escape', type: 'symlink', linkname: '..' },
      { name: 'abs', type: 'symlink', linkname: base },
      { name: 'escape/abs/victim/h', body: 'three' },
    ]));
    victimUnchanged();
    // Each landed inside the root, where the link resolves from the root's point of view.
    expect(read(root, 'victim/f')).toBe('one');
    expect(read(root, 'victim/g')).toBe('two');
    expect(read(root, path.join(base, 'victim', 'h').slice(1))).toBe('three');
  });

  test('hard links resolve inside the root; to a missing target or a directory they fail', async () => {
    const { root, victimUnchanged } = setup();
    await expect(applyLayer(root, layer([{ name: 'p', type: 'link', linkname: '/etc/passwd' }]))).rejects.toThrow('hard link "p" to missing');
    await expect(applyLayer(root, layer([{ name: 'd/', type: 'directory' }, { name: 'q', type: 'link', linkname: 'd' }]))).rejects.toThrow('to a directory');
    await expect(applyLayer(root, layer([{ name: 'r', type: 'link', linkname: '../../victim/secret' }]))).rejects.toThrow('climbs out');
    victimUnchanged();
  });

  test.each(['.wh.', 'etc/.wh..', 'x/.wh...'])('invalid whiteout %j is refused', async (name) => {
    const { root } = setup();
    await expect(applyLayer(root, layer([{ name }]))).rejects.toThrow('invalid whiteout');
  });

  test('a whiteout under a link to the outside never touches the host', async () => {
    const { root, victimUnchanged } = setup();
    await applyLayer(root, layer([{ name: 'link', type: 'symlink', linkname: '../victim' }]));
    await applyLayer(root, layer([{ name: 'link/.wh.secret' }]));
    victimUnchanged();
  });

  test('duplicate entries: the last in-root version wins', async () => {
    const { root, victimUnchanged } = setup();
    await applyLayer(root, layer([
      { name: 'foo/tmp/x', body: 'first' },
      { name: 'foo', type: 'symlink', linkname: '/' },
      { name: 'foo/tmp/x', body: 'second' },
    ]));
    expect(lstatSync(path.join(root, 'foo')).isSymbolicLink()).toBe(true);
    expect(read(root, 'tmp/x')).toBe('second');
    victimUnchanged();
  });

  test('a fifo', async () => {
    const { root } = setup();
    await applyLayer(root, layer([{ name: 'run/pipe', type: 'fifo', mode: 0o600 }]));
    expect(lstatSync(path.join(root, 'run/pipe')).isFIFO()).toBe(true);
  });
});

describe('resolveInRoot', () => {
  test('.. stops at the root; absolute links start at the root', async () => {
    const { root } = setup();
    expect((await resolveInRoot(root, '/../../etc/passwd')).host).toBe(path.join(root, 'etc/passwd'));
  });
});
