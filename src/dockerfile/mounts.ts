/**
 * `RUN --mount=type=bind|cache|tmpfs|secret|ssh,...`: the value is one CSV record of
 * `key=value` fields (BuildKit's commands_runmount.go). Parsed before expansion to
 * reject bad syntax early, and again by the planner on the expanded text.
 */

import { suggest } from './flags.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

export interface Mount {
  type: MountType;
  /** Where the mount appears in the RUN's filesystem. */
  target?: string;
  /** Path inside `from` (bind, cache) or the context. */
  source?: string;
  /** A stage name or index, or an image, to mount from (bind, cache). */
  from?: string;
  readOnly: boolean;
  /** Cache id (cache), secret id (secret), ssh agent id (ssh). */
  id?: string;
  sharing?: CacheSharing;
  mode?: number;
  uid?: number;
  gid?: number;
  /** secret, ssh: fail the build when the secret or agent is not provided. */
  required?: boolean;
  /** tmpfs size in bytes. */
  size?: number;
  /** secret: expose the secret as this environment variable. */
  env?: string;
}

export class MountError extends Error {}

const TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

/** Split one CSV record (encoding/csv rules: `"` quotes a field, `""` inside is a quote). */
export function splitCsv(value: string): string[] {
  const fields: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let fieldStart = true;
  while (i < value.length) {
    const ch = value[i] as string;
    if (quoted) {
      if (ch === '"') {
        if (value[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && fieldStart) {
      quoted = true;
      fieldStart = false;
      i++;
      continue;
    }
    if (ch === ',') {
      fields.push(field);
      field = '';
      fieldStart = true;
      i++;
      continue;
    }
    field += ch;
    fieldStart = false;
    i++;
  }
  if (quoted) throw new MountError(`unterminated quote in mount "${value}"`);
  fields.push(field);
  return fields;
}

function parseBool(key: string, value: string): boolean {
  const v = value.toLowerCase();
  if (['1', 't', 'true'].includes(v)) return true;
  if (['0', 'f', 'false'].includes(v)) return false;
  throw new MountError(`invalid value for ${key}: ${value}`);
}

function parseUint(key: string, value: string, radix: 8 | 10): number {
  const re = radix === 8 ? /^0?[0-7]+$/ : /^\d+$/;
  if (!re.test(value)) throw new MountError(`invalid value for ${key}: ${value}`);
  const n = Number.parseInt(value, radix);
  if (!Number.isSafeInteger(n) || n > 0xffffffff) throw new MountError(`invalid value for ${key}: ${value}`);
  return n;
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3 };

function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value);
  const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new MountError(`invalid value for size: ${value}`);
  return Math.floor(Number(m[1]) * unit);
}

/** The keys a mount takes, for "did you mean" (BuildKit's list). */
const KEYS = ['type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw', 'required', 'id', 'sharing', 'mode', 'uid', 'gid', 'size', 'env'] as const;

/** ` (did you mean X?)` when `word` is close to one of `candidates`, as BuildKit words it. */
function didYouMean(word: string, candidates: readonly string[]): string {
  const s = suggest(word, candidates);
  return s ? ` (did you mean ${s}?)` : '';
}

export function parseMount(value: string): Mount {
  const fields = splitCsv(value);
  let type: MountType = 'bind';
  const typeField = fields.find((f) => f.split('=')[0]?.trim().toLowerCase() === 'type');
  if (typeField !== undefined) {
    const t = typeField.slice(typeField.indexOf('=') + 1).toLowerCase();
    if (!(TYPES as readonly string[]).includes(t)) throw new MountError(`unsupported mount type "${t}"${didYouMean(t, TYPES)}`);
    type = t as MountType;
  }
  const mount: Mount = { type, readOnly: type === 'bind' };
  let roSet = false;
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? undefined : field.slice(eq + 1);
    if (key === '') throw new MountError(`invalid field '' in mount "${value}"`);
    if (val === undefined) {
      // Bare keywords: ro, rw, readonly, readwrite, required.
      switch (key) {
        case 'readonly':
        case 'ro':
          mount.readOnly = true;
          roSet = true;
          continue;
        case 'readwrite':
        case 'rw':
          mount.readOnly = false;
          roSet = true;
          continue;
        case 'required':
          mount.required = true;
          continue;
        default:
          throw new MountError(`invalid field '${field}' must be a key=value pair`);
      }
    }
    switch (key) {
      case 'type':
        break;
      case 'from':
        mount.from = val;
        break;
      case 'source':
      case 'src':
        mount.source = val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        mount.target = val;
        break;
      case 'readonly':
      case 'ro':
        mount.readOnly = parseBool(key, val);
        roSet = true;
        break;
      case 'readwrite':
      case 'rw':
        mount.readOnly = !parseBool(key, val);
        roSet = true;
        break;
      case 'required':
        mount.required = parseBool(key, val);
        break;
      case 'id':
        mount.id = val;
        break;
      case 'sharing':
        if (!['shared', 'private', 'locked'].includes(val)) {
          throw new MountError(`unsupported sharing value "${val}"`);
        }
        mount.sharing = val as CacheSharing;
        break;
      case 'mode':
        mount.mode = parseUint(key, val, 8);
        break;
      case 'uid':
        mount.uid = parseUint(key, val, 10);
        break;
      case 'gid':
        mount.gid = parseUint(key, val, 10);
        break;
      case 'size':
        if (type !== 'tmpfs') throw new MountError('size is only supported for tmpfs mounts');
        mount.size = parseSize(val);
        break;
      case 'env':
        if (type !== 'secret') throw new MountError('env is only supported for secret mounts');
        mount.env = val;
        break;
      default:
        throw new MountError(`unexpected key '${key}' in '${field}'${didYouMean(key, KEYS)}`);
    }
  }
  return validate(mount, roSet);
}

function validate(mount: Mount, roSet: boolean): Mount {
  const { type } = mount;
  if (type === 'secret' || type === 'ssh') {
    if (mount.from !== undefined) throw new MountError(`'from' is not supported for ${type} mounts`);
    if (!roSet) mount.readOnly = true;
    if (type === 'secret') {
      if (mount.id === undefined && mount.target === undefined && mount.env === undefined) {
        throw new MountError('secret mount needs an id, a target or an env');
      }
      if (mount.id === undefined && mount.target !== undefined) mount.id = basename(mount.target);
      if (mount.target === undefined && mount.env === undefined) mount.target = `/run/secrets/${mount.id}`;
    } else {
      // No target: /run/buildkit/ssh_agent.<n>, n counting the RUN's ssh mounts (the executor's).
      mount.id ??= 'default';
    }
    return mount;
  }
  if (mount.required !== undefined) throw new MountError(`'required' is only supported for secret and ssh mounts`);
  if (mount.target === undefined) throw new MountError(`mount type ${type} needs a target`);
  if (type === 'tmpfs') {
    if (mount.from !== undefined || mount.source !== undefined) {
      throw new MountError(`'from' and 'source' are not supported for tmpfs mounts`);
    }
    return mount;
  }
  if (type === 'cache') {
    mount.id ??= mount.target;
    mount.sharing ??= 'shared';
    if (!roSet) mount.readOnly = false;
  } else if (mount.sharing !== undefined || mount.id !== undefined) {
    throw new MountError(`'sharing' and 'id' are only supported for cache mounts`);
  }
  return mount;
}

function basename(p: string): string {
  const parts = p.split('/').filter((s) => s !== '');
  return parts[parts.length - 1] ?? p;
}
