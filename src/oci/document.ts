/**
 * Registry documents as untrusted input: their size and nesting are bounded before they are
 * parsed, and their shape is checked before anything reads a field of them, so that a
 * registry that lies (an index listed as a manifest, a manifest without a config, a layer list
 * that is not a list, a config nested 100,000 deep) gets an error naming the document rather
 * than a TypeError or a stack overflow deep in the build.
 *
 * The checks return what is wrong (a phrase) or undefined; the caller says which document it
 * was and raises its own kind of error.
 */
import { parseDigest } from './digest.js';

/** The most bytes of a manifest or index gantry reads (Docker Hub's own limit is 4 MiB). */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

/** The most bytes of an image config gantry reads (real ones are a few KiB; one of 100 layers' history is ~50 KiB). */
export const CONFIG_SIZE_LIMIT = 8 * 1024 * 1024;

/**
 * How deep objects and arrays may nest in a registry document. The deepest field of the specs
 * is at depth 4 (a config's `config.Healthcheck.Test`); Go's decoder, which BuildKit uses,
 * stops at 10,000, but V8's structuredClone and JSON.stringify (which the build applies to a
 * base image's config) overflow their stack at a few thousand, so gantry stops at 100.
 */
export const DOCUMENT_DEPTH_LIMIT = 100;

/**
 * How deep `{` and `[` nest in a JSON text, or the first depth past `limit` (the scan stops
 * there); strings are skipped, escapes included. Linear and iterative: safe on any input.
 */
export function jsonDepth(bytes: Uint8Array, limit = DOCUMENT_DEPTH_LIMIT): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (inString) {
      if (b === 0x5c) i++; // a backslash: the next byte is escaped
      else if (b === 0x22) inString = false;
      continue;
    }
    if (b === 0x22) inString = true;
    else if (b === 0x7b || b === 0x5b) {
      depth++;
      if (depth > max) {
        max = depth;
        if (max > limit) return max;
      }
    } else if (b === 0x7d || b === 0x5d) depth--;
  }
  return max;
}

/** Parse a document whose bytes were bounded already: too deep, or not JSON, is a problem. */
export function parseDocument(bytes: Uint8Array): { json: unknown } | { problem: string } {
  if (jsonDepth(bytes) > DOCUMENT_DEPTH_LIMIT) {
    return { problem: `nested more than ${DOCUMENT_DEPTH_LIMIT} levels deep (the limit on registry documents)` };
  }
  try {
    return { json: JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')) as unknown };
  } catch (err) {
    return { problem: `not valid JSON (${(err as Error).message})` };
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const kind = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : `a ${typeof v}`);
const isStringMap = (v: unknown): boolean => isObject(v) && Object.values(v).every((x) => typeof x === 'string');
const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** What is wrong with a descriptor (`what` names it in the answer), or undefined. */
export function descriptorProblem(d: unknown, what: string): string | undefined {
  if (!isObject(d)) return `${what} is ${kind(d)}, not a descriptor`;
  if (typeof d.mediaType !== 'string') return `${what} has no mediaType`;
  if (typeof d.digest !== 'string') return `${what} has no digest`;
  try {
    parseDigest(d.digest);
  } catch (err) {
    return `${what}: ${(err as Error).message}`;
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) return `${what} (${d.digest}) has an invalid size ${JSON.stringify(d.size)}`;
  if (d.urls !== undefined && !isStringList(d.urls)) return `${what} (${d.digest}) has urls that are not a list of strings`;
  if (d.annotations !== undefined && !isStringMap(d.annotations)) return `${what} (${d.digest}) has annotations that are not strings`;
  if (d.platform !== undefined) {
    const p = d.platform;
    if (!isObject(p) || typeof p.os !== 'string' || typeof p.architecture !== 'string') return `${what} (${d.digest}) has a platform without os and architecture`;
    if (p.variant !== undefined && typeof p.variant !== 'string') return `${what} (${d.digest}) has a platform variant that is not a string`;
  }
  return undefined;
}

/** What is wrong with an image manifest's shape (config and layers descriptors), or undefined. */
export function manifestProblem(m: unknown): string | undefined {
  if (!isObject(m)) return `it is ${kind(m)}, not a manifest`;
  if (m.schemaVersion !== 2) return `unsupported schemaVersion ${JSON.stringify(m.schemaVersion)}`;
  if (m.config === undefined) return 'it has no config descriptor';
  const config = descriptorProblem(m.config, 'its config');
  if (config) return config;
  if (!Array.isArray(m.layers)) return `its layers are ${kind(m.layers)}, not a list`;
  for (const [i, l] of m.layers.entries()) {
    const problem = descriptorProblem(l, `layer ${i}`);
    if (problem) return problem;
  }
  if (m.subject !== undefined) return descriptorProblem(m.subject, 'its subject');
  if (m.annotations !== undefined && !isStringMap(m.annotations)) return 'its annotations are not strings';
  return undefined;
}

/** What is wrong with an image index's shape, or undefined. */
export function indexProblem(x: unknown): string | undefined {
  if (!isObject(x)) return `it is ${kind(x)}, not an index`;
  if (x.schemaVersion !== 2) return `unsupported schemaVersion ${JSON.stringify(x.schemaVersion)}`;
  if (!Array.isArray(x.manifests)) return `its manifests are ${kind(x.manifests)}, not a list`;
  for (const [i, d] of x.manifests.entries()) {
    const problem = descriptorProblem(d, `manifests[${i}]`);
    if (problem) return problem;
  }
  if (x.annotations !== undefined && !isStringMap(x.annotations)) return 'its annotations are not strings';
  return undefined;
}

/**
 * What is wrong with an image config's shape, or undefined: the fields the build reads have the
 * types the image spec gives them (null stands for absent, as Go's decoder takes it; BuildKit
 * refuses the same documents with "cannot unmarshal").
 */
export function configProblem(c: unknown): string | undefined {
  if (!isObject(c)) return `it is ${kind(c)}, not an image config`;
  for (const f of ['architecture', 'os', 'variant', 'created', 'author', 'os.version'] as const) {
    if (c[f] !== undefined && c[f] !== null && typeof c[f] !== 'string') return `its ${f} is ${kind(c[f])}, not a string`;
  }
  if (c['os.features'] !== undefined && c['os.features'] !== null && !isStringList(c['os.features'])) return 'its os.features are not a list of strings';
  const rootfs = c.rootfs;
  if (!isObject(rootfs) || rootfs.type !== 'layers' || !isStringList(rootfs.diff_ids)) return 'it has no rootfs of type "layers" with a list of diff_ids';
  if (c.history !== undefined && c.history !== null) {
    if (!Array.isArray(c.history)) return `its history is ${kind(c.history)}, not a list`;
    for (const [i, h] of c.history.entries()) {
      if (!isObject(h)) return `history[${i}] is ${kind(h)}, not an object`;
      for (const f of ['created', 'created_by', 'author', 'comment'] as const) {
        if (h[f] !== undefined && h[f] !== null && typeof h[f] !== 'string') return `history[${i}].${f} is ${kind(h[f])}, not a string`;
      }
      if (h.empty_layer !== undefined && h.empty_layer !== null && typeof h.empty_layer !== 'boolean') return `history[${i}].empty_layer is not a boolean`;
    }
  }
  const cc = c.config;
  if (cc === undefined || cc === null) return undefined;
  if (!isObject(cc)) return `its config is ${kind(cc)}, not an object`;
  for (const f of ['User', 'WorkingDir', 'StopSignal'] as const) {
    if (cc[f] !== undefined && cc[f] !== null && typeof cc[f] !== 'string') return `config.${f} is ${kind(cc[f])}, not a string`;
  }
  for (const f of ['Env', 'Entrypoint', 'Cmd', 'OnBuild', 'Shell'] as const) {
    if (cc[f] !== undefined && cc[f] !== null && !isStringList(cc[f])) return `config.${f} is not a list of strings`;
  }
  if (cc.Labels !== undefined && cc.Labels !== null && !isStringMap(cc.Labels)) return 'config.Labels are not strings';
  for (const f of ['ExposedPorts', 'Volumes'] as const) {
    if (cc[f] !== undefined && cc[f] !== null && !isObject(cc[f])) return `config.${f} is ${kind(cc[f])}, not an object`;
  }
  if (cc.ArgsEscaped !== undefined && cc.ArgsEscaped !== null && typeof cc.ArgsEscaped !== 'boolean') return 'config.ArgsEscaped is not a boolean';
  const hc = cc.Healthcheck;
  if (hc !== undefined && hc !== null) {
    if (!isObject(hc)) return `config.Healthcheck is ${kind(hc)}, not an object`;
    if (hc.Test !== undefined && hc.Test !== null && !isStringList(hc.Test)) return 'config.Healthcheck.Test is not a list of strings';
    for (const f of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
      if (hc[f] !== undefined && hc[f] !== null && typeof hc[f] !== 'number') return `config.Healthcheck.${f} is not a number`;
    }
  }
  return undefined;
}
