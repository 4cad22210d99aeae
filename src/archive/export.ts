/**
 * `gantry export`: the flattened root filesystem of an image as one tar. Layers are read
 * from the top down; an entry is written the first time its path is seen, unless an upper
 * layer removed it (`.wh.<name>`) or made a directory above it opaque (`.wh..wh..opq`),
 * which hides lower layers only (OCI image-spec layer.md), or put something other than a
 * directory at a path that was a directory below (its children go with it). Whiteout files
 * themselves are never written.
 */
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar, { entryFrom, type Pack } from '../tar/tar.js';
import { carriedPax } from '../tar/pax.js';
import type { Image } from '../image/image.js';
import { layerCompression } from '../oci/media-types.js';
import { layerTar } from '../tar/decompress.js';
import { sanitizeMemberName } from './sanitize.js';
import { writeTar } from './tar-out.js';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';

function parents(p: string): string[] {
  const parts = p.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) out.push(parts.slice(0, i).join('/'));
  return out;
}

export async function exportImage(image: Image, out: Writable): Promise<void> {
  await writeTar(out, (pack) => writeFlattened(image, pack));
}

/**
 * Several images' files in one tar, each under its own directory (`prefix`, such as
 * `linux_arm64`), as BuildKit's tar exporter writes a multi-platform build's.
 */
export async function exportImagesUnder(items: { image: Image; prefix: string }[], out: Writable): Promise<void> {
  await writeTar(out, async (pack) => {
    for (const { image, prefix } of items) {
      await new Promise<void>((resolve, reject) => pack.entry({ name: `${prefix}/`, type: 'directory', mode: 0o755, mtime: new Date(0), uid: 0, gid: 0 }, (err) => (err ? reject(err) : resolve())));
      await writeFlattened(image, pack, `${prefix}/`);
    }
  });
}

async function writeFlattened(image: Image, pack: Pack, prefix = ''): Promise<void> {
  const seen = new Set<string>();
  /** Paths removed by upper layers (the path and everything below it). */
  const removed = new Set<string>();
  /** Directories whose lower-layer contents are hidden. */
  const opaque = new Set<string>();
  for (let i = image.layers.length - 1; i >= 0; i--) {
    const layer = image.layers[i] as (typeof image.layers)[number];
    const compression = layerCompression(layer.mediaType);
    const extract = tar.extract();
    const feeding = pipeline(layerTar(layer.open(), compression, `layer ${layer.digest}`), extract);
    const layerRemoved = new Set<string>();
    const layerOpaque = new Set<string>();
    const what = `layer ${layer.digest}`;
    const reading = (async () => {
      for await (const entry of extract) {
        const h = { ...entry.header, pax: carriedPax(entry.header.pax) };
        const name = sanitizeMemberName(h.name, what);
        const base = name.slice(name.lastIndexOf('/') + 1);
        const dir = name.includes('/') ? name.slice(0, name.lastIndexOf('/')) : '';
        if (base === OPAQUE) {
          layerOpaque.add(dir);
          entry.resume();
          continue;
        }
        if (base.startsWith(WHITEOUT)) {
          const target = (dir ? dir + '/' : '') + base.slice(WHITEOUT.length);
          if (base.length > WHITEOUT.length && target.split('/').every((p) => p !== '..' && p !== '.')) layerRemoved.add(target);
          entry.resume();
          continue;
        }
        const hidden = removed.has(name) || parents(name).some((p) => removed.has(p) || opaque.has(p));
        if (name === '' || seen.has(name) || hidden) {
          entry.resume();
          continue;
        }
        seen.add(name);
        // Anything but a directory replaces what lower layers have at this path, children included.
        if (h.type !== 'directory') layerRemoved.add(name);
        h.name = prefix + (h.type === 'directory' ? name + '/' : name);
        if (h.type === 'link' && h.linkname) h.linkname = prefix + sanitizeMemberName(h.linkname, what);
        await entryFrom(pack, h, entry);
      }
    })();
    await Promise.all([feeding, reading]);
    // This layer's whiteouts and opaque markers hide what is below it, not itself.
    for (const r of layerRemoved) removed.add(r);
    for (const o of layerOpaque) opaque.add(o);
  }
}
