/**
 * Where a built image goes besides the store: an OCI layout (directory or tar), a
 * docker-archive tar, a plain directory or a tar with the root filesystem, or a registry.
 * A tar output may go to standard output (`dest=-`, or `-o -`: a tar of the root filesystem).
 */
import { mkdir } from 'node:fs/promises';
import { OptionError } from '../errors/index.js';
import { layerTar } from '../tar/decompress.js';
import { saveImages, saveLayoutDirectory } from '../archive/save.js';
import { exportImage, exportImagesUnder } from '../archive/export.js';
import { toFile } from '../archive/commands.js';
import { isIndex, type Image, type ImageIndex } from '../image/image.js';
import { layerCompression } from '../oci/media-types.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import { applyLayer } from '../rootfs/apply.js';
import { loadAny } from '../store/images.js';
import path from 'node:path';
import { configPlatform } from '../oci/platform.js';
import type { Store } from '../store/store.js';
import { checkFormat, distributable, distributableIndex, type LayerFormat } from '../store/compress.js';
import type { Descriptor } from '../oci/types.js';
import { pushWith, type RegistryAccess } from './registry.js';
import type { PushResult } from '../registry/push.js';

/** What writing an output tells while it runs. */
export type ExportEvent =
  | { type: 'export'; name: string; status: 'start' }
  /** A push's blob, as the registry has it now. */
  | { type: 'export'; name: string; status: 'blob'; digest: string; result: 'exists' | 'mounted' | 'uploaded' }
  | { type: 'export'; name: string; status: 'done'; seconds: number };

export type OutputSpec =
  | { type: 'oci'; dest: string; tar?: boolean; names?: string[]; format?: LayerFormat }
  | { type: 'docker'; dest: string; names?: string[]; format?: LayerFormat }
  | { type: 'local'; dest: string }
  /** The root filesystem as one tar (`-`: standard output). */
  | { type: 'tar'; dest: string }
  | { type: 'registry'; name?: string; format?: LayerFormat }
  /** An image in the store, pushed too with push=true (buildx's type=image). */
  | { type: 'image'; name?: string; push: boolean; format?: LayerFormat };

/** The keys of how layers are written (BuildKit's image exporters'). */
const FORMAT_KEYS = ['compression', 'compression-level', 'force-compression', 'oci-mediatypes'] as const;

/** The keys each output type takes; any other is refused, never ignored. */
const OUTPUT_KEYS: Record<string, readonly string[]> = {
  local: ['type', 'dest'],
  tar: ['type', 'dest'],
  oci: ['type', 'dest', 'name', 'tar', ...FORMAT_KEYS],
  docker: ['type', 'dest', 'name', ...FORMAT_KEYS],
  registry: ['type', 'name', 'push', ...FORMAT_KEYS],
  image: ['type', 'name', 'push', ...FORMAT_KEYS],
};

/**
 * The comma-separated fields of `text` as Go's encoding/csv reads one record (buildx reads -o
 * so): a field in double quotes may hold commas, `""` in it is a quote.
 */
export function csvFields(text: string, bad: (why: string) => Error): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw bad('a quoted field is not closed');
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
      if (i < text.length && text[i] !== ',') throw bad('extraneous or missing " in a quoted field');
    } else {
      const end = text.indexOf(',', i);
      field = text.slice(i, end < 0 ? text.length : end);
      if (field.includes('"')) throw bad('bare " in a field that is not quoted');
      i = end < 0 ? text.length : end;
    }
    out.push(field);
    if (i >= text.length) return out;
    i++; // the comma
  }
}

/** `type=oci,dest=out.tar` → OutputSpec (docker buildx's -o syntax; a bare path is type=local). */
export function parseOutput(text: string): OutputSpec {
  const bad = (why: string): OptionError => new OptionError('OUTPUT_INVALID', `-o ${text}: ${why}`);
  // As buildx: `-` alone is a tar of the root filesystem on standard output.
  if (text === '-') return { type: 'tar', dest: '-' };
  if (!text.includes('=')) return { type: 'local', dest: text };
  const fields = new Map<string, string>();
  for (const kv of csvFields(text, bad)) {
    const eq = kv.indexOf('=');
    const key = (eq < 0 ? kv : kv.slice(0, eq)).trim();
    if (key === '') throw bad('an empty key');
    if (fields.has(key)) throw bad(`${key} given twice`);
    fields.set(key, eq < 0 ? '' : kv.slice(eq + 1).trim());
  }
  const type = fields.get('type');
  if (type === undefined) throw bad('no type= (local, tar, oci, docker, registry, image)');
  const keys = OUTPUT_KEYS[type];
  if (!keys) throw bad(`unknown output type "${type}" (local, tar, oci, docker, registry, image)`);
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
  const format: LayerFormat = {};
  const compression = fields.get('compression');
  if (compression !== undefined) {
    if (compression !== 'gzip' && compression !== 'zstd' && compression !== 'uncompressed') {
      throw bad(`compression=${compression}: expected gzip, zstd or uncompressed${compression === 'estargz' ? ' (eStargz is not supported)' : ''}`);
    }
    format.compression = compression;
  }
  const level = fields.get('compression-level');
  if (level !== undefined) {
    if (!/^\d+$/.test(level)) throw bad(`compression-level=${level}: expected a number`);
    format.level = Number(level);
  }
  if (fields.has('force-compression')) format.force = bool('force-compression', false);
  if (fields.has('oci-mediatypes')) format.ociMediaTypes = bool('oci-mediatypes', true);
  try {
    checkFormat(format);
  } catch (err) {
    throw bad((err as Error).message);
  }
  const withFormat = Object.keys(format).length > 0 ? { format } : {};
  const names = fields.get('name')?.split(/[,\n]/).map((n) => n.trim()).filter(Boolean);
  switch (type) {
    case 'local':
      if (!dest) throw bad('type=local needs dest=DIR');
      if (dest === '-') throw bad('type=local writes a directory; for standard output use type=tar,dest=-');
      return { type, dest };
    case 'tar':
      if (!dest) throw bad('type=tar needs dest=FILE (or - for standard output)');
      return { type, dest };
    case 'oci':
    case 'docker':
      if (!dest) throw bad(`type=${type} needs dest=FILE (a tar${type === 'oci' ? ', or a directory with tar=false' : ''})`);
      if (type === 'oci') {
        const tar = bool('tar', true);
        if (!tar && dest === '-') throw bad('tar=false writes a directory, not standard output');
        return { type, dest, tar, ...(names ? { names } : {}), ...withFormat };
      }
      return { type, dest, ...(names ? { names } : {}), ...withFormat };
    case 'registry':
      if (!bool('push', true)) throw bad('type=registry always pushes; use type=image for an image kept in the store');
      return { type, ...(fields.get('name') ? { name: fields.get('name') } : {}), ...withFormat };
    default:
      return { type: 'image', push: bool('push', false), ...(fields.get('name') ? { name: fields.get('name') } : {}), ...withFormat };
  }
}

/** Writes each output of a build, in the build's store scope; returns what was pushed (the registry's names and digests). */
export async function writeOutputs(
  store: Store,
  descriptor: Descriptor,
  names: string[],
  outputs: OutputSpec[],
  access: RegistryAccess,
  onExport: (e: ExportEvent) => void = () => undefined,
  signal?: AbortSignal,
): Promise<PushResult[]> {
  if (outputs.length === 0) return [];
  if (outputs.filter((o) => 'dest' in o && o.dest === '-').length > 1) throw new OptionError('OUTPUT_INVALID', 'only one output can go to standard output');
  const pushed: PushResult[] = [];
  /** `fn`, told as an export that starts and ends. */
  const told = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    signal?.throwIfAborted(); // cancelled: no output is begun
    const started = performance.now();
    onExport({ type: 'export', name, status: 'start' });
    const r = await fn();
    onExport({ type: 'export', name, status: 'done', seconds: (performance.now() - started) / 1000 });
    return r;
  };
  const local = await loadAny(store, descriptor);
  const made = new Map<string, Promise<Image | ImageIndex>>();
  /** The image with its layers as `format` says (each form made once per build). */
  const formatted = (format: LayerFormat = {}): Promise<Image | ImageIndex> => {
    const key = JSON.stringify(format);
    let p = made.get(key);
    if (!p) made.set(key, (p = isIndex(local) ? distributableIndex(store, local, { format }) : distributable(store, local, { format })));
    return p;
  };
  for (const out of outputs) {
    const where = 'dest' in out ? (out.dest === '-' ? 'standard output' : out.dest) : '';
    switch (out.type) {
      case 'registry':
      case 'image': {
        const targets = out.name ? out.name.split(',') : names;
        if (targets.length === 0) throw new OptionError('OUTPUT_INVALID', `-o type=${out.type} needs name=... or -t`);
        // type=image keeps the image in the store under those names (the build tagged -t's already).
        for (const t of targets) {
          const ref = formatReference(normalizeReference(t));
          if (!names.includes(ref)) await store.tag(ref, descriptor);
        }
        if (out.type === 'image' && !out.push) break;
        for (const t of targets) {
          const name = formatReference(normalizeReference(t));
          const what = `pushing ${name}`;
          const onBlob = (b: { digest: string; status: 'exists' | 'mounted' | 'uploaded' }): void => onExport({ type: 'export', name: what, status: 'blob', digest: b.digest, result: b.status });
          pushed.push(await told(what, () => pushWith(store, { ...access, image: descriptor.digest, destination: t, onBlob, ...(out.format ? { format: out.format } : {}), ...(signal ? { signal } : {}) })));
        }
        break;
      }
      case 'local':
        // Several platforms: a directory for each (linux_arm64/...), as BuildKit's local exporter splits them.
        await told(`copying files to ${where}`, async () => {
          for (const { image, dir } of platformDirs(local, out.dest)) await writeDirectory(image, dir);
        });
        break;
      case 'tar':
        // Several platforms: each one's files under its own directory (linux_arm64/...), as BuildKit's tar exporter.
        await told(`sending a tarball of the files to ${where}`, () =>
          toFile(out.dest, (stream) => (isIndex(local) ? exportImagesUnder(platformDirs(local, '').map(({ image, dir }) => ({ image, prefix: dir })), stream) : exportImage(local, stream))),
        );
        break;
      case 'oci':
      case 'docker': {
        // An OCI layout gets gzip layers (BuildKit's OCI exporter); a docker archive keeps them
        // as stored unless a compression is asked for.
        const image = out.type === 'oci' || out.format ? await formatted(out.format) : local;
        const archiveNames = out.names?.map((n) => formatReference(normalizeReference(n))) ?? names;
        const format = out.type === 'oci' ? 'an OCI image layout' : 'a docker image archive';
        if (out.type === 'oci' && out.tar === false) await told(`writing ${format} to ${where}`, () => saveLayoutDirectory([{ image, names: archiveNames }], out.dest));
        else await told(`writing ${format} to ${where}`, () => toFile(out.dest, (stream) => saveImages([{ image, names: archiveNames }], stream, out.type)));
        break;
      }
    }
  }
  return pushed;
}

/** Where each platform's files go: `dest` itself for one image, `dest/os_arch[_variant]` for each of several. */
function platformDirs(local: Image | ImageIndex, dest: string): { image: Image; dir: string }[] {
  if (!isIndex(local)) return [{ image: local, dir: dest }];
  return local.images.map((image) => ({ image, dir: path.join(dest, configPlatform(image.config).replace(/\//g, '_')) }));
}

/** The image's files, its layers applied in order, into a directory. */
async function writeDirectory(image: Image, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const l of image.layers) {
    await applyLayer(dest, layerTar(l.open(), layerCompression(l.mediaType), `layer ${l.digest}`), { what: `layer ${l.digest}` });
  }
}

