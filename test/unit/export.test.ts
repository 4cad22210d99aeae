import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import tar from 'tar-stream';
import { afterAll, describe, expect, test } from 'vitest';
import { exportImage } from '../../src/archive/export.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { loadImage, writeImage } from '../../src/store/images.js';
import { Store } from '../../src/store/store.js';

type E = { name: string; body?: string; type?: 'directory' | 'symlink'; linkname?: string };

async function tarBytes(entries: E[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'directory') pack.entry({ name: e.name, type: 'directory', mode: 0o755 });
    else if (e.type === 'symlink') pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '' });
    else pack.entry({ name: e.name, mode: 0o644 }, e.body ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function listTar(buf: Buffer): Promise<Record<string, string>> {
  const extract = tar.extract();
  const out: Record<string, string> = {};
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out[entry.header.name] = entry.header.type === 'symlink' ? `-> ${entry.header.linkname}` : Buffer.concat(chunks).toString();
    }
  })();
  extract.end(buf);
  await done;
  return out;
}

const dir = mkdtempSync(path.join(tmpdir(), 'gantry-export-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('export applies whiteouts and opaque directories', () => {
  test('upper layers win; .wh. removes; opaque hides lower contents only, whatever the entry order', async () => {
    const store = await Store.open(path.join(dir, 'store'));
    const layers = [
      await tarBytes([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/keep', body: 'lower' },
        { name: 'etc/gone', body: 'lower' },
        { name: 'etc/link', type: 'symlink', linkname: '/etc/keep' },
        { name: 'opt/', type: 'directory' },
        { name: 'opt/old', body: 'lower' },
        { name: 'var/', type: 'directory' },
        { name: 'var/tree/a', body: 'a' },
        { name: 'srv/conf.d/a', body: 'lower' },
        { name: 'srv/data/b', body: 'lower' },
      ]),
      await tarBytes([
        { name: 'etc/.wh.gone' },
        { name: 'etc/.wh.link' },
        { name: 'etc/keep', body: 'upper' },
        { name: 'opt/new', body: 'upper' }, // before its opaque marker on purpose
        { name: 'opt/.wh..wh..opq' },
        { name: '.wh.var' },
        // A directory replaced by a file or a symlink, without whiteouts: its children go too
        // (docker's layers do this; export used to keep srv/conf.d/a under the file).
        { name: 'srv/conf.d', body: 'now a file' },
        { name: 'srv/data', type: 'symlink', linkname: '/tmp' },
      ]),
    ];
    const stored = [];
    for (const bytes of layers) {
      const info = await store.writeBlob(bytes);
      stored.push({ ...info, mediaType: MediaType.ociLayer });
    }
    const descriptor = await writeImage(store, {
      config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((b) => digestOf(b)) } },
      layers: stored,
    });
    const image = await loadImage(store, descriptor);
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await exportImage(image, out);
    const files = await listTar(Buffer.concat(chunks));
    expect(files).toEqual({
      'etc/keep': 'upper',
      'opt/new': 'upper',
      'srv/conf.d': 'now a file',
      'srv/data': '-> /tmp',
      'etc/': '',
      'opt/': '',
    });
  });
});
