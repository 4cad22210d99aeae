/**
 * Image references, parsed and normalised as Docker does (distribution's reference
 * grammar and ParseNormalizedNamed): `alpine` → `docker.io/library/alpine:latest`.
 */
import { GantryError } from '../errors/index.js';
import { parseDigest } from './digest.js';

export class InvalidReferenceError extends GantryError {
  constructor(reference: string, reason: string) {
    super('REFERENCE_INVALID', `invalid reference "${reference}": ${reason}`);
  }
}

export interface Reference {
  /** Registry host, with port: `docker.io`, `localhost:5000`, `[::1]:5000`. */
  domain: string;
  /** Repository path: `library/alpine`, `team/app`. */
  path: string;
  tag?: string;
  digest?: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_NAME}|${IPV6})(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const NAME_TOTAL_LENGTH_MAX = 255;

export function parseReference(input: string): Reference {
  if (input === '') throw new InvalidReferenceError(input, 'empty reference');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      parseDigest(digest);
    } catch (err) {
      throw new InvalidReferenceError(input, (err as Error).message);
    }
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG_RE.test(tag)) throw new InvalidReferenceError(input, `invalid tag "${tag}"`);
  }
  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash < 0 ? '' : rest.slice(0, slash);
  if (slash < 0 || (!first.includes('.') && !first.includes(':') && first !== 'localhost' && first.toLowerCase() === first)) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else {
    domain = first;
    path = rest.slice(slash + 1);
  }
  if (domain === LEGACY_DEFAULT_DOMAIN) domain = DEFAULT_DOMAIN;
  if (!DOMAIN_RE.test(domain)) throw new InvalidReferenceError(input, `invalid registry host "${domain}"`);
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (path === '') throw new InvalidReferenceError(input, 'missing repository name');
  if (path !== path.toLowerCase()) throw new InvalidReferenceError(input, 'repository name must be lowercase');
  for (const component of path.split('/')) {
    if (!PATH_COMPONENT_RE.test(component)) {
      throw new InvalidReferenceError(input, `invalid repository path component "${component}"`);
    }
  }
  if (/^[a-f0-9]{64}$/.test(path.replace(OFFICIAL_PREFIX, ''))) {
    throw new InvalidReferenceError(input, 'repository name cannot be a 64-character hexadecimal string (reserved for image IDs)');
  }
  if (`${domain}/${path}`.length > NAME_TOTAL_LENGTH_MAX) {
    throw new InvalidReferenceError(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  }
  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** Parse and fill in the default tag (`latest`) when neither a tag nor a digest is given. */
export function normalizeReference(input: string): Reference {
  const ref = parseReference(input);
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = 'latest';
  return ref;
}

export function repositoryOf(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The full name: `docker.io/library/alpine:latest`, `host/app@sha256:...`, `host/app:1@sha256:...`. */
export function formatReference(ref: Reference): string {
  let s = repositoryOf(ref);
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}

/** The short form docker prints: `alpine:latest`, `team/app:1`, `localhost:5000/app:1`. */
export function familiarName(ref: Reference): string {
  let repo = repositoryOf(ref);
  if (ref.domain === DEFAULT_DOMAIN) {
    repo = ref.path.startsWith(OFFICIAL_PREFIX) ? ref.path.slice(OFFICIAL_PREFIX.length) : ref.path;
  }
  return repo;
}
