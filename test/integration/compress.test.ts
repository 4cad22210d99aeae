import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, test } from 'vitest';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { LayerCache } from '../../src/store/cache.js';
import { distributable, GZIP_LEVEL, incompressible, parallelGzip } from '../../src/store/compress.js';
import { loadImage, writeImage } from '../../src/store/images.js';
import { Store } from '../../src/store/store.js';
import { pseudoRandom } from '../helpers/faults.js';

// The parallel gzip that built layers leave the store with: many members, one stream for
// every reader (Node's zlib, the host's gzip), the same bytes every time.

const MEMBER = 4 * 1024 * 1024;

async function compress(data: Buffer, chunk = 65536): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunk) pieces.push(data.subarray(i, i + chunk));
  const out: Buffer[] = [];
  for await (const c of Readable.from(pieces).pipe(parallelGzip())) out.push(c as Buffer);
  return Buffer.concat(out);
}

describe('parallel gzip', () => {
  test.each([0, 1, MEMBER - 1, MEMBER, MEMBER + 1, 3 * MEMBER + 17])('%i bytes: gunzip gives them back, gzip -d agrees, and the output is the same twice', async (size) => {
    // Half text (compressible), half noise.
    const data = Buffer.concat([Buffer.from('layer '.repeat(Math.ceil(size / 12))).subarray(0, Math.floor(size / 2)), pseudoRandom(`gz${size}`, size - Math.floor(size / 2))]);
    const gz = await compress(data);
    expect(gunzipSync(gz).equals(data)).toBe(true);
    expect(execFileSync('gzip', ['-dc'], { input: gz, maxBuffer: 1 << 26 }).equals(data)).toBe(true);
    expect((await compress(data, 1000003)).equals(gz)).toBe(true); // however the input arrives
  }, 60_000);

  test('a piece deflate cannot shrink is stored; a compressible one, or one with text among the noise, is compressed', async () => {
    const noise = pseudoRandom('stored', MEMBER);
    const text = Buffer.from('a layer of text, '.repeat(MEMBER / 16)).subarray(0, MEMBER);
    // Noise with text at one sample's place: deflate gains there, so the piece is compressed.
    const mixed = Buffer.from(noise);
    text.copy(mixed, MEMBER / 2, 0, 64 * 1024);
    expect([incompressible(noise), incompressible(text), incompressible(mixed)]).toEqual([true, false, false]);
    const gz = await compress(Buffer.concat([noise, text, mixed]));
    expect(gunzipSync(gz).equals(Buffer.concat([noise, text, mixed]))).toBe(true);
    // The noise's member is exactly a stored one (level 0): GZIP_LEVEL would make other bytes.
    const member = (data: Buffer, level: number) => gzipSync(data, { level, chunkSize: MEMBER + 65536 });
    const stored = member(noise, 0);
    expect(gz.subarray(0, stored.length).equals(stored)).toBe(true);
    expect(member(noise, GZIP_LEVEL).equals(stored)).toBe(false);
    const rest = gz.subarray(stored.length);
    expect(rest.subarray(0, member(text, GZIP_LEVEL).length).equals(member(text, GZIP_LEVEL))).toBe(true);
    expect(rest.length - member(text, GZIP_LEVEL).length).toBeLessThan(MEMBER * 0.999);
  }, 60_000);
});

describe('the gzip blob of a layer is remembered with its level', () => {
  const work = mkdtempSync(path.join(tmpdir(), 'gantry-gzip-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test("a push reuses this level's blob, and makes its own where an earlier gantry's level was remembered", async () => {
    const store = await Store.open(path.join(work, 'store'));
    const layer = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${(i * 7919) % 10007} of a layer\n`).join(''));
    const l = await store.writeBlob(layer);
    const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' as const, diff_ids: [l.digest] } };
    const image = await loadImage(store, await writeImage(store, { config, layers: [{ ...l, mediaType: MediaType.ociLayer }] }));
    const cache = new LayerCache(store);
    const remember = async (key: string, blob: Buffer) => {
      const b = await store.writeBlob(blob);
      await cache.put(createHash('sha256').update(key).digest('hex'), { layer: { ...b, diffId: l.digest, mediaType: MediaType.ociLayerGzip }, created: new Date(0).toISOString() });
      return b.digest;
    };
    // What an earlier gantry remembered: another level's blob, under a key without the level.
    const earlier = await remember(`gzip:${l.digest}`, gzipSync(layer, { level: 1 }));
    const made = (await distributable(store, image)).layers[0]?.digest;
    const own = digestOf(gzipSync(layer, { level: GZIP_LEVEL, chunkSize: MEMBER + 65536 }));
    expect(made).toBe(own);
    expect(made).not.toBe(earlier);
    // This level's blob is remembered: a stand-in under its key is what the next push takes.
    const standIn = await remember(`gzip:${GZIP_LEVEL}:${l.digest}`, gzipSync(layer, { level: 9 }));
    expect(standIn).not.toBe(own);
    expect((await distributable(store, image)).layers[0]?.digest).toBe(standIn);
    await store.releaseLease();
  });
});
