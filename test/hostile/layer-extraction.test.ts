import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { execa } from 'execa';
import { afterAll, describe, expect, test } from 'vitest';
import { applyLayer } from '../../src/rootfs/apply.js';
import { resolveInRoot } from '../../src/rootfs/resolve.js';
import tar from '../../src/tar/tar.js';
import { projectRoot } from '../helpers/conformance.js';
import { expectStoreConsistent, makeVictim, type Victim } from '../helpers/hostile.js';

// Hostile layers and archives (issue 6, points 1-7, with the positive controls of 12): each
// case goes through every way gantry extracts a tar, and each asserts the victim beside the
// rootfs or store is untouched and, for the command-line ways, the store invariant.
//
//   apply   applyLayer on a rootfs (the API every other way ends in)
//   load    `gantry load` of a docker-archive carrying the layers, then a build FROM it
//   import  `gantry import` of the tar as a rootfs, then a build FROM it (one layer only)
//   add     `ADD evil.tar /` in a build FROM scratch (one layer; whiteouts are layer syntax,
//           not ADD's, so those cases skip it)
//
// The command-line ways end in `-o type=local`, and the checks read that directory with
// paths resolved inside it, never following a link out of it.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-layers-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

interface E {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device';
  body?: string;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  devmajor?: number;
  devminor?: number;
}

function tarBuffer(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date(1_700_000_000_000),
      ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
    };
    if (type === 'file') pack.entry(header, e.body ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  return collect(pack as unknown as Readable);
}

async function collect(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A docker-archive (what `docker save` writes) of an image made of these layer tars. */
async function dockerArchive(layers: Buffer[], tag: string): Promise<Buffer> {
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: layers.map((l) => `sha256:${sha(l)}`) },
  }));
  const pack = tar.pack();
  const names = layers.map((l) => `${sha(l)}/layer.tar`);
  pack.entry({ name: `${sha(config)}.json` }, config);
  layers.forEach((l, i) => pack.entry({ name: names[i] as string }, l));
  pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: [tag], Layers: names }]));
  pack.finalize();
  return collect(pack as unknown as Readable);
}

type Way = 'apply' | 'load' | 'import' | 'add';

interface Sandbox {
  base: string;
  victim: Victim;
  store: string;
}

function sandbox(label: string): Sandbox {
  const base = mkdtempSync(path.join(work, `${label.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-`));
  return { base, victim: makeVictim(path.join(base, 'victim')), store: path.join(base, 'store') };
}

const gantry = (s: Sandbox, args: string[]) => execa(bin, ['--root', s.store, ...args], { reject: false, cwd: s.base });

/**
 * Extract `layers` one way; resolves to the resulting root directory, or rejects with the
 * error gantry gave.
 */
async function extract(way: Way, s: Sandbox, layers: E[][]): Promise<string> {
  const tars = await Promise.all(layers.map(tarBuffer));
  const out = path.join(s.base, 'out');
  if (way === 'apply') {
    mkdirSync(out);
    for (const t of tars) await applyLayer(out, Readable.from([t]));
    return out;
  }
  const ctx = path.join(s.base, 'ctx');
  mkdirSync(ctx);
  writeFileSync(path.join(ctx, 'ok'), 'ok\n');
  let from = 'scratch';
  if (way === 'load') {
    writeFileSync(path.join(s.base, 'evil.tar'), await dockerArchive(tars, 'evil:1'));
    const r = await gantry(s, ['load', '-i', path.join(s.base, 'evil.tar')]);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    from = 'evil:1';
  } else if (way === 'import') {
    writeFileSync(path.join(s.base, 'evil.tar'), tars[0] as Buffer);
    const r = await gantry(s, ['import', path.join(s.base, 'evil.tar'), 'evil-import:1']);
    if (r.exitCode !== 0) throw new Error(r.stderr);
    from = 'evil-import:1';
  } else {
    writeFileSync(path.join(ctx, 'evil.tar'), tars[0] as Buffer);
  }
  writeFileSync(path.join(ctx, 'Dockerfile'), way === 'add' ? 'FROM scratch\nADD evil.tar /\n' : `FROM ${from}\nCOPY ok /ok\n`);
  const r = await gantry(s, ['build', '--progress', 'plain', '-o', `type=local,dest=${out}`, ctx]);
  if (r.exitCode !== 0) throw new Error(r.stderr);
  return out;
}

/** Host path of a container path of the extracted root, resolved inside it. */
const inRoot = async (root: string, p: string): Promise<string> => (await resolveInRoot(root, p, false)).host;
const readIn = async (root: string, p: string): Promise<string> => readFileSync(await inRoot(root, p), 'utf8');

interface Case {
  name: string;
  layers: (s: Sandbox) => E[][];
  /** The error expected, or the checks of the extracted root. */
  expect: RegExp | ((root: string, s: Sandbox) => Promise<void>);
  ways?: Way[];
  rootOnly?: boolean;
}

const CLIMBS = /climbs out|escapes the root/;

const cases: Case[] = [
  // 1. Names that climb out, and absolute names.
  ...['../victim/x', '/../victim/x', './../../x', 'a/../../victim/x', '..', 'a/../..'].map((n): Case => ({
    name: `member ${JSON.stringify(n)}`,
    layers: () => [[{ name: 'fine', body: 'f' }, { name: n, body: 'evil' }]],
    expect: CLIMBS,
  })),
  {
    name: 'absolute member names land inside the root',
    layers: () => [[{ name: '/abs/x', body: 'inside' }]],
    expect: async (root) => expect(await readIn(root, 'abs/x')).toBe('inside'),
  },
  // 2. Writing through symlinks.
  {
    name: 'l -> ../victim, then l/f',
    layers: () => [[{ name: 'l', type: 'symlink', linkname: '../victim' }, { name: 'l/f', body: 'one' }]],
    expect: async (root) => {
      expect(readlinkSync(path.join(root, 'l'))).toBe('../victim'); // stored verbatim
      expect(await readIn(root, 'victim/f')).toBe('one');
    },
  },
  {
    name: 'l -> the victim by its absolute host path, then l/f',
    layers: (s) => [[{ name: 'l', type: 'symlink', linkname: s.victim.dir }, { name: 'l/f', body: 'one' }]],
    expect: async (root, s) => expect(await readIn(root, `${s.victim.dir}/f`)).toBe('one'),
  },
  {
    name: 'two hops: a/up -> .., a/up/esc -> ../victim, then a file under it',
    layers: () => [[
      { name: 'a/up', type: 'symlink', linkname: '..' },
      { name: 'a/up/esc', type: 'symlink', linkname: '../victim' },
      { name: 'a/up/esc/g', body: 'two' },
    ]],
    expect: async (root) => expect(await readIn(root, 'victim/g')).toBe('two'),
  },
  {
    name: 'escape -> .. plus abs -> /target, then escape/abs/file',
    layers: (s) => [[
      { name: 'escape', type: 'symlink', linkname: '..' },
      { name: 'abs', type: 'symlink', linkname: s.base },
      { name: 'escape/abs/victim/file', body: 'three' },
    ]],
    expect: async (root, s) => expect(await readIn(root, `${s.base}/victim/file`)).toBe('three'),
  },
  // 3. Hard links.
  {
    name: 'a hard link to /etc/passwd (absent from the root)',
    layers: () => [[{ name: 'p', type: 'link', linkname: '/etc/passwd' }]],
    expect: /missing|not found|no such|does not exist/i,
  },
  ...['../../x', '../victim/secret', '../out-sibling/secret'].map((t): Case => ({
    name: `a hard link to ${t}`,
    layers: () => [[{ name: 'fine', body: 'f' }, { name: 'h', type: 'link', linkname: t }]],
    expect: CLIMBS,
  })),
  {
    name: 'a hard link to a directory',
    layers: () => [[{ name: 'd/', type: 'directory' }, { name: 'h', type: 'link', linkname: 'd' }]],
    expect: /directory/,
  },
  {
    name: 'positive control: absolute hard link names inside the image',
    layers: () => [[{ name: 'bin/b', body: 'shared' }, { name: '/bin/a', type: 'link', linkname: '/bin/b' }]],
    expect: async (root) => {
      expect(lstatSync(await inRoot(root, 'bin/a')).ino).toBe(lstatSync(await inRoot(root, 'bin/b')).ino);
    },
  },
  // 4. chmod and chown through a symlink, or a hard link to a symlink.
  {
    name: 'a directory entry over a symlink to a host file',
    layers: (s) => [[{ name: 'l', type: 'symlink', linkname: `${s.victim.dir}/secret` }, { name: 'l/', type: 'directory', mode: 0o777, uid: 1234 }]],
    expect: async (root) => expect(lstatSync(path.join(root, 'l')).isDirectory()).toBe(true),
  },
  {
    name: 'a hard link to a symlink to a host file, then a setuid file by that name',
    layers: (s) => [[
      { name: 'l', type: 'symlink', linkname: `${s.victim.dir}/tool` },
      { name: 'hl', type: 'link', linkname: 'l' },
      { name: 'hl', body: 'replaced', mode: 0o4777, uid: 1234 },
    ]],
    expect: async (root) => {
      expect(readFileSync(path.join(root, 'hl'), 'utf8')).toBe('replaced');
      expect(readlinkSync(path.join(root, 'l'))).toMatch(/victim\/tool$/);
    },
  },
  // 5. Symlinks named . or /, duplicate entries.
  ...['.', './', '/'].map((n): Case => ({
    name: `a symlink entry named ${JSON.stringify(n)}`,
    layers: (s) => [[{ name: n, type: 'symlink', linkname: s.victim.dir }, { name: 'x', body: 'in root' }]],
    expect: async (root) => {
      expect(lstatSync(root).isDirectory()).toBe(true);
      expect(readFileSync(path.join(root, 'x'), 'utf8')).toBe('in root');
    },
  })),
  {
    name: 'duplicates: a file, a link to the host by the same name, the file again',
    layers: (s) => [[{ name: 'dup', body: 'first' }, { name: 'dup', type: 'symlink', linkname: `${s.victim.dir}/secret` }, { name: 'dup', body: 'second' }]],
    expect: async (root) => {
      expect(lstatSync(path.join(root, 'dup')).isFile()).toBe(true);
      expect(readFileSync(path.join(root, 'dup'), 'utf8')).toBe('second');
    },
  },
  {
    name: 'duplicates: foo/tmp/x, foo -> /, foo/tmp/x',
    layers: () => [[{ name: 'foo/tmp/x', body: 'first' }, { name: 'foo', type: 'symlink', linkname: '/' }, { name: 'foo/tmp/x', body: 'second' }]],
    expect: async (root) => {
      expect(readlinkSync(path.join(root, 'foo'))).toBe('/');
      expect(await readIn(root, 'tmp/x')).toBe('second');
    },
  },
  // 6. Whiteouts (layer syntax: not for ADD).
  ...['.wh.', '.wh..', '.wh...', 'etc/.wh..'].map((n): Case => ({
    name: `whiteout ${JSON.stringify(n)}`,
    layers: () => [[{ name: 'fine', body: 'f' }], [{ name: n }]],
    expect: /invalid whiteout/,
    ways: ['apply', 'load'],
  })),
  {
    name: '.wh.link deletes the link, not what it points to',
    layers: () => [[{ name: 'target/keep', body: 'k' }, { name: 'link', type: 'symlink', linkname: 'target' }], [{ name: '.wh.link' }]],
    expect: async (root) => {
      expect(readdirSync(root).sort()).toEqual(expect.arrayContaining(['target']));
      expect(readdirSync(root)).not.toContain('link');
      expect(readFileSync(path.join(root, 'target/keep'), 'utf8')).toBe('k');
    },
    ways: ['apply', 'load'],
  },
  {
    name: 'link/.wh.secret under a link to the host',
    layers: (s) => [[{ name: 'link', type: 'symlink', linkname: s.victim.dir }], [{ name: 'link/.wh.secret' }, { name: 'link2', type: 'symlink', linkname: '../victim' }], [{ name: 'link2/.wh.secret' }]],
    expect: async (root) => expect(lstatSync(path.join(root, 'link')).isSymbolicLink()).toBe(true),
    ways: ['apply', 'load'],
  },
  ...[true, false].map((markerFirst): Case => ({
    name: `an opaque marker ${markerFirst ? 'before' : 'after'} the directory's new entries hides only the lower layer`,
    layers: () => [
      [{ name: 'o/old', body: '1' }, { name: 'o/sub/old', body: '1' }],
      markerFirst ? [{ name: 'o/.wh..wh..opq' }, { name: 'o/new', body: '2' }, { name: 'o/sub/new', body: '2' }] : [{ name: 'o/new', body: '2' }, { name: 'o/sub/new', body: '2' }, { name: 'o/.wh..wh..opq' }],
    ],
    expect: async (root) => {
      expect(readdirSync(path.join(root, 'o')).sort()).toEqual(['new', 'sub']);
      expect(readdirSync(path.join(root, 'o/sub'))).toEqual(['new']);
    },
    ways: ['apply', 'load'],
  })),
  // 7. Devices, setuid, large owner ids.
  {
    name: 'a device with an out-of-range major number',
    layers: () => [[{ name: 'dev/evil', type: 'character-device', devmajor: 4096, devminor: 1 }]],
    expect: /out-of-range/,
    rootOnly: true,
  },
  {
    name: 'a device node within range, as root',
    layers: () => [[{ name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 }]],
    expect: async (root) => {
      const st = lstatSync(path.join(root, 'dev/null'));
      expect(st.isCharacterDevice()).toBe(true);
      expect(st.rdev).toBe(259); // 1:3
    },
    rootOnly: true,
  },
  {
    name: 'setuid and setgid bits are kept inside the rootfs; owners above 2^21 come back exactly (PAX)',
    layers: () => [[
      { name: 'bin/su', body: 'su', mode: 0o4755 },
      { name: 'bin/wall', body: 'wall', mode: 0o2755, uid: 0, gid: 5 },
      { name: 'home/big', body: 'big', uid: 3_000_000, gid: 4_000_000 },
    ]],
    expect: async (root) => {
      expect(lstatSync(path.join(root, 'bin/su')).mode & 0o7777).toBe(0o4755);
      expect(lstatSync(path.join(root, 'bin/wall')).mode & 0o7777).toBe(0o2755);
      const big = lstatSync(path.join(root, 'home/big'));
      expect([big.uid, big.gid]).toEqual([3_000_000, 4_000_000]);
    },
    rootOnly: true,
  },
];

const allWays: Way[] = ['apply', 'load', 'import', 'add'];

describe.each(allWays)('hostile layers through %s', (way) => {
  const mine = cases.filter((c) => (c.ways ?? allWays).includes(way) && (way === 'apply' || way === 'load' || c.layers({ base: '', store: '', victim: { dir: '/v', marker: '', unchanged: () => undefined } }).length === 1));
  test.each(mine.map((c) => [c.name, c] as const))('%s', async (_, c) => {
    if (c.rootOnly && !isRoot) return;
    const s = sandbox(`${way}-${c.name}`);
    const result = extract(way, s, c.layers(s));
    if (c.expect instanceof RegExp) {
      await expect(result).rejects.toThrow(c.expect);
    } else {
      await c.expect(await result, s);
    }
    s.victim.unchanged();
    if (way !== 'apply') expectStoreConsistent(s.store, s.victim.marker);
  });
});
