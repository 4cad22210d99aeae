import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { decodePax, encodePax, paxOf, xattrsOf } from '../../src/tar/pax.js';
import tar from '../../src/tar/tar.js';
import { applyLayer } from '../../src/rootfs/apply.js';
import { parseDump, quote, readXattrs, unquote, writeXattrs, xattrToolsPresent } from '../../src/rootfs/xattr.js';
import { diff, layerTar, snapshot } from '../../src/snapshot/diff.js';
import { tempDirs } from '../helpers/temp.js';
import { haveTool } from '../helpers/tools.js';

// Extended attributes: binary PAX records through gantry's tar, and getfattr/setfattr for the
// files themselves. Every byte value must survive: a capability set with cap_setuid has 0x80.

const ALL_BYTES = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const CAP = Buffer.from('0100000280200000000000000000000000000000', 'hex'); // cap_setuid,cap_net_raw+ep (v2)

const tmp = tempDirs('gantry-xattr-');

const getfattr = (p: string): string => execFileSync('getfattr', ['--absolute-names', '-h', '-d', '-m', '-', '-e', 'hex', p], { encoding: 'utf8' });
const isRoot = process.getuid?.() === 0;
/** getfattr and setfattr (Debian attr; .ci/run installs it), at the paths gantry uses them from. */
const tools = (): boolean => haveTool('getfattr') && haveTool('setfattr') && xattrToolsPresent();

async function readAll(stream: Readable): Promise<{ name: string; pax: Record<string, string> | null }[]> {
  const extract = tar.extract();
  stream.pipe(extract);
  const out: { name: string; pax: Record<string, string> | null }[] = [];
  for await (const e of extract) {
    out.push({ name: e.header.name, pax: (e.header.pax as Record<string, string> | undefined) ?? null });
    e.resume();
  }
  return out;
}

describe('binary-safe PAX records', () => {
  test('every byte of an xattr value survives a pack and an extract; names stay UTF-8', async () => {
    const pack = tar.pack();
    const long = `dïr/${'ü'.repeat(80)}/file`; // long enough to need a PAX path record
    pack.entry({ name: long, pax: paxOf(new Map([['user.all', ALL_BYTES], ['security.capability', CAP]])) }, 'x');
    pack.finalize();
    const [entry] = await readAll(pack as unknown as Readable);
    expect(entry?.name).toBe(long);
    const x = xattrsOf(entry?.pax);
    expect(x.get('user.all')?.equals(ALL_BYTES)).toBe(true);
    expect(x.get('security.capability')?.equals(CAP)).toBe(true);
  });

  test('records written the way Go writes them decode to the raw bytes', () => {
    const rec = (key: string, value: Buffer): Buffer => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
      const n = body.length + String(body.length + 2).length;
      return Buffer.concat([Buffer.from(String(n)), body]);
    };
    const buf = Buffer.concat([rec('path', Buffer.from('usr/bin/ping')), rec('SCHILY.xattr.security.capability', CAP)]);
    const out = decodePax(buf);
    expect(out.path).toBe('usr/bin/ping');
    expect(xattrsOf(out).get('security.capability')?.equals(CAP)).toBe(true);
  });

  test('record lengths are right across a change in the number of digits', () => {
    for (let n = 80; n < 1010; n++) {
      const pax = { 'SCHILY.xattr.user.v': 'a'.repeat(n) };
      expect(decodePax(encodePax({ pax }))).toEqual(pax);
    }
  });
});

describe('getfattr and setfattr', () => {
  test('quoting round-trips names with blanks, newlines, = and backslashes', () => {
    const odd = Buffer.from('a b\n=c\\d\u00e9', 'utf8');
    expect(unquote(quote(odd)).equals(odd)).toBe(true);
    expect(quote(odd)).not.toMatch(/[\s=]/);
  });

  test('a dump is parsed into path, name and value', () => {
    const dump = Buffer.from('# file: /r/a\\040b\nuser.x=0x80ff\nuser.y=0sAAE=\n\n# file: /r/c\nuser.z=0x\n\n');
    const parsed = parseDump(dump);
    expect(parsed.get('/r/a b')?.get('user.x')).toEqual(Buffer.from([0x80, 0xff]));
    expect(parsed.get('/r/a b')?.get('user.y')).toEqual(Buffer.from([0, 1]));
    expect(parsed.get('/r/c')?.get('user.z')).toEqual(Buffer.alloc(0));
  });

  test('values are written and read back byte for byte, on awkward file names, in one batch', async () => {
    if (!tools()) return;
    const d = tmp();
    const names = ['plain', 'with space', 'new\nline', 'eq=uals', 'bäck\\slash'];
    for (const n of names) writeFileSync(path.join(d, n), n);
    const want = new Map(names.map((n, i) => [path.join(d, n), new Map([['user.v', Buffer.concat([ALL_BYTES, Buffer.from([i])])]])]));
    await writeXattrs(want);
    const got = await readXattrs([...want.keys(), path.join(d, 'missing')], /^user\./);
    expect(got.size).toBe(names.length);
    for (const [p, x] of want) expect(got.get(p)?.get('user.v')?.equals(x.get('user.v') as Buffer), p).toBe(true);
  });
});

describe('xattrs in layers', () => {
  test('applying a layer sets its xattrs (after chown, which would clear a capability)', async () => {
    if (!tools()) return;
    const root = path.join(tmp(), 'rootfs');
    mkdirSync(root);
    const pack = tar.pack();
    pack.entry({ name: 'bin/', type: 'directory', mode: 0o755, pax: paxOf(new Map([['user.dir', Buffer.from('d')]])) });
    pack.entry({ name: 'bin/capped', mode: 0o755, uid: 0, gid: 0, pax: paxOf(new Map([['user.all', ALL_BYTES], ...(isRoot ? [['security.capability', CAP] as [string, Buffer]] : [])])) }, 'x');
    pack.entry({ name: 'bin/linked', type: 'link', linkname: 'bin/capped' });
    pack.finalize();
    await applyLayer(root, pack as unknown as Readable);
    const x = await readXattrs([path.join(root, 'bin/capped'), path.join(root, 'bin')], /^(user|security\.capability)/);
    expect(x.get(path.join(root, 'bin/capped'))?.get('user.all')?.equals(ALL_BYTES)).toBe(true);
    expect(x.get(path.join(root, 'bin'))?.get('user.dir')?.toString()).toBe('d');
    if (isRoot) {
      expect(x.get(path.join(root, 'bin/capped'))?.get('security.capability')?.equals(CAP)).toBe(true);
      expect(execFileSync('getcap', [path.join(root, 'bin/capped')], { encoding: 'utf8' })).toMatch(/cap_setuid,cap_net_raw=ep/);
    }
  });

  test('a later entry that swaps a parent for a symlink out of the root never carries xattrs to the host', async () => {
    if (!tools()) return;
    const base = tmp();
    const root = path.join(base, 'rootfs');
    const victim = path.join(base, 'victim');
    mkdirSync(root);
    mkdirSync(victim);
    writeFileSync(path.join(victim, 'f'), 'host file');
    const pack = tar.pack();
    pack.entry({ name: 'a/', type: 'directory', mode: 0o755 });
    pack.entry({ name: 'a/f', pax: paxOf(new Map([['user.evil', Buffer.from('1')]])) }, 'x');
    pack.entry({ name: 'a', type: 'symlink', linkname: victim });
    pack.entry({ name: 'b', type: 'symlink', linkname: '../victim/f' });
    pack.entry({ name: 'b', pax: paxOf(new Map([['user.evil', Buffer.from('2')]])) }, 'replaced');
    pack.finalize();
    await applyLayer(root, pack as unknown as Readable);
    expect(getfattr(path.join(victim, 'f'))).not.toMatch(/user\.evil/);
    expect(readdirSync(victim)).toEqual(['f']);
    expect(getfattr(path.join(root, 'b'))).toMatch(/user\.evil=0x32/);
  });

  test('a snapshot diff records the xattrs it is given, as SCHILY.xattr records', async () => {
    const root = path.join(tmp(), 'rootfs');
    mkdirSync(path.join(root, 'bin'), { recursive: true });
    const before = await snapshot(root);
    writeFileSync(path.join(root, 'bin/capped'), 'x');
    const after = await snapshot(root);
    const changes = diff(before, after);
    const entries = await readAll(layerTar(root, after, changes, { xattrs: new Map([['bin/capped', new Map([['security.capability', CAP]])]]) }));
    const capped = entries.find((e) => e.name === 'bin/capped');
    expect(xattrsOf(capped?.pax).get('security.capability')?.equals(CAP)).toBe(true);
  });
});
