/**
 * ADD's git sources, read as Docker 28.5's Dockerfile frontend (BuildKit 0.25) reads them: an
 * http(s) URL whose path ends in `.git`, or a `git://` URL, with an optional fragment
 * `#ref[:subdir]` and an optional query (`?ref=`, `?tag=`, `?branch=`, `?subdir=`, `?commit=` or
 * `?checksum=`, `?keep-git-dir[=bool]`, `?submodules[=bool]`); and ADD's flags merged with them.
 * Pure: it clones nothing (build/sources.ts does).
 */
import path from 'node:path';
import { GantryError } from '../errors/index.js';

export interface GitRef {
  /** The repository's URL as git is given it: no query, no fragment. */
  remote: string;
  /** A branch, a tag or a commit (as `refs/heads/…`, `refs/tags/…` from `?branch=`, `?tag=`); the default branch without one. */
  ref?: string;
  subdir?: string;
  /** `?commit=` or `?checksum=`: the hex commit hash (or a prefix of it) the checkout must be. */
  checksum?: string;
  keepGitDir?: boolean;
  submodules?: boolean;
}

/** How a git source is checked out, its query and ADD's flags merged. */
export interface GitOptions {
  keepGitDir: boolean;
  checksum?: string;
  submodules: boolean;
}

const fail = (message: string): never => {
  throw new GantryError('ADD_GIT', message);
};

/** `src` as a git source, or undefined when it is none. Throws on an ssh URL (not supported) and on a bad query. */
export function parseGitRef(src: string): GitRef | undefined {
  const end = src.search(/[?#]/);
  const remote = end < 0 ? src : src.slice(0, end);
  if (/^ssh:\/\//i.test(remote) || /^[\w.-]+@[\w.-]+:/.test(remote)) {
    fail(`${src}: a git repository over ssh is not supported yet (use its https:// or git:// URL)`);
  }
  if (!isGitRemote(remote)) return undefined;
  const rest = end < 0 ? '' : src.slice(end);
  const hash = rest.indexOf('#');
  const query = rest.startsWith('?') ? rest.slice(1, hash < 0 ? undefined : hash) : '';
  const ref: GitRef = { remote, ...parseFragment(hash < 0 ? '' : rest.slice(hash + 1)) };
  if (query !== '') applyQuery(ref, query);
  return ref;
}

function isGitRemote(remote: string): boolean {
  if (/^git:\/\//i.test(remote)) return true;
  if (!/^https?:\/\//i.test(remote)) return false;
  try {
    return new URL(remote).pathname.endsWith('.git');
  } catch {
    return false;
  }
}

/** `ref[:subdir]`; the subdirectory cleaned (never above the repository's root). */
function parseFragment(fragment: string): Pick<GitRef, 'ref' | 'subdir'> {
  const colon = fragment.indexOf(':');
  const ref = colon < 0 ? fragment : fragment.slice(0, colon);
  const subdir = colon < 0 ? '' : path.posix.join('/', fragment.slice(colon + 1)).slice(1);
  return { ...(ref ? { ref } : {}), ...(subdir ? { subdir } : {}) };
}

/** Keys that may be given without a value (meaning true). */
const VALUELESS = new Set(['keep-git-dir', 'submodules']);

function applyQuery(ref: GitRef, query: string): void {
  const params = new URLSearchParams(query);
  let tag = '';
  let branch = '';
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    if (values.length > 1) fail(`query "${key}" has multiple values`);
    const value = values[0] as string;
    if (value === '' && !VALUELESS.has(key)) fail(`query "${key}" has no value`);
    switch (key) {
      case 'ref':
        ref.ref = merged('ref', ref.ref, value);
        break;
      case 'tag':
        tag = value;
        break;
      case 'branch':
        branch = value;
        break;
      case 'subdir':
        // Cleaned as the fragment's is, so `?subdir=/docs#main:/docs` agrees with itself.
        ref.subdir = merged('subdir', ref.subdir, path.posix.join('/', value).slice(1));
        break;
      case 'checksum':
      case 'commit':
        ref.checksum = value;
        break;
      case 'keep-git-dir':
      case 'submodules':
        ref[key === 'submodules' ? 'submodules' : 'keepGitDir'] = queryBool(key, value);
        break;
      default:
        fail(`unexpected query "${key}"`);
    }
  }
  if (tag && branch) fail('branch conflicts with tag');
  if (tag) ref.ref = merged('ref', ref.ref, qualified('refs/tags/', tag));
  if (branch) ref.ref = merged('ref', ref.ref, qualified('refs/heads/', branch));
}

/** A value given twice (fragment and query) must be the same. */
function merged(what: string, before: string | undefined, value: string): string {
  if (before && before !== value) fail(`${what} conflicts: "${before}" vs "${value}"`);
  return value;
}

const qualified = (prefix: string, name: string): string => (name.startsWith(prefix) ? name : prefix + name);

/** A boolean as Go's strconv.ParseBool reads it; no value is true. */
function queryBool(key: string, value: string): boolean {
  if (value === '' || /^(1|t|T|TRUE|true|True)$/.test(value)) return true;
  if (/^(0|f|F|FALSE|false|False)$/.test(value)) return false;
  return fail(`invalid ${key} value: "${value}"`);
}

/**
 * ADD's `--keep-git-dir` and `--checksum` merged with the source's query: each may be in either,
 * and must agree when in both. The checksum of a git source is a hex commit hash or a prefix of one.
 */
export function gitOptions(ref: GitRef, flags: { keepGitDir?: boolean; checksum?: string }): GitOptions {
  if (flags.keepGitDir !== undefined && ref.keepGitDir !== undefined && flags.keepGitDir !== ref.keepGitDir) {
    fail('inconsistent keep-git-dir configuration');
  }
  if (flags.checksum && ref.checksum && flags.checksum !== ref.checksum) fail(`checksum mismatch "${flags.checksum}" != "${ref.checksum}"`);
  const checksum = ref.checksum ?? (flags.checksum || undefined);
  if (checksum !== undefined && !/^[0-9a-fA-F]+$/.test(checksum)) fail(`invalid checksum ${checksum} for Git URL, expected hex commit hash`);
  return { keepGitDir: ref.keepGitDir ?? flags.keepGitDir ?? false, submodules: ref.submodules ?? true, ...(checksum !== undefined ? { checksum } : {}) };
}
