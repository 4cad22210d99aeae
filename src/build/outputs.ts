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
import { formatReference, normalizeReference } from '../oci/reference.js';
import { applyLayer } from '../rootfs/apply.js';
import { loadImage } from '../store/images.js';
import { Store } from '../store/store.js';
import { distributable } from '../store/compress.js';
import type { Descriptor } from '../oci/types.js';
import { push, type RegistryAccess } from './registry.js';

export type OutputSpec =
  | { type: 'oci'; dest: string; tar?: boolean; names?: string[] }
  | { type: 'docker'; dest: string; names?: string[] }
  | { type: 'local'; dest: string }
  | { type: 'registry'; name?: string }
  /** An image in the store, pushed too with push=true (buildx's type=image). */
  | { type: 'image'; name?: string; push: boolean };

/** The keys each output type takes; any other is refused, never ignored. */
const OUTPUT_KEYS: Record<string, readonly string[]> = {
  local: ['type', 'dest'],
  oci: ['type', 'dest', 'name', 'tar'],
  docker: ['type', 'dest', 'name'],
  registry: ['type', 'name', 'push'],
  image: ['type', 'name', 'push'],
};

/** `type=oci,dest=out.tar` → OutputSpec (docker buildx's -o syntax; a bare path is type=local). */
export function parseOutput(text: string): OutputSpec {
  const bad = (why: string): OptionError => new OptionError('OUTPUT_INVALID', `-o ${text}: ${why}`);
  if (text === '-') throw bad('writing the output to standard output is not supported yet; give a path (type=local,dest=DIR or type=oci,dest=FILE.tar)');
  if (!text.includes('=')) return { type: 'local', dest: text };
  const fields = new Map<string, string>();
  for (const kv of text.split(',')) {
    const eq = kv.indexOf('=');
    const key = (eq < 0 ? kv : kv.slice(0, eq)).trim();
    if (key === '') throw bad('an empty key');
    if (fields.has(key)) throw bad(`${key} given twice`);
    fields.set(key, eq < 0 ? '' : kv.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  if (type === undefined) throw bad('no type= (local, oci, docker, registry, image)');
  const keys = OUTPUT_KEYS[type];
  if (!keys) throw bad(`unknown output type "${type}" (local, oci, docker, registry, image)`);
  for (const key of fields.keys()) {
    if (!keys.includes(key)) throw bad(`type=${type} does not take ${key}= here (it takes ${keys.filter((k) => k !== 'type').join(', ')})`);
  }
  const bool = (key: string, fallback: boolean): boolean => {
    const v = fields.get(key);
    if (v === undefined) return fallback;
    if (v === 'true' || v === '') return true;
    if (v === 'false') return false;
    throw bad(`${key}=${v}: expected true or false`);
  };
  const dest = fields.get('dest');
  const names = fields.get('name')?.split(/[,\n]/).map((n) => n.trim()).filter(Boolean);
  switch (type) {
    case 'local':
      if (!dest) throw bad('type=local needs dest=DIR');
      return { type, dest };
    case 'oci':
    case 'docker':
      if (!dest) throw bad(`type=${type} needs dest=FILE (a tar${type === 'oci' ? ', or a directory with tar=false' : ''})`);
      if (type === 'oci') return { type, dest, tar: bool('tar', true), ...(names ? { names } : {}) };
      return { type, dest, ...(names ? { names } : {}) };
    case 'registry':
      if (!bool('push', true)) throw bad('type=registry always pushes; use type=image for an image kept in the store');
      return { type, ...(fields.get('name') ? { name: fields.get('name') } : {}) };
    default:
      return { type: 'image', push: bool('push', false), ...(fields.get('name') ? { name: fields.get('name') } : {}) };
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
    if (out.type === 'registry' || out.type === 'image') {
      const targets = out.name ? out.name.split(',') : names;
      if (targets.length === 0) throw new OptionError('OUTPUT_INVALID', `-o type=${out.type} needs name=... or -t`);
      // type=image keeps the image in the store under those names (the build tagged -t's already).
      for (const t of targets) {
        const ref = formatReference(normalizeReference(t));
        if (!names.includes(ref)) await store.tag(ref, descriptor);
      }
      if (out.type === 'image' && !out.push) continue;
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
    const archiveNames = out.names?.map((n) => formatReference(normalizeReference(n))) ?? names;
    if (out.type === 'oci' && out.tar === false) {
      // An OCI layout directory.
      const dir = out.dest;
      await mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
      const blobs = [image.digest, image.configDigest, ...image.layers.map((l) => l.digest)];
      for (const d of blobs) await copyFile(store.blobPath(d), path.join(dir, 'blobs', 'sha256', d.slice(7)));
      await writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
      const manifests = (archiveNames.length ? archiveNames : [undefined]).map((n) => ({
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
      await saveImages(store, [{ image, names: archiveNames }], createWriteStream(tmp), out.type);
      await rename(tmp, out.dest);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
