/**
 * `search`, docker search's counterpart. Docker Hub answers its own search endpoint
 * (`GET /v1/search?q=TERM&n=LIMIT` on index.docker.io, as the docker daemon asks it); any other
 * registry is a distribution registry, which has no search: its catalog (`/v2/_catalog`,
 * paged by its `Link` header) is read whole and the names containing the term are kept.
 *
 * Filters are docker's (moby registry/search.go), applied after the fetch as docker applies
 * them: `stars=N` (the largest N given), `is-official=BOOL`, and the deprecated
 * `is-automated`, for which `true` yields nothing and `false` nothing less (the field is always
 * false in results, as docker forces it). A catalog knows no stars nor official images: there
 * every result has 0 stars and is not official, so `stars` above 0 or `is-official=true` keep none.
 */
import { OptionError, RegistryError } from '../errors/index.js';
import { MANIFEST_SIZE_LIMIT, parseDocument } from '../oci/document.js';
import { DEFAULT_DOMAIN } from '../oci/reference.js';
import { settings } from '../support/settings.js';
import { clientFor, type RegistryAccess } from './access.js';
import type { RegistryClient, Response } from './client.js';
import { readLimited } from './image.js';

export interface SearchOptions extends RegistryAccess {
  /** What to look for; `host[:port]/term` searches that registry (docker's reading of the term). */
  term: string;
  /** The registry to search (gantry's own): `localhost:5000`; default the term's, else docker.io. */
  registry?: string;
  /** At most this many results, 1 to 100 (default 25, as docker). */
  limit?: number;
  /** docker's filters as `--filter` gives them: `stars=N`, `is-official=true`, `is-automated=false`. */
  filters?: readonly string[];
  /** A catalog registry's results with their tags (gantry's own; Docker Hub's search gives none). */
  tags?: boolean;
  /** Entries asked for per catalog or tag-list page (`n=`; default 100). */
  pageSize?: number;
  /** Cancels the search: requests under way stop at once. */
  signal?: AbortSignal;
}

export interface SearchResult {
  /** As the registry gives it: Docker Hub's (`busybox`, `team/app`); a catalog's with its host (`localhost:5000/team/app`). */
  name: string;
  description: string;
  starCount: number;
  isOfficial: boolean;
  /** Always false: docker deprecated the field and forces it so. */
  isAutomated: boolean;
  /** The repository's tags, with `tags` (a catalog registry only). */
  tags?: string[];
}

/** docker's search filters, read. */
export interface SearchFilters {
  /** The least stars a result has. */
  stars?: number;
  isOfficial?: boolean;
  isAutomated?: boolean;
}

export const DEFAULT_SEARCH_LIMIT = 25;
const DEFAULT_PAGE_SIZE = 100;
/** Where paging stops, whatever the registry's links say: a catalog or tag list larger than this is refused. */
export const MAX_PAGES = 1000;
export const MAX_ENTRIES = 10_000;
/** Tag lists fetched side by side. */
const TAG_REQUESTS = 4;

/**
 * `--filter` values as docker reads them (filters.ParseFlag: the key lower-cased, both sides
 * trimmed; then the search's own checks). An unknown key, a value that is not a number or a
 * boolean, or two different booleans for one key is an OptionError, in docker's words.
 */
export function parseSearchFilters(items: readonly string[]): SearchFilters {
  const values = new Map<string, string[]>();
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new OptionError('FILTER_INVALID', `bad format of filter "${item}" (expected name=value)`);
    const key = item.slice(0, eq).trim().toLowerCase();
    const value = item.slice(eq + 1).trim();
    if (!['stars', 'is-official', 'is-automated'].includes(key)) {
      throw new OptionError('FILTER_INVALID', `invalid filter '${key}' (search filters: stars=N, is-official=true|false, is-automated=true|false)`);
    }
    const list = values.get(key) ?? [];
    if (!list.includes(value)) list.push(value);
    values.set(key, list);
  }
  const out: SearchFilters = {};
  const bool = (key: string): boolean | undefined => {
    const list = values.get(key);
    if (!list) return undefined;
    // Exactly docker's spellings (strconv.ParseBool's common ones): 1, 0, true, false.
    const v = list.length === 1 ? (list[0] as string) : '';
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0') return false;
    throw new OptionError('FILTER_INVALID', `invalid filter '${key}=${list.join(',')}' (expected true or false)`);
  };
  const official = bool('is-official');
  if (official !== undefined) out.isOfficial = official;
  const automated = bool('is-automated');
  if (automated !== undefined) out.isAutomated = automated;
  for (const v of values.get('stars') ?? []) {
    if (!/^[+-]?\d{1,9}$/.test(v)) throw new OptionError('FILTER_INVALID', `invalid filter 'stars=${v}' (expected a whole number)`);
    out.stars = Math.max(out.stars ?? 0, Number(v));
  }
  return out;
}

/** docker's filters over fetched results (moby registry/search.go): the deprecated is-automated=true keeps none. */
export function applySearchFilters(results: readonly SearchResult[], filters: SearchFilters): SearchResult[] {
  if (filters.isAutomated) return [];
  return results.filter((r) => (filters.isOfficial === undefined || r.isOfficial === filters.isOfficial) && (filters.stars === undefined || r.starCount >= filters.stars));
}

/** A registry host as `--registry` takes it: `host[:port]`, `[v6]:port`; docker.io's other names are docker.io. */
const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function normalizeHost(host: string): string {
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DEFAULT_DOMAIN : host;
}

/**
 * The registry a search asks and what it asks it for: docker's splitReposSearchTerm (the part
 * before the first `/` is a registry when it has a `.` or a `:` or is `localhost`), or
 * `registry` when given (a term naming another registry is then refused). Docker Hub's
 * official images are searched without their `library/`.
 */
export function searchTarget(term: string, registry?: string): { domain: string; term: string } {
  if (term.includes('://')) throw new OptionError('SEARCH_TERM', `invalid repository name: repository name (${term}) should not have a scheme`);
  const slash = term.indexOf('/');
  const first = slash < 0 ? '' : term.slice(0, slash);
  const named = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let domain = named ? normalizeHost(first) : DEFAULT_DOMAIN;
  let rest = named ? term.slice(slash + 1) : term;
  if (registry !== undefined) {
    const given = normalizeHost(registry.replace(/\/+$/, ''));
    if (!HOST_RE.test(given)) throw new OptionError('OPTION_INVALID', `--registry ${registry}: expected a registry host[:port], such as localhost:5000`);
    if (named && domain !== given) throw new OptionError('OPTION_INVALID', `the term ${term} names registry ${first}, and --registry names ${registry}: give one`);
    if (!named) rest = term;
    domain = given;
  }
  if (domain === DEFAULT_DOMAIN && rest.startsWith('library/')) rest = rest.slice('library/'.length);
  return { domain, term: rest };
}

/** Search a registry: Docker Hub by its search endpoint, another registry by its catalog. */
export async function search(options: SearchOptions): Promise<SearchResult[]> {
  const limit = options.limit ?? DEFAULT_SEARCH_LIMIT;
  if (!Number.isInteger(limit)) throw new OptionError('SEARCH_LIMIT', `limit ${limit} is not a whole number`);
  if (limit < 1 || limit > 100) throw new OptionError('SEARCH_LIMIT', `limit ${limit} is outside the range of [1, 100]`);
  const pageSize = options.pageSize ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(pageSize) || pageSize < 1) throw new OptionError('OPTION_INVALID', `page size ${pageSize}: expected a whole number greater than 0`);
  const filters = parseSearchFilters(options.filters ?? []);
  const target = searchTarget(options.term, options.registry);
  if (options.tags && target.domain === DEFAULT_DOMAIN) {
    throw new OptionError('OPTION_INVALID', 'tags are listed for a registry searched by its catalog: Docker Hub\'s search gives none (name a registry: host[:port]/term or --registry)');
  }
  // docker answers the deprecated is-automated=true with nothing, before it asks the registry.
  if (filters.isAutomated) return [];
  options.signal?.throwIfAborted();
  const client = await clientFor(target.domain, options);
  const stop = (): void => void client.abort();
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    if (target.domain === DEFAULT_DOMAIN) {
      return applySearchFilters(await hubSearch(client, target.term, limit), filters);
    }
    // A catalog's results all have 0 stars and are not official: what filters keep is known before any request.
    const names = applySearchFilters([catalogResult(target.domain, '')], filters).length === 0 ? [] : await catalogMatches(client, target.term, pageSize);
    const results = names.slice(0, limit).map((name) => catalogResult(target.domain, name));
    if (options.tags) await withTags(client, results, target.domain, pageSize);
    return results;
  } catch (err) {
    options.signal?.throwIfAborted(); // cancelled: that is what happened, not the request's failure
    throw err;
  } finally {
    options.signal?.removeEventListener('abort', stop);
    await client.close();
  }
}

function catalogResult(domain: string, name: string): SearchResult {
  return { name: `${domain}/${name}`, description: '', starCount: 0, isOfficial: false, isAutomated: false };
}

/** A JSON answer, at most MANIFEST_SIZE_LIMIT bytes and nested as a registry document may be. */
async function readAnswer(res: Response, what: string): Promise<unknown> {
  const bytes = await readLimited(res.body, MANIFEST_SIZE_LIMIT, `${what} ${res.url}`);
  const doc = parseDocument(bytes);
  if ('problem' in doc) throw new RegistryError('SEARCH_ANSWER', `${what} ${res.url}: the answer is ${doc.problem}`, { url: res.url });
  return doc.json;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Docker Hub's search endpoint (GANTRY_DOCKER_HUB_SEARCH in its place), as the docker daemon asks it. */
async function hubSearch(client: RegistryClient, term: string, limit: number): Promise<SearchResult[]> {
  const url = `${settings.dockerHubSearch}/v1/search?q=${encodeURIComponent(term)}&n=${limit}`;
  const res = await client.request('GET', url, { scope: '', headers: { accept: 'application/json' } });
  const doc = await readAnswer(res, 'search');
  const results = isObject(doc) ? doc.results : undefined;
  if (!Array.isArray(results)) throw new RegistryError('SEARCH_ANSWER', `search ${url}: the answer has no list of results`, { url });
  return results.slice(0, limit).map((r: unknown, i): SearchResult => {
    if (!isObject(r) || typeof r.name !== 'string') throw new RegistryError('SEARCH_ANSWER', `search ${url}: result ${i} has no name`, { url });
    return {
      name: r.name,
      description: typeof r.description === 'string' ? r.description : '',
      starCount: typeof r.star_count === 'number' && Number.isFinite(r.star_count) ? r.star_count : 0,
      isOfficial: r.is_official === true,
      // docker forces the deprecated field to false: Docker Hub's value is not to be trusted.
      isAutomated: false,
    };
  });
}

/**
 * The entries of a paged list (`/v2/_catalog`, `/v2/<name>/tags/list`): each page's `key`
 * list, the next page where its `Link: <...>; rel="next"` says (on the registry itself only).
 * A registry whose links loop (a page asked for again, a page with nothing new) or never end
 * (past MAX_PAGES pages or MAX_ENTRIES entries) is stopped with an error naming the page.
 */
async function pagedList(client: RegistryClient, first: string, key: string, scope: string, what: string): Promise<string[]> {
  const out = new Set<string>();
  const asked = new Set<string>();
  let path: string | undefined = first;
  for (let pages = 0; path !== undefined; pages++) {
    if (pages >= MAX_PAGES) {
      const url = client.endpoint + path;
      throw new RegistryError('SEARCH_PAGING', `${what} ${url}: more than ${MAX_PAGES} pages; gantry stops there`, { url });
    }
    asked.add(path);
    const res = await firstOrNext(client, path, pages === 0, scope);
    const url = res.url;
    const next = nextPage(res, client, what);
    const doc = await readAnswer(res, what);
    const list = isObject(doc) ? doc[key] : undefined;
    // A tag list of a repository without tags may say null.
    if (!(Array.isArray(list) && list.every((e) => typeof e === 'string')) && !(key === 'tags' && list === null)) {
      throw new RegistryError('SEARCH_ANSWER', `${what} ${url}: the answer has no list of ${key}`, { url });
    }
    const before = out.size;
    for (const e of (list ?? []) as string[]) out.add(e);
    if (out.size > MAX_ENTRIES) throw new RegistryError('SEARCH_PAGING', `${what} ${url}: more than ${MAX_ENTRIES} ${key}; gantry stops there`, { url });
    if (next !== undefined && (asked.has(next) || out.size === before)) {
      throw new RegistryError('SEARCH_PAGING', `${what} ${url}: its next page (${client.endpoint}${next}) ${asked.has(next) ? 'was read already' : 'follows a page that gave nothing new'}: the registry's paging loops`, { url });
    }
    path = next;
  }
  return [...out];
}

/**
 * A page of a list. The first is asked for with `n=`; a registry that allows fewer entries a
 * page (distribution's `catalog.maxentries`) refuses it with 400 PAGINATION_NUMBER_INVALID, and
 * is asked again without it: it then gives pages of its own size.
 */
async function firstOrNext(client: RegistryClient, path: string, first: boolean, scope: string): Promise<Response> {
  const get = (p: string): Promise<Response> => client.request('GET', p, { scope, headers: { accept: 'application/json' } });
  if (!first || !/[?&]n=/.test(path)) return get(path);
  try {
    return await get(path);
  } catch (err) {
    if (!(err instanceof RegistryError && err.status === 400)) throw err;
    const u = new URL(path, 'http://registry');
    u.searchParams.delete('n');
    return get(u.pathname + u.search);
  }
}

/** The path and query of the page a response's `Link` header names as next, or undefined. */
function nextPage(res: Response, client: RegistryClient, what: string): string | undefined {
  const header = res.headers.link;
  const text = Array.isArray(header) ? header.join(', ') : header;
  if (!text) return undefined;
  // Each link's parameters read whole: rel="next", rel=next, or rel="prev next" names it; rel=nextfoo does not.
  let target: string | undefined;
  for (const link of text.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const rel = /(?:^|;)\s*rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))/i.exec(link[2] as string);
    const rels = (rel?.[1] ?? rel?.[2] ?? '').toLowerCase().split(/\s+/);
    if (rels.includes('next')) {
      target = link[1] as string;
      break;
    }
  }
  if (target === undefined) return undefined;
  let next: URL;
  try {
    next = new URL(target, res.url);
  } catch {
    throw new RegistryError('SEARCH_ANSWER', `${what} ${res.url}: its Link header names no URL: ${text.slice(0, 200)}`, { url: res.url });
  }
  // The next page is the registry's own: a link elsewhere would take its credentials there.
  if (next.origin !== new URL(client.endpoint).origin) {
    throw new RegistryError('SEARCH_ANSWER', `${what} ${res.url}: its next page is on another host (${next.origin}): refused`, { url: res.url });
  }
  return next.pathname + next.search;
}

/** distribution's repository name (upper case let through, as some registries list it): path components of letters and digits joined by separators, under 256 characters. */
const REPOSITORY_NAME = /^(?=.{1,255}$)[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[._]|__|-+)[A-Za-z0-9]+)*)*$/;

/** The catalog's repositories whose names contain `term` (case-insensitive), sorted. */
async function catalogMatches(client: RegistryClient, term: string, pageSize: number): Promise<string[]> {
  let names: string[];
  try {
    names = await pagedList(client, `/v2/_catalog?n=${pageSize}`, 'repositories', 'registry:catalog:*', 'catalog');
  } catch (err) {
    if (err instanceof RegistryError && [401, 403, 404].includes(err.status ?? 0)) {
      const why = err.status === 404 ? 'offers no catalog' : 'does not let this account read its catalog';
      throw new RegistryError(
        'SEARCH_NO_CATALOG',
        `${client.domain} ${why} (GET ${err.url ?? `${client.endpoint}/v2/_catalog`}: ${err.status}): gantry searches a registry other than Docker Hub through its catalog, /v2/_catalog`,
        { ...(err.status !== undefined ? { status: err.status } : {}), ...(err.url !== undefined ? { url: err.url } : {}) },
        { cause: err },
      );
    }
    throw err;
  }
  const wanted = term.toLowerCase();
  // A name that is not a repository name (distribution's grammar) is not shown, nor asked for
  // its tags: it would go raw into a URL, a token scope and the terminal.
  return names.filter((n) => REPOSITORY_NAME.test(n) && n.toLowerCase().includes(wanted)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Each result's tags (`/v2/<name>/tags/list`, paged), a few repositories at a time; a repository without tags has none. */
async function withTags(client: RegistryClient, results: SearchResult[], domain: string, pageSize: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < results.length; i = next++) {
      const r = results[i] as SearchResult;
      const name = r.name.slice(domain.length + 1);
      try {
        r.tags = (await pagedList(client, `/v2/${name}/tags/list?n=${pageSize}`, 'tags', `repository:${name}:pull`, 'tag list')).sort();
      } catch (err) {
        // A repository the catalog lists whose tags were all deleted is unknown to tags/list.
        if (!(err instanceof RegistryError && err.status === 404)) throw err;
        r.tags = [];
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(TAG_REQUESTS, results.length) }, worker));
}
