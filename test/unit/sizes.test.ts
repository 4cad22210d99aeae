import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, test } from 'vitest';
import { TarContentCounter } from '../../src/store/sizes.js';
import tar, { type EntryHeader } from '../../src/tar/tar.js';

async function count(entries: { header: EntryHeader; body?: Buffer }[]): Promise<number> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.body) pack.entry(e.header, e.body);
    else pack.entry(e.header);
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  // Fed in odd pieces, so headers and PAX bodies straddle writes.
  const whole = Buffer.concat(chunks);
  const pieces = [];
  for (let i = 0; i < whole.length; i += 333) pieces.push(whole.subarray(i, i + 333));
  const counter = new TarContentCounter();
  await pipeline(Readable.from(pieces), counter);
  return counter.total;
}

describe('a layer\'s content size: the sizes of its regular files', () => {
  test('files count; directories, links, hard links and whiteouts do not; PAX headers are read through', async () => {
    const long = 'd/' + 'x'.repeat(150); // a name that needs a PAX header
    const total = await count([
      { header: { name: 'd', type: 'directory' } },
      { header: { name: 'd/a', type: 'file', size: 1000 }, body: Buffer.alloc(1000) },
      { header: { name: long, type: 'file', size: 513 }, body: Buffer.alloc(513) },
      { header: { name: 'd/link', type: 'symlink', linkname: 'a' } },
      { header: { name: 'd/hard', type: 'link', linkname: 'd/a' } },
      { header: { name: 'd/.wh.gone', type: 'file', size: 0 }, body: Buffer.alloc(0) },
      { header: { name: 'd/b', type: 'file', size: 7, pax: { 'SCHILY.xattr.user.x': 'y' } }, body: Buffer.alloc(7) },
    ]);
    expect(total).toBe(1000 + 513 + 7);
  });

  test('bytes that are not a tar are an error, not a size', async () => {
    const counter = new TarContentCounter();
    await expect(pipeline(Readable.from([Buffer.alloc(1024, 1)]), counter)).rejects.toThrow('not a tar archive');
  });
});
