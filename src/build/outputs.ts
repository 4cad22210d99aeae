/**
 * Where a built image goes besides the store: an OCI layout (directory or tar), a
 * docker-archive tar, a plain directory with the root filesystem, or a registry.
 */
import { createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OptionError, zlib } from '../errors/index.js';
import { saveImages } from '../archive/save.js';
import { layerCompression, MediaType } from '../oci/media-types.js';
import { REF_NAME_ANNOTATION } from '../oci/types.js';
import { applyLayer } from '../rootfs/apply.js';
import { loadImage } from '../store/images.js';
import { Store } from '../store/store.js';
import { distributable } from '../store/compress.js';
import type { Descriptor } from '../oci/types.js';
import { push, type RegistryAccess } from './registry.js';

export type OutputSpec =
  | { type: 'oci'; dest: string }
  | { type: 'docker'; dest: string }
  | { type: 'local'; dest: string }
  | { type: 'registry'; name?: string };

/** `type=oci,dest=out.tar` → OutputSpec (docker's -o syntax). */
export function parseOutput(text: string): OutputSpec {
  const fields = Object.fromEntries(
    text.split(',').map((kv) => {
      const eq = kv.indexOf('=');
      return eq < 0 ? [kv.trim(), ''] : [kv.slice(0, eq).trim(), kv.slice(eq + 1).trim()];
    }),
  );
  const type = fields.type ?? (text.includes('=') ? undefined : 'local');
  const dest = fields.dest ?? (text.includes('=') ? undefined : text);
  switch (type) {
    case 'oci':
    case 'docker':
    case 'local':
      if (!dest) throw new OptionError('OUTPUT_INVALID', `-o ${text}: type=${type} needs dest=PATH`);
      return { type, dest };
    case 'registry':
    case 'image':
      return fields.name ? { type: 'registry', name: fields.name } : { type: 'registry' };
    default:
      throw new OptionError('OUTPUT_INVALID', `-o ${text}: unknown output type "${type}" (oci, docker, local, registry)`);
  }
}

export async function writeOutputs(
  root: string,
  descriptor: Descriptor,
  names: string[],
  outputs: OutputSpec[],
  access: RegistryAccess,
): Promise<void> {
  if (outputs.length === 0) return;
  const store = await Store.open(root);
  try {
    await writeEach(store, descriptor, names, outputs, access);
  } finally {
    await store.releaseLease();
  }
}

async function writeEach(store: Store, descriptor: Descriptor, names: string[], outputs: OutputSpec[], access: RegistryAccess): Promise<void> {
  const root = store.root;
  const local = await loadImage(store, descriptor);
  // An OCI layout gets gzip layers, as BuildKit's OCI exporter writes; a docker archive keeps
  // them as stored, uncompressed (what docker save writes).
  const compressed = outputs.some((o) => o.type === 'oci') ? await distributable(store, local) : local;
  for (const out of outputs) {
    if (out.type === 'registry') {
      const targets = out.name ? out.name.split(',') : names;
      if (targets.length === 0) throw new OptionError('OUTPUT_INVALID', '-o type=registry needs name=... or -t');
      for (const t of targets) await push({ ...access, root, image: descriptor.digest, destination: t });
      continue;
    }
    const image = out.type === 'oci' ? compressed : local;
    if (out.type === 'local') {
      await mkdir(out.dest, { recursive: true });
      for (const l of image.layers) {
        const raw = l.open();
        const stream = layerCompression(l.mediaType) === 'gzip' ? raw.pipe(zlib().createGunzip()) : raw;
        await applyLayer(out.dest, stream, { what: `layer ${l.digest}` });
      }
      continue;
    }
    if (out.type === 'oci' && !out.dest.endsWith('.tar')) {
      // An OCI layout directory.
      const dir = out.dest;
      await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
      const blobs = [image.digest, image.configDigest, ...image.layers.map((l) => l.digest)];
      for (const d of blobs) await copyFile(store.blobPath(d), path.join(dir, 'blobs', 'sha256', d.slice(7)));
      await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      const manifests = (names.length ? names : [undefined]).map((n) => ({
        mediaType: image.mediaType || MediaType.ociManifest,
        digest: image.digest,
        size: image.rawManifest.length,
        ...(n ? { annotations: { [REF_NAME_ANNOTATION]: n } } : {}),
      }));
      await writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
      continue;
    }
    const tmp = `${out.dest}.${process.pid}.tmp`;
    try {
      await saveImages(store, [{ image, names }], createWriteStream(tmp), out.type);
      await rename(tmp, out.dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
