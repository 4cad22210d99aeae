import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import tarStreamPackage from 'tar-stream';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import tar, { encodeHeader, entryFrom, type EntryHeader, type TarHeader } from '../../src/tar/tar.js';
import { carriedPax, largeIdRecords, ownerOf, XATTR_PREFIX, xattrsOf } from '../../src/tar/pax.js';

/**
 * Whether tar-stream (gantry's writer before its own; a devDependency now, the reference for
 * the bytes) writes this header as gantry does: not where gantry deliberately differs, owner
 * ids over 6 octal digits (PAX records here, clamped there) and binary xattr values.
 */
const sameAsTarStream = (h: EntryHeader): boolean =>
  Object.keys(largeIdRecords(h)).length === 0 && !Object.keys(h.pax ?? {}).some((k) => k.startsWith(XATTR_PREFIX));

/** The first `length` bytes tar-stream's pack writes for an entry with this header (its body not given). */
async function tarStreamHeader(header: EntryHeader, length: number): Promise<Buffer> {
  const pack = tarStreamPackage.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(Buffer.from(c as Uint8Array)));
  pack.on('error', () => undefined);
  pack.entry({ ...header } as tarStreamPackage.Header).on('error', () => undefined);
  // The header goes out when the entry opens, a turn of the event loop or two later.
  for (let turns = 0; Buffer.concat(chunks).length < length && turns < 100; turns++) await new Promise((resolve) => setImmediate(resolve));
  pack.destroy();
  return Buffer.concat(chunks).subarray(0, length);
}

/** A tar of these entries as tar-stream's pack writes it. */
async function viaTarStream(list: { header: EntryHeader; body?: Buffer }[]): Promise<Buffer> {
  const pack = tarStreamPackage.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const { header, body } of list) {
    const b = body ?? (header.type === 'file' || !header.type ? Buffer.alloc(0) : undefined);
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      const h = { ...header } as tarStreamPackage.Header;
      if (b) pack.entry(h, b, cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}
import { ChunkWriter, TarWriter, tarStream } from '../../src/tar/writer.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const mtime = new Date(1_700_000_000_000);
const long = `${'deep/'.repeat(40)}file.txt`;
/** Every kind of header a layer has: each takes a different path through the encoder. */
const cases: { header: EntryHeader; body?: Buffer }[] = [
  { header: { name: 'etc/', type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime, uname: '', gname: '' } },
  { header: { name: 'etc/hosts', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' }, body: Buffer.from('127.0.0.1 localhost\n') },
  { header: { name: 'empty', type: 'file', mode: 0o600, uid: 1, gid: 2, mtime, uname: '', gname: '' }, body: Buffer.alloc(0) },
  { header: { name: 'exact', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' }, body: Buffer.alloc(1024, 7) },
  { header: { name: 'bin/sh', type: 'symlink', linkname: 'busybox', mode: 0o777, uid: 0, gid: 0, mtime, uname: '', gname: '' } },
  { header: { name: 'bin/ls', type: 'link', linkname: 'bin/busybox', mode: 0o755, uid: 0, gid: 0, mtime, uname: '', gname: '' } },
  { header: { name: long, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' }, body: Buffer.from('long path\n') },
  { header: { name: 'naïve/ünïcödé', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' }, body: Buffer.from('x') },
  { header: { name: 'far', type: 'symlink', linkname: `/${'x'.repeat(150)}`, mode: 0o777, uid: 0, gid: 0, mtime, uname: '', gname: '' } },
  { header: { name: 'bigid', type: 'file', mode: 0o644, uid: 3_000_000, gid: 4_000_000, mtime, uname: '', gname: '' }, body: Buffer.from('ids') },
  {
    header: { name: 'usr/bin/ping', type: 'file', mode: 0o755, uid: 0, gid: 0, mtime, uname: '', gname: '', pax: { 'SCHILY.xattr.security.capability': '\x01\x00\x00\x02\x80\x20\x00\x00' } },
    body: Buffer.from('ping'),
  },
  { header: { name: 'dev/null', type: 'character-device', mode: 0o666, uid: 0, gid: 0, mtime, uname: '', gname: '', devmajor: 1, devminor: 3 } },
  { header: { name: 'etc/.wh.gone', mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file', size: 0 } },
  // Fields left out take pack's defaults (type file, mode 644 or 755, owner 0).
  { header: { name: 'defaults/', type: 'directory', mtime } },
  { header: { name: 'defaults/file', mtime }, body: Buffer.from('defaults') },
  { header: { name: 'defaults/link', type: 'symlink', linkname: 'file', mtime, size: 99 } },
];

describe('tar headers', () => {
  test("give tar-stream's bytes for every header, at and around each field's limits", async () => {
    const names = ['a', 'etc/', 'x'.repeat(99), 'y'.repeat(100), 'z'.repeat(101), `dir/${'n'.repeat(96)}`, 'caf\u00e9', 'sp ace/\ttab'];
    const numbers = [0, 1, 0o777777, 0o1000000, 2 ** 21 - 1];
    const sizes = [0, 1, 511, 0o77777777777, 0o100000000000];
    const times = [new Date(0), mtime, new Date(2 ** 31 * 1000 - 1000), new Date(2 ** 31 * 1000), new Date(-1000), new Date(1_700_000_000_500)];
    const types = ['file', 'directory', 'symlink', 'link', 'character-device', 'block-device', 'fifo', 'contiguous-file'] as const;
    const users = ['', 'root', 'u'.repeat(31), 'u'.repeat(32), 'j\u00f6rg'];
    let n = 0;
    let compared = 0;
    for (const name of names)
      for (const type of types)
        for (const id of numbers)
          for (const [i, size] of sizes.entries()) {
            const user = users[(n + i) % users.length] as string;
            const header: EntryHeader = {
              name,
              type,
              mode: (0o10000 + n * 37) & 0o17777,
              uid: id,
              gid: numbers[(n + 2) % numbers.length] as number,
              size: type === 'file' ? size : 0,
              mtime: times[n % times.length] as Date,
              uname: user,
              gname: users[(n + 3) % users.length] as string,
              ...(type === 'symlink' || type === 'link' ? { linkname: names[(n + 1) % names.length] as string } : {}),
              ...(type.endsWith('device') ? { devmajor: id, devminor: numbers[(n + 1) % numbers.length] as number } : {}),
            };
            n++;
            const ours = encodeHeader(header);
            if (!sameAsTarStream(header)) continue;
            compared++;
            const theirs = await tarStreamHeader(header, ours.length);
            expect(ours.toString('hex'), JSON.stringify(header)).toBe(theirs.toString('hex'));
          }
    expect(n).toBeGreaterThan(1000);
    expect(compared).toBeGreaterThan(500);
  });
});

async function viaPack(list: typeof cases): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const { header, body } of list) {
    const b = body ?? (header.type === 'file' ? Buffer.alloc(0) : undefined);
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (b) pack.entry({ ...header }, b, cb);
      else pack.entry({ ...header }, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

async function viaWriter(list: typeof cases, chunkSize: number): Promise<{ bytes: Buffer; chunks: number; size: number }> {
  const chunks: Buffer[] = [];
  const out = new ChunkWriter(async (c) => void chunks.push(Buffer.from(c)), { reuse: true, chunkSize });
  const t = new TarWriter(out);
  for (const { header, body } of list) await t.entry({ ...header }, body);
  await t.finish();
  return { bytes: Buffer.concat(chunks), chunks: chunks.length, size: out.size };
}

describe('the pack', () => {
  test("writes the bytes tar-stream's pack wrote, where gantry does not deliberately differ", async () => {
    const same = cases.filter(({ header }) => sameAsTarStream(header));
    expect(same.length).toBeGreaterThan(10);
    expect((await viaPack(same)).equals(await viaTarStream(same))).toBe(true);
  });

  test('writes an owner id over 6 octal digits as a PAX record, which the extract reads back', async () => {
    for (const uid of [0o777777, 0o1000000, 300_000, 2 ** 21 - 1, 2 ** 21, 4_000_000_000]) {
      const bytes = await viaPack([{ header: { name: 'f', mode: 0o644, uid, gid: uid + 1, mtime }, body: Buffer.from('x') }]);
      expect(bytes.includes(Buffer.from(` uid=${uid}\n`)), String(uid)).toBe(uid > 0o777777);
      const [entry] = await readAll(bytes);
      expect(ownerOf(entry?.header ?? {}), String(uid)).toEqual({ uid, gid: uid + 1 });
    }
  });

  test('refuses a body of another size than its header says, and fails the archive', async () => {
    const pack = tar.pack();
    const reading = (async () => {
      for await (const c of pack) void c;
    })();
    const short = new Promise<void>((resolve, reject) => pack.entry({ name: 'f', size: 10 }, (err) => (err ? reject(err) : resolve())).end(Buffer.alloc(4)));
    await expect(short).rejects.toThrow(/4 bytes written of 10/);
    await expect(reading).rejects.toThrow(/4 bytes written of 10/);
  });

  test('an entry added just before the archive is destroyed is told so', async () => {
    const pack = tar.pack();
    pack.on('error', () => undefined);
    const told = new Promise<Error | null | undefined>((resolve) => pack.entry({ name: 'a', size: 3 }, resolve));
    pack.destroy(new Error('gone'));
    expect(await told).toBeInstanceOf(Error);
  });

  test('lays out entries added before the ones before them are done, in the order added', async () => {
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    const reading = (async () => {
      for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
    })();
    const a = pack.entry({ name: 'a', size: 3, mtime });
    const b = pack.entry({ name: 'b', size: 2, mtime });
    pack.entry({ name: 'c/', type: 'directory', mtime });
    pack.finalize();
    b.end(Buffer.from('bb'));
    a.end(Buffer.from('aaa'));
    await reading;
    const entries = await readAll(Buffer.concat(chunks));
    expect(entries.map((e) => [e.header.name, e.body.toString()])).toEqual([['a', 'aaa'], ['b', 'bb'], ['c/', '']]);
  });
});

/** Every entry of a tar, read with gantry's extract: header and body. */
async function readAll(bytes: Buffer, chunkSize = 1000): Promise<{ header: TarHeader; body: Buffer }[]> {
  const extract = tar.extract();
  const out: { header: TarHeader; body: Buffer }[] = [];
  const feeding = pipeline(
    (function* () {
      for (let at = 0; at < bytes.length; at += chunkSize) yield bytes.subarray(at, at + chunkSize);
    })(),
    extract,
  );
  feeding.catch(() => undefined); // its failure is the loop's, below
  for await (const entry of extract) {
    const body: Buffer[] = [];
    for await (const c of entry) body.push(c as Buffer);
    out.push({ header: entry.header, body: Buffer.concat(body) });
  }
  await feeding;
  return out;
}

describe('the extract', () => {
  test.each([1, 100, 512, 4096, 1 << 20])('reads back every kind of entry the pack writes (fed %i bytes at a time)', async (chunkSize) => {
    const entries = await readAll(await viaPack(cases), chunkSize);
    expect(entries.map((e) => e.header.name)).toEqual(cases.map((c) => c.header.name));
    for (const [i, { header, body }] of cases.entries()) {
      const got = entries[i] as { header: TarHeader; body: Buffer };
      expect(got.body.equals(header.type === 'symlink' || header.type === 'link' || header.type === 'directory' || header.type === 'character-device' ? Buffer.alloc(0) : (body ?? Buffer.alloc(0))), header.name).toBe(true);
      expect(got.header.type, header.name).toBe(header.type ?? 'file');
      expect(got.header.mtime.getTime(), header.name).toBe(header.mtime?.getTime());
      if (header.linkname) expect(got.header.linkname).toBe(header.linkname);
      expect(ownerOf(got.header), header.name).toEqual({ uid: header.uid ?? 0, gid: header.gid ?? 0 });
      if (header.devmajor !== undefined) expect([got.header.devmajor, got.header.devminor]).toEqual([header.devmajor, header.devminor]);
    }
    // A binary xattr value comes back byte for byte.
    const ping = entries.find((e) => e.header.name === 'usr/bin/ping');
    expect(xattrsOf(ping?.header.pax).get('security.capability')?.toString('hex')).toBe('0100000280200000');
  });

  test("reads what tar-stream's pack writes", async () => {
    const same = cases.filter(({ header }) => sameAsTarStream(header));
    const entries = await readAll(await viaTarStream(same));
    expect(entries.map((e) => e.header.name)).toEqual(same.map((c) => c.header.name));
  });

  test('reads GNU long names and a PAX global header', async () => {
    const name = `${'long/'.repeat(30)}name`;
    const target = `${'t'.repeat(120)}`;
    const longBody = (s: string): Buffer => Buffer.concat([Buffer.from(s + '\0'), Buffer.alloc(512 - ((s.length + 1) % 512))]);
    const global = Buffer.from('19 comment=hello!\n');
    const bytes = Buffer.concat([
      encodeHeader({ name: 'pax_global_header', type: 'pax-global-header', size: global.length, mtime }),
      global,
      Buffer.alloc(512 - global.length),
      encodeHeader({ name: '././@LongLink', type: 'gnu-long-path', size: name.length + 1, mtime }),
      longBody(name),
      encodeHeader({ name: '././@LongLink', type: 'gnu-long-link-path', size: target.length + 1, mtime }),
      longBody(target),
      encodeHeader({ name: 'short', type: 'symlink', linkname: 'x', mtime }),
      Buffer.alloc(1024),
    ]);
    const [entry, ...rest] = await readAll(bytes);
    expect(rest).toEqual([]);
    expect(entry?.header).toMatchObject({ name, linkname: target, type: 'symlink' });
  });

  test('a body left unread is drained; blocks of zeros between entries are skipped', async () => {
    const a = await viaPack([{ header: { name: 'a', mtime }, body: Buffer.alloc(100_000, 1) }]);
    const b = await viaPack([{ header: { name: 'b', mtime }, body: Buffer.from('b') }]);
    const extract = tar.extract();
    const feeding = pipeline([Buffer.concat([a, b])], extract);
    const names: string[] = [];
    for await (const entry of extract) names.push(entry.header.name);
    await feeding;
    expect(names).toEqual(['a', 'b']);
  });

  test.each([
    ['inside a body', (t: Buffer) => t.subarray(0, 700)],
    ['inside a header', (t: Buffer) => t.subarray(0, 1024 + 100)],
    ['inside PAX records', (t: Buffer) => t.subarray(0, t.indexOf('SCHILY') + 3)],
  ])('an archive that ends %s is an error', async (_what, cut) => {
    const whole = await viaPack([
      { header: { name: 'a', mtime }, body: Buffer.alloc(600, 1) },
      { header: { name: 'x', mtime, pax: { 'SCHILY.xattr.user.a': 'b' } }, body: Buffer.from('x') },
    ]);
    await expect(readAll(cut(whole))).rejects.toThrow(/unexpected end of tar archive/);
  });

  test('an empty PAX header or GNU long name, wherever the input is cut, reads as nothing (no exception out of a write)', async () => {
    const file = await viaPack([{ header: { name: 'f', mtime }, body: Buffer.from('x') }]);
    for (const type of ['pax-header', 'pax-global-header', 'gnu-long-path', 'gnu-long-link-path'] as const) {
      const bytes = Buffer.concat([encodeHeader({ name: 'L', type, size: 0, mtime }), file]);
      for (const chunkSize of [1, 512, 1024, 4096]) {
        const entries = await readAll(bytes, chunkSize);
        expect(entries.map((e) => e.header.name), `${type} in chunks of ${chunkSize}`).toEqual(['f']);
      }
    }
  });

  test('a header with a wrong checksum is an error that says so', async () => {
    const bytes = await viaPack([{ header: { name: 'a', mtime }, body: Buffer.from('a') }]);
    bytes[10] = 0x41;
    await expect(readAll(bytes)).rejects.toThrow(/wrong checksum/);
  });

  test('leaving the loop early tears the archive down', async () => {
    const bytes = await viaPack(cases);
    const extract = tar.extract();
    const feeding = pipeline([bytes], extract);
    for await (const entry of extract) {
      void entry;
      break;
    }
    await expect(feeding).rejects.toThrow();
  });
});

describe('an entry written again', () => {
  test('keeps its PAX records but those naming it: its new header names it', async () => {
    const [read] = await readAll(await viaPack([{ header: { name: 'x', mtime, pax: { path: '/etc/evil', linkpath: '/etc/x', 'SCHILY.xattr.user.a': 'b' } }, body: Buffer.from('x') }]));
    expect(read?.header.name).toBe('/etc/evil');
    const again = await new Promise<Buffer>((resolve, reject) => {
      const pack = tar.pack();
      const chunks: Buffer[] = [];
      pack.on('data', (c: Buffer) => chunks.push(c));
      pack.on('end', () => resolve(Buffer.concat(chunks)));
      pack.on('error', reject);
      entryFrom(pack, { ...(read?.header as TarHeader), name: 'etc/evil', pax: carriedPax(read?.header.pax) }, Readable.from([read?.body ?? Buffer.alloc(0)])).then(() => pack.finalize(), reject);
    });
    const [written] = await readAll(again);
    expect(written?.header.name).toBe('etc/evil');
    expect(written?.header.pax).toMatchObject({ path: 'etc/evil', 'SCHILY.xattr.user.a': 'b' });
  });
});

describe('TarWriter', () => {
  test.each([512, 4096, 1 << 20])('writes the same bytes as the pack (chunks of %i bytes)', async (chunkSize) => {
    const expected = await viaPack(cases);
    const got = await viaWriter(cases, chunkSize);
    expect(got.bytes.equals(expected)).toBe(true);
    expect(got.size).toBe(expected.length);
    // Small chunks really were many (the reused buffers were not overwritten before use).
    if (chunkSize === 512) expect(got.chunks).toBe(expected.length / 512);
  });

  test('reads file bodies from a descriptor and refuses a file shorter than its header says', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-tarw-'));
    dirs.push(dir);
    const body = Buffer.alloc(10_000, 3);
    writeFileSync(path.join(dir, 'f'), body);
    const header: EntryHeader = { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' };
    const expected = await viaPack([{ header, body }]);
    const chunks: Buffer[] = [];
    const t = new TarWriter(new ChunkWriter(async (c) => void chunks.push(Buffer.from(c)), { reuse: true, chunkSize: 4096 }));
    const fd = openSync(path.join(dir, 'f'), 'r');
    try {
      await t.file({ ...header, size: body.length }, fd, 'f');
      await expect(t.file({ ...header, size: body.length + 1 }, fd, 'the file f')).rejects.toThrow(/the file f: the file shrank from 10001 to 10000 bytes/);
    } finally {
      closeSync(fd);
    }
    await t.finish();
    // The refused entry's header and body went out before the shortfall showed: the caller
    // throws the blob away (Store.writeWith removes its temp file).
    expect(Buffer.concat(chunks).subarray(0, expected.length - 1024).equals(expected.subarray(0, expected.length - 1024))).toBe(true);
  });

  test('refuses a file longer than its header says, also where its body ends a chunk exactly', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-tarw-'));
    dirs.push(dir);
    // 512 header bytes + 3,584 = one 4,096-byte chunk: the body's last read fills the chunk.
    for (const length of [100, 3584, 3585, 10_000]) {
      writeFileSync(path.join(dir, 'f'), Buffer.alloc(length + 1, 5));
      const header: EntryHeader = { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' };
      const t = new TarWriter(new ChunkWriter(async () => undefined, { reuse: true, chunkSize: 4096 }));
      const fd = openSync(path.join(dir, 'f'), 'r');
      try {
        await expect(t.file({ ...header, size: length }, fd, 'the file f'), `${length}`).rejects.toThrow(`the file f: the file grew beyond ${length} bytes`);
        await expect(t.file({ ...header, size: length + 1 }, fd, 'the file f'), `${length}`).resolves.toBeUndefined();
      } finally {
        closeSync(fd);
      }
    }
  });

  test.each([512, 1024, 4096, 1 << 20])('entryNow and fileNow, with the awaited calls where they decline, write the same bytes as the pack (chunks of %i bytes)', async (chunkSize) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-tarw-'));
    dirs.push(dir);
    // Bodies around every boundary the synchronous path checks (a block, a header and a block, a chunk).
    const sizes = [0, 1, 510, 511, 512, 513, 1023, 1024, 1025, 3000, 3584, 4095, 4096, 10_000];
    const list = cases.flatMap(({ header, body }) => [{ header, ...(body ? { body } : {}) }]);
    for (const [i, n] of sizes.entries()) list.push({ header: { name: `sized/${i}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' }, body: Buffer.alloc(n, i + 1) });
    const expected = await viaPack(list);
    const chunks: Buffer[] = [];
    const out = new ChunkWriter(async (c) => void chunks.push(Buffer.from(c)), { reuse: true, chunkSize });
    const t = new TarWriter(out);
    let now = 0;
    for (const [i, { header, body }] of list.entries()) {
      if (body === undefined) {
        if (t.entryNow({ ...header })) now++;
        else await t.entry({ ...header });
        continue;
      }
      const file = path.join(dir, String(i));
      writeFileSync(file, body);
      const fd = openSync(file, 'r');
      try {
        const h = { ...header, size: body.length };
        if (t.fileNow(h, fd, file)) now++;
        else await t.file(h, fd, file);
      } finally {
        closeSync(fd);
      }
    }
    await t.finish();
    expect(Buffer.concat(chunks).equals(expected)).toBe(true);
    expect(out.size).toBe(expected.length);
    // The synchronous path where an entry fits, the awaited one at chunk ends: a 512-byte chunk
    // never has room, a 1 MiB one always does, the others take both.
    if (chunkSize === 512) expect(now).toBe(0);
    else if (chunkSize === 1 << 20) expect(now).toBe(list.length);
    else {
      expect(now).toBeGreaterThan(0);
      expect(now).toBeLessThan(list.length);
    }
  });

  test('fileNow refuses a file longer or shorter than its header says', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-tarw-'));
    dirs.push(dir);
    writeFileSync(path.join(dir, 'f'), Buffer.alloc(100, 5));
    const header: EntryHeader = { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime, uname: '', gname: '' };
    const t = new TarWriter(new ChunkWriter(async () => undefined, { chunkSize: 1 << 20 }));
    const fd = openSync(path.join(dir, 'f'), 'r');
    try {
      expect(() => t.fileNow({ ...header, size: 99 }, fd, 'the file f')).toThrow('the file f: the file grew beyond 99 bytes');
      expect(() => t.fileNow({ ...header, size: 101 }, fd, 'the file f')).toThrow('the file f: the file shrank from 101 to 100 bytes');
      expect(t.fileNow({ ...header, size: 100 }, fd, 'the file f')).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  test('a chunk that fails to go out fails the write, and the stream form ends with that error', async () => {
    const t = new TarWriter(new ChunkWriter(async () => Promise.reject(new Error('disk on fire')), { chunkSize: 512 }));
    await expect((async () => {
      for (const { header, body } of cases) await t.entry({ ...header }, body);
      await t.finish();
    })()).rejects.toThrow('disk on fire');

    const s = tarStream(async () => {
      throw new Error('no such file');
    });
    await expect((async () => {
      for await (const _ of s) void _;
    })()).rejects.toThrow('no such file');
  });
});
