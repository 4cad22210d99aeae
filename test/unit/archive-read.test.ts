import { createReadStream, createWriteStream, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, test } from 'vitest';
import { readArchive, type ArchiveImage } from '../../src/archive/read.js';
import { saveImages, type SaveFormat } from '../../src/archive/save.js';
import { indexOf, isIndex, type Image, type ImageIndex, type Layer } from '../../src/image/image.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import type { Manifest } from '../../src/oci/types.js';
import tar from '../../src/tar/tar.js';
import { tempDirs } from '../helpers/temp.js';

/** The one image (not a multi-platform index) an archive entry holds. */
function one(a: ArchiveImage | undefined): Image {
  if (!a || isIndex(a.image)) throw new Error('expected one image');
  return a.image;
}

const tmp = tempDirs('gantry-archive-read-');

async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const reading = (async () => {
    for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
  })();
  for (const [name, body] of Object.entries(files)) pack.entry({ name, mtime: new Date(0) }, body);
  pack.finalize();
  await reading;
  return Buffer.concat(chunks);
}

/** An image held in memory, not in any store: its config written as Go writes JSON (`&` as \u0026). */
async function memoryImage(architecture = 'amd64'): Promise<Image> {
  const tars = [await layerTar({ 'a.txt': 'a\n' }), await layerTar({ 'b.txt': `${architecture}\n`, 'c.txt': '' })];
  const layers: Layer[] = tars.map((t) => ({ digest: digestOf(t), diffId: digestOf(t), size: t.length, mediaType: MediaType.ociLayer, open: () => Readable.from([t]) }));
  const rawConfig = Buffer.from(
    `{"architecture":"${architecture}","config":{"Cmd":["sh","-c","true \\u0026\\u0026 echo \\u003cok\\u003e"]},"os":"linux","rootfs":{"type":"layers","diff_ids":[${layers.map((l) => `"${l.diffId}"`).join(',')}]}}`,
  );
  const config = JSON.parse(rawConfig.toString()) as Image['config'];
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: digestOf(rawConfig), size: rawConfig.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const rawManifest = Buffer.from(JSON.stringify(manifest));
  return { digest: digestOf(rawManifest), mediaType: MediaType.ociManifest, rawManifest, manifest, configDigest: digestOf(rawConfig), rawConfig, config, layers };
}

async function save(items: { image: Image | ImageIndex; names: string[] }[], format: SaveFormat): Promise<string> {
  const file = path.join(tmp(), `${format}.tar`);
  await saveImages(items, createWriteStream(file), format);
  return file;
}

const bytes = async (r: Readable): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};

describe('an archive as a source of images (no store)', () => {
  test('an OCI archive gives back the image it was saved from, byte for byte, its blobs read in place', async () => {
    const image = await memoryImage();
    const [read, ...rest] = await readArchive(await save([{ image, names: ['example.com/app:1'] }], 'oci'));
    expect(rest).toEqual([]);
    expect(read?.names).toEqual(['example.com/app:1']);
    expect(one(read).digest).toBe(image.digest);
    expect(one(read).rawConfig.equals(image.rawConfig)).toBe(true);
    for (const [i, layer] of (one(read).layers ?? []).entries()) {
      expect(layer.diffId).toBe(image.layers[i]?.diffId);
      expect(digestOf(await bytes(layer.open()))).toBe(layer.digest);
    }
  });

  test('a docker archive keeps its config as written (the image ID docker gave it); read images save again without a store', async () => {
    const image = await memoryImage();
    const dockerFile = await save([{ image, names: ['example.com/app:1', 'example.com/app:latest'] }], 'docker');
    const [read] = await readArchive(dockerFile);
    expect(read?.names).toEqual(['example.com/app:1', 'example.com/app:latest']);
    expect(one(read).configDigest).toBe(image.configDigest);
    expect(one(read).rawConfig.toString()).toContain('\\u0026\\u0026');
    expect(one(read).layers.map((l) => [l.mediaType, l.diffId])).toEqual(image.layers.map((l) => [MediaType.ociLayer, l.diffId]));
    // Archive to archive: the docker archive's image saved as OCI, and read back.
    const [again] = await readArchive(await save([read as { image: Image; names: string[] }], 'oci'));
    expect(one(again).digest).toBe(one(read).digest);
    expect(one(again).configDigest).toBe(image.configDigest);
  });

  test('a layer opened and given up on closes the archive file again', async () => {
    const [read] = await readArchive(await save([{ image: await memoryImage(), names: [] }], 'oci'));
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const before = fds();
    for (let i = 0; i < 50; i++) {
      const stream = one(read).layers[0]?.open() as Readable;
      for await (const c of stream) {
        void c;
        break;
      }
    }
    // Closing is a turn of the event loop away: wait for the streams' close, not for a time.
    await new Promise((resolve) => setImmediate(resolve));
    expect(fds() - before).toBeLessThan(10);
  });

  test('a blob that does not hash to its name is refused, naming the archive', async () => {
    const image = await memoryImage();
    const file = await save([{ image, names: [] }], 'oci');
    const data = readFileSync(file);
    const at = data.indexOf('a\n', data.indexOf(`blobs/sha256/${image.layers[0]?.digest.slice(7)}`) + 512);
    data[at] = 'z'.charCodeAt(0);
    writeFileSync(file, data);
    await expect(readArchive(file, 'the archive')).rejects.toThrow(/digest|sha256/);
  });

  test("a docker archive's layer that does not match its diff ID is refused", async () => {
    const image = await memoryImage();
    const wrong = { ...image, config: image.config, rawConfig: Buffer.from(image.rawConfig.toString().replace(image.layers[1]?.diffId as string, `sha256:${'0'.repeat(64)}`)) };
    const file = await save([{ image: { ...wrong, configDigest: digestOf(wrong.rawConfig) }, names: [] }], 'docker');
    await expect(readArchive(file, 'the archive')).rejects.toThrow(/the archive: layer .* does not match diff ID sha256:0{64}/);
  });

  test('what is not an image archive says so', async () => {
    const file = path.join(tmp(), 'x.tar');
    writeFileSync(file, await layerTar({ 'hello.txt': 'hi' }));
    await expect(readArchive(file, 'x.tar')).rejects.toThrow('x.tar: neither a docker archive (manifest.json) nor an OCI archive (oci-layout, index.json)');
    writeFileSync(file, Buffer.alloc(4096, 'garbage!'));
    await expect(readArchive(file, 'x.tar')).rejects.toThrow(/x.tar: not a valid tar archive/);
  });
});

/** A member of a tar file, read with gantry's own tar reader (a fast test starts no process). */
async function member(file: string, name: string): Promise<Buffer> {
  const extract = tar.extract();
  const reading = (async () => {
    let found: Buffer | undefined;
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      if (entry.header.name === name) found = Buffer.concat(chunks);
    }
    return found;
  })();
  await pipeline(createReadStream(file), extract);
  const found = await reading;
  if (!found) throw new Error(`${name} is not in ${file}`);
  return found;
}

describe('multi-platform archives', () => {
  test('an index is saved whole (OCI and docker) and read back as one multi-platform image; manifest.json names one platform, as Docker 28 saves', async () => {
    const index = indexOf([await memoryImage('amd64'), await memoryImage('arm64')]);
    for (const format of ['oci', 'docker'] as const) {
      const file = await save([{ image: index, names: ['example.com/multi:1'] }], format);
      const [read, ...rest] = await readArchive(file);
      expect(rest).toEqual([]);
      expect(read?.names).toEqual(['example.com/multi:1']);
      const got = read?.image as ImageIndex;
      expect(isIndex(got)).toBe(true);
      expect(got.digest).toBe(index.digest);
      expect(got.rawIndex.equals(index.rawIndex)).toBe(true);
      expect(got.images.map((im) => [im.config.architecture, im.digest])).toEqual(index.images.map((im) => [im.config.architecture, im.digest]));
      for (const im of got.images) for (const l of im.layers) expect(digestOf(await bytes(l.open()))).toBe(l.digest);
      if (format === 'docker') {
        const manifests = JSON.parse((await member(file, 'manifest.json')).toString()) as { Config: string; RepoTags: string[] }[];
        const host = index.images.find((im) => im.config.architecture === (process.arch === 'x64' ? 'amd64' : process.arch)) ?? index.images[0];
        expect(manifests).toEqual([expect.objectContaining({ Config: `blobs/sha256/${host?.configDigest.slice(7)}`, RepoTags: ['example.com/multi:1'] })]);
      }
    }
  });

  test('an index whose manifests the archive lacks in part keeps the ones it holds; none at all, or a nested index, is refused', async () => {
    const amd = await memoryImage('amd64');
    const arm = await memoryImage('arm64');
    const full = indexOf([amd, arm]);
    // Saved with only amd64's image, under the index that names both.
    const partial = await save([{ image: { ...full, images: [amd] }, names: ['example.com/multi:1'] }], 'oci');
    const [read] = await readArchive(partial);
    expect((read?.image as ImageIndex).images.map((im) => im.digest)).toEqual([amd.digest]);
    const none = await save([{ image: { ...full, images: [] }, names: [] }], 'oci');
    await expect(readArchive(none)).rejects.toThrow(/has none of its images in the archive/);
    const nested = indexOf([]);
    const outer: ImageIndex = { ...nested, index: { ...nested.index, manifests: [{ mediaType: MediaType.ociIndex, digest: full.digest, size: full.rawIndex.length }] } };
    outer.rawIndex = Buffer.from(JSON.stringify(outer.index));
    outer.digest = digestOf(outer.rawIndex);
    const file = await save([{ image: outer, names: [] }, { image: full, names: [] }], 'oci');
    await expect(readArchive(file)).rejects.toThrow(/nested indexes are not supported/);
  });
});
