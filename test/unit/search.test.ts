import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { GantryError } from '../../src/errors/index.js';
import { parseSearchFilters, search, searchTarget, MAX_ENTRIES, type SearchOptions, type SearchResult } from '../../src/registry/search.js';
import { resetSettings } from '../../src/support/settings.js';
import { formatSearchResults, searchCommand } from '../../src/cli/commands/search.js';
import { plainArgs, shapesOf } from '../../src/cli/plain.js';

// `gantry search`: docker's filters and limits, Docker Hub's search endpoint and a registry's
// catalog, both as loopback stand-ins in this process (node:http), and docker's table.

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** A loopback HTTP server whose handler a test sets; `requests` are the URLs it was asked for (not the client's TLS probe). */
const stand = { host: '', handler: undefined as Handler | undefined, requests: [] as string[], server: undefined as Server | undefined };

beforeAll(async () => {
  stand.server = createServer((req, res) => {
    stand.requests.push(req.url ?? '');
    if (stand.handler) stand.handler(req, res);
    else res.writeHead(500).end();
  });
  await new Promise<void>((r) => stand.server?.listen(0, '127.0.0.1', r));
  stand.host = `127.0.0.1:${(stand.server.address() as { port: number }).port}`;
});

afterAll(async () => {
  stand.server?.closeAllConnections();
  await new Promise((r) => stand.server?.close(r));
  resetSettings();
});

afterEach(() => {
  stand.handler = undefined;
  stand.requests = [];
  resetSettings();
});

const json = (res: ServerResponse, body: unknown, headers: Record<string, string> = {}): void => {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
};

/** The error `fn` rejects with, which must be a GantryError. */
async function failure(fn: () => Promise<unknown>): Promise<GantryError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GantryError);
    return err as GantryError;
  }
  throw new Error('expected an error, but none came');
}

const anonymous: Pick<SearchOptions, 'credentials'> = { credentials: () => undefined };

describe('filters and limits, as docker reads them', () => {
  test('stars (the largest given), is-official, is-automated; keys are case-insensitive and trimmed', () => {
    expect(parseSearchFilters([])).toEqual({});
    expect(parseSearchFilters(['stars=3', 'stars=10', 'is-official=true'])).toEqual({ stars: 10, isOfficial: true });
    expect(parseSearchFilters([' IS-AUTOMATED = 0 ', 'is-official=false'])).toEqual({ isAutomated: false, isOfficial: false });
    // Values as moby's GetBoolOrDefault reads them: exactly 1, 0, true, false.
    expect(() => parseSearchFilters(['is-official=FALSE'])).toThrow(/invalid filter 'is-official=FALSE'/);
    expect(parseSearchFilters(['stars=-4'])).toEqual({ stars: 0 });
  });

  test('an unknown key, a bad value, two booleans, no =: clear errors', () => {
    expect(() => parseSearchFilters(['foo=bar'])).toThrow(/^invalid filter 'foo'/);
    expect(() => parseSearchFilters(['stars=many'])).toThrow(/invalid filter 'stars=many'/);
    expect(() => parseSearchFilters(['is-official=maybe'])).toThrow(/invalid filter 'is-official=maybe'/);
    expect(() => parseSearchFilters(['is-official=true', 'is-official=false'])).toThrow(/invalid filter 'is-official=true,false'/);
    expect(() => parseSearchFilters(['stars'])).toThrow(/bad format of filter "stars" \(expected name=value\)/);
    try {
      parseSearchFilters(['foo=1']);
    } catch (err) {
      expect((err as GantryError).code).toBe('FILTER_INVALID');
      expect((err as Error).name).toBe('OptionError');
    }
  });

  test('a limit outside 1..100 is refused before anything is asked', async () => {
    for (const limit of [0, 101, -1]) {
      const err = await failure(() => search({ term: 'x', limit }));
      expect(err.code).toBe('SEARCH_LIMIT');
      expect(err.message).toBe(`limit ${limit} is outside the range of [1, 100]`);
    }
    expect((await failure(() => search({ term: 'x', limit: 2.5 }))).message).toMatch(/not a whole number/);
    expect((await failure(() => search({ term: 'x', filters: ['nope=1'] }))).code).toBe('FILTER_INVALID');
    expect(stand.requests).toEqual([]);
  });

  test('the registry a term names, as docker splits it; --registry', () => {
    expect(searchTarget('busybox')).toEqual({ domain: 'docker.io', term: 'busybox' });
    expect(searchTarget('library/busybox')).toEqual({ domain: 'docker.io', term: 'busybox' });
    expect(searchTarget('team/app')).toEqual({ domain: 'docker.io', term: 'team/app' });
    expect(searchTarget('index.docker.io/library/busybox')).toEqual({ domain: 'docker.io', term: 'busybox' });
    expect(searchTarget('localhost:5000/foo')).toEqual({ domain: 'localhost:5000', term: 'foo' });
    expect(searchTarget('localhost/foo/bar')).toEqual({ domain: 'localhost', term: 'foo/bar' });
    expect(searchTarget('reg.example/')).toEqual({ domain: 'reg.example', term: '' });
    expect(searchTarget('foo', 'localhost:5000')).toEqual({ domain: 'localhost:5000', term: 'foo' });
    expect(searchTarget('localhost:5000/foo', 'localhost:5000')).toEqual({ domain: 'localhost:5000', term: 'foo' });
    expect(() => searchTarget('localhost:5000/foo', 'other:5000')).toThrow(/names registry localhost:5000, and --registry names other:5000/);
    expect(() => searchTarget('foo', 'http://x')).toThrow(/--registry http:\/\/x: expected a registry host/);
    expect(() => searchTarget('https://reg.example/foo')).toThrow(/should not have a scheme/);
  });
});

describe('Docker Hub: its search endpoint (GANTRY_DOCKER_HUB_SEARCH)', () => {
  const hub = [
    { name: 'busybox', description: 'Busybox base image.', star_count: 3000, is_official: true, is_automated: false },
    { name: 'team/busybox', description: 'A team\'s busybox', star_count: 12, is_official: false, is_automated: true },
    { name: 'someone/busybox-tiny', description: null, star_count: 0, is_official: false, is_automated: false },
  ];
  const useHub = (): void => {
    resetSettings({ ...process.env, GANTRY_DOCKER_HUB_SEARCH: `http://${stand.host}/` });
    stand.handler = (req, res) => {
      const url = new URL(req.url ?? '', 'http://x');
      if (url.pathname !== '/v1/search') return void res.writeHead(404).end();
      json(res, { num_results: hub.length, query: url.searchParams.get('q'), results: hub.slice(0, Number(url.searchParams.get('n'))) });
    };
  };

  test('asks q=TERM&n=LIMIT and gives the results as the endpoint names them; is_automated is always false, as docker forces it', async () => {
    useHub();
    const results = await search({ term: 'busybox', limit: 7, ...anonymous });
    expect(stand.requests).toEqual(['/v1/search?q=busybox&n=7']);
    expect(results).toEqual<SearchResult[]>([
      { name: 'busybox', description: 'Busybox base image.', starCount: 3000, isOfficial: true, isAutomated: false },
      { name: 'team/busybox', description: "A team's busybox", starCount: 12, isOfficial: false, isAutomated: false },
      { name: 'someone/busybox-tiny', description: '', starCount: 0, isOfficial: false, isAutomated: false },
    ]);
  });

  test('the default limit is 25; library/ is left out of an official name; the term is escaped', async () => {
    useHub();
    await search({ term: 'library/busybox', ...anonymous });
    await search({ term: 'a b&c', ...anonymous });
    expect(stand.requests).toEqual(['/v1/search?q=busybox&n=25', '/v1/search?q=a%20b%26c&n=25']);
  });

  test('filters apply after the fetch: stars, is-official; is-automated=true gives nothing without asking, =false removes nothing', async () => {
    useHub();
    const names = async (filters: string[], limit?: number) => (await search({ term: 'busybox', filters, ...(limit ? { limit } : {}), ...anonymous })).map((r) => r.name);
    expect(await names(['stars=12'])).toEqual(['busybox', 'team/busybox']);
    expect(await names(['stars=13', 'stars=1'])).toEqual(['busybox']);
    expect(await names(['is-official=true'])).toEqual(['busybox']);
    expect(await names(['is-official=false'])).toEqual(['team/busybox', 'someone/busybox-tiny']);
    expect(await names(['is-automated=false'])).toHaveLength(3);
    // docker's order: fetch n=limit, then filter (fewer than the limit may remain).
    stand.requests = [];
    expect(await names(['is-official=false'], 2)).toEqual(['team/busybox']);
    expect(stand.requests).toEqual(['/v1/search?q=busybox&n=2']);
    stand.requests = [];
    expect(await names(['is-automated=true'])).toEqual([]);
    expect(stand.requests).toEqual([]);
  });

  test('an answer that is not a search result is an error naming the URL; --tags is refused for Docker Hub', async () => {
    resetSettings({ ...process.env, GANTRY_DOCKER_HUB_SEARCH: `http://${stand.host}` });
    stand.handler = (_req, res) => json(res, { results: [{ description: 'no name' }] });
    const err = await failure(() => search({ term: 'x', ...anonymous }));
    expect(err.code).toBe('SEARCH_ANSWER');
    expect(err.message).toContain(`http://${stand.host}/v1/search?q=x&n=25`);
    stand.handler = (_req, res) => res.writeHead(200).end('<html>');
    expect((await failure(() => search({ term: 'x', ...anonymous }))).message).toMatch(/not valid JSON/);
    expect((await failure(() => search({ term: 'x', tags: true, ...anonymous }))).message).toMatch(/Docker Hub's search gives none/);
  });

  test('a bad GANTRY_DOCKER_HUB_SEARCH is an error naming it', async () => {
    resetSettings({ ...process.env, GANTRY_DOCKER_HUB_SEARCH: 'ftp://x' });
    expect((await failure(() => search({ term: 'x', ...anonymous }))).message).toMatch(/^GANTRY_DOCKER_HUB_SEARCH=ftp:\/\/x: expected a base URL/);
  });
});

describe('another registry: its catalog', () => {
  /** A catalog served `size` names a page, each page's Link naming the next (distribution's form). */
  const catalog = (names: string[], tags: Record<string, string[]> = {}): Handler => (req, res) => {
    const url = new URL(req.url ?? '', 'http://x');
    const m = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname);
    const n = Number(url.searchParams.get('n') ?? 1000);
    const last = url.searchParams.get('last') ?? '';
    const page = (all: string[], base: string, key: string, extra: Record<string, unknown>) => {
      const rest = [...all].sort().filter((x) => x > last).slice(0, n);
      const more = rest.length === n && all.some((x) => x > (rest[rest.length - 1] as string));
      json(res, { ...extra, [key]: rest }, more ? { link: `<${base}?last=${encodeURIComponent(rest[rest.length - 1] as string)}&n=${n}>; rel="next"` } : {});
    };
    if (url.pathname === '/v2/_catalog') return page(names, '/v2/_catalog', 'repositories', {});
    if (m && tags[m[1] as string]) return page(tags[m[1] as string] as string[], url.pathname, 'tags', { name: m[1] });
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'NAME_UNKNOWN', message: 'repository name not known to registry' }] }));
  };
  const repos = ['alpha', 'other/tool', 'team/app', 'team/base', 'Team/legacy', 'zeta'].sort();

  test('3 pages followed by their Link; names containing the term (any case), with the host, sorted, cut to the limit', async () => {
    stand.handler = catalog(repos);
    const results = await search({ term: `${stand.host}/TEAM`, pageSize: 2, ...anonymous });
    expect(results.map((r) => r.name)).toEqual([`${stand.host}/Team/legacy`, `${stand.host}/team/app`, `${stand.host}/team/base`]);
    expect(results[0]).toEqual({ name: `${stand.host}/Team/legacy`, description: '', starCount: 0, isOfficial: false, isAutomated: false });
    expect(stand.requests.filter((u) => u.startsWith('/v2/_catalog'))).toEqual(['/v2/_catalog?n=2', '/v2/_catalog?last=alpha&n=2', '/v2/_catalog?last=team%2Fapp&n=2']);
    expect((await search({ term: 'team', registry: stand.host, limit: 2, pageSize: 2, ...anonymous })).map((r) => r.name)).toEqual([`${stand.host}/Team/legacy`, `${stand.host}/team/app`]);
    // An empty term matches every repository.
    expect(await search({ term: `${stand.host}/`, ...anonymous })).toHaveLength(repos.length);
  });

  test('a registry that allows fewer entries a page refuses n=100 (400): asked again without n, its own pages are followed', async () => {
    const serve = catalog(repos);
    stand.handler = (req, res) => {
      const n = new URL(req.url ?? '', 'http://x').searchParams.get('n');
      if (n !== null && Number(n) > 2) return void res.writeHead(400, { 'content-type': 'application/json' }).end('{"errors":[{"code":"PAGINATION_NUMBER_INVALID"}]}');
      if (n === null) req.url = `${req.url ?? ''}?n=2`;
      serve(req, res);
    };
    expect(await search({ term: 'team', registry: stand.host, ...anonymous })).toHaveLength(3);
    expect(stand.requests).toEqual(['/v2/_catalog?n=100', '/v2/_catalog', '/v2/_catalog?last=alpha&n=2', '/v2/_catalog?last=team%2Fapp&n=2']);
  });

  test('filters on a catalog: it knows no stars nor official images', async () => {
    stand.handler = catalog(repos);
    const count = async (filters: string[]) => (await search({ term: 'team', registry: stand.host, filters, ...anonymous })).length;
    expect(await count(['stars=0'])).toBe(3);
    expect(await count(['is-official=false'])).toBe(3);
    stand.requests = [];
    expect(await count(['stars=1'])).toBe(0);
    expect(await count(['is-official=true'])).toBe(0);
    expect(stand.requests).toEqual([]);
  });

  test('tags: each match\'s tags, paged the same way; a repository tags/list does not know has none', async () => {
    stand.handler = catalog(repos, { 'team/app': ['3', '1', '2', 'latest', 'edge'], 'team/base': ['1'] });
    const results = await search({ term: 'team', registry: stand.host, tags: true, pageSize: 2, ...anonymous });
    expect(results.map((r) => [r.name.slice(stand.host.length + 1), r.tags])).toEqual([
      ['Team/legacy', []],
      ['team/app', ['1', '2', '3', 'edge', 'latest']],
      ['team/base', ['1']],
    ]);
    expect(stand.requests.filter((u) => u.startsWith('/v2/team/app/'))).toHaveLength(3);
  });

  test('Link headers read by their rel: "prev next" and rel=next name the next page, rel=nextfoo does not; names that are not repository names are not shown', async () => {
    stand.handler = (req, res) => {
      const page = Number(new URL(req.url ?? '', 'http://x').searchParams.get('p') ?? 0);
      if (page === 0) return json(res, { repositories: ['a1'] }, { link: '</v2/_catalog?p=9>; rel="prev", </v2/_catalog?p=1>; title="x"; rel="prev next"' });
      if (page === 1) return json(res, { repositories: ['a2', 'a bad name', 'a\u001b[2J'] }, { link: '</v2/_catalog?p=2>; rel=next' });
      if (page === 2) return json(res, { repositories: ['a3'] }, { link: '</v2/_catalog?p=3>; rel=nextfoo' });
      return json(res, { repositories: ['never'] });
    };
    const results = await search({ term: 'a', registry: stand.host, ...anonymous });
    expect(results.map((r) => r.name)).toEqual([`${stand.host}/a1`, `${stand.host}/a2`, `${stand.host}/a3`]);
    expect(stand.requests.filter((u) => u.startsWith('/v2/_catalog?p='))).toEqual(['/v2/_catalog?p=1', '/v2/_catalog?p=2']);
  });

  test('a Link that loops is an error naming the page, not a hang', async () => {
    stand.handler = (req, res) => {
      const second = (req.url ?? '').includes('last=');
      json(res, { repositories: second ? ['b'] : ['a'] }, { link: second ? '</v2/_catalog?n=1>; rel="next"' : '</v2/_catalog?last=a&n=1>; rel="next"' });
    };
    const err = await failure(() => search({ term: 'x', registry: stand.host, pageSize: 1, ...anonymous }));
    expect(err.code).toBe('SEARCH_PAGING');
    expect(err.message).toContain(`catalog http://${stand.host}/v2/_catalog?last=a&n=1: its next page (http://${stand.host}/v2/_catalog?n=1) was read already`);
    // Links that always differ, to pages that repeat what was given.
    stand.handler = (req, res) => {
      const k = Number(new URL(req.url ?? '', 'http://x').searchParams.get('k') ?? 0);
      json(res, { repositories: ['a'] }, { link: `</v2/_catalog?k=${k + 1}>; rel="next"` });
    };
    expect((await failure(() => search({ term: 'x', registry: stand.host, ...anonymous }))).message).toMatch(/follows a page that gave nothing new/);
    expect(stand.requests.filter((u) => u.startsWith('/v2/_catalog'))).toHaveLength(2 + 2);
  });

  test('a catalog that never ends is stopped at MAX_ENTRIES', async () => {
    stand.handler = (req, res) => {
      const k = Number(new URL(req.url ?? '', 'http://x').searchParams.get('k') ?? 0);
      json(res, { repositories: Array.from({ length: 4000 }, (_, i) => `r${k}-${i}`) }, { link: `</v2/_catalog?k=${k + 1}>; rel="next"` });
    };
    const err = await failure(() => search({ term: 'x', registry: stand.host, ...anonymous }));
    expect(err.code).toBe('SEARCH_PAGING');
    expect(err.message).toContain(`more than ${MAX_ENTRIES} repositories`);
  });

  test('a next page on another host is refused', async () => {
    stand.handler = (_req, res) => json(res, { repositories: ['a'] }, { link: '<http://127.0.0.2:1/v2/_catalog?last=a>; rel="next"' });
    expect((await failure(() => search({ term: 'x', registry: stand.host, ...anonymous }))).message).toMatch(/its next page is on another host \(http:\/\/127\.0\.0\.2:1\): refused/);
  });

  test('a registry without a catalog (404) is a clear error naming the URL', async () => {
    stand.handler = (_req, res) => res.writeHead(404).end('404 page not found');
    const err = await failure(() => search({ term: 'x', registry: stand.host, ...anonymous }));
    expect(err.code).toBe('SEARCH_NO_CATALOG');
    expect(err.message).toBe(
      `${stand.host} offers no catalog (GET http://${stand.host}/v2/_catalog?n=100: 404): gantry searches a registry other than Docker Hub through its catalog, /v2/_catalog`,
    );
  });

  test('a registry that does not answer is stopped by the deadline (GANTRY_REGISTRY_TIMEOUT)', async () => {
    resetSettings({ ...process.env, GANTRY_REGISTRY_TIMEOUT: '0.5' });
    stand.handler = () => undefined; // never answers
    const started = Date.now();
    const err = await failure(() => search({ term: 'x', registry: stand.host, ...anonymous }));
    expect(err.code).toBe('REGISTRY_TIMEOUT');
    expect(err.message).toMatch(/no answer within 0\.5 s/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('the command: docker\'s table and --format', () => {
  const results: SearchResult[] = [
    { name: 'busybox', description: 'Busybox base image.\nSmall and\r\nuseful, and described at some length here', starCount: 3000, isOfficial: true, isAutomated: false },
    { name: 'team/app', description: '', starCount: 0, isOfficial: false, isAutomated: false, tags: ['1', 'latest'] },
  ];

  test('NAME DESCRIPTION STARS OFFICIAL; a description on one line, cut at 45 characters with …', () => {
    expect(formatSearchResults(results)).toBe(
      [
        'NAME       DESCRIPTION                                     STARS     OFFICIAL',
        'busybox    Busybox base image. Small and  useful, and d…   3000      [OK]',
        'team/app                                                   0         ',
        '',
      ].join('\n'),
    );
    const full = formatSearchResults(results, { trunc: false });
    expect(full).toContain('Busybox base image. Small and  useful, and described at some length here   3000');
  });

  test('--format: fields, table, json; --tags adds a TAGS column', () => {
    expect(formatSearchResults(results, { format: '{{.Name}}' })).toBe('busybox\nteam/app\n');
    expect(formatSearchResults(results, { format: '{{.Name}}: {{.StarCount}} {{.IsOfficial}}{{.IsAutomated}}' })).toBe('busybox: 3000 [OK]\nteam/app: 0 \n');
    expect(formatSearchResults(results, { format: 'table {{.Name}}\t{{.StarCount}}' })).toBe('NAME       STARS\nbusybox    3000\nteam/app   0\n');
    expect(JSON.parse((formatSearchResults(results, { format: 'json' }).split('\n')[1]) as string)).toEqual({ Description: '', IsAutomated: '', IsOfficial: '', Name: 'team/app', StarCount: '0' });
    expect(formatSearchResults(results, { format: '{{json .}}', tags: true }).split('\n')[1]).toBe('{"Description":"","IsAutomated":"","IsOfficial":"","Name":"team/app","StarCount":"0","Tags":"1,latest"}');
    expect(formatSearchResults(results, { tags: true }).split('\n')[0]).toMatch(/^NAME +DESCRIPTION +STARS +OFFICIAL +TAGS$/);
    expect(formatSearchResults(results, { tags: true }).split('\n')[2]).toMatch(/^team\/app +0 +1,latest$/);
    expect(() => formatSearchResults(results, { format: '{{.Stars}}' })).toThrow(/a search result has no field \.Stars/);
  });

  test('a plain command line is read without yargs', () => {
    const shape = shapesOf(searchCommand).get('search');
    expect(shape).toBeTruthy();
    const args = plainArgs(shape as never, ['search', 'busybox', '-f', 'stars=3', '--filter', 'is-official=true', '--limit', '7', '--no-trunc', '--tags', '--registry', 'localhost:5000', '--format', '{{.Name}}']);
    expect(args).toMatchObject({ term: 'busybox', filter: ['stars=3', 'is-official=true'], limit: 7, trunc: false, tags: true, registry: 'localhost:5000', format: '{{.Name}}' });
  });
});
