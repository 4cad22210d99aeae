import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { gantry } from '../helpers/gantry.js';
import { serveLoopback } from '../helpers/http.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { search } from '../../src/registry/search.js';

// `gantry search` end to end: the built command against Debian's docker-registry, whose
// catalog gives 2 entries a page (catalog.maxentries: 2, so that the 100 gantry asks for is
// refused and the registry's own pages are followed), and against a Docker Hub stand-in.

const work = mkdtempSync(path.join(tmpdir(), 'gantry-search-'));
const root = path.join(work, 'store');
let reg: TestRegistry;
let hub: { host: string; server: Server };
const hubRequests: string[] = [];

/** Repositories and their tags, pushed as tiny images (a config, no layer) with plain HTTP requests. */
const REPOS: Record<string, string[]> = {
  alpha: ['latest'],
  'other/tool': ['v1'],
  'team/app': ['latest', '1'],
  'team/base': ['1'],
  'zeta/team-tools': ['x'],
};

async function pushTiny(host: string, repo: string, tags: string[]): Promise<void> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, config: { Labels: { repo } } }));
  const digest = `sha256:${createHash('sha256').update(config).digest('hex')}`;
  const start = await fetch(`http://${host}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location') as string, `http://${host}`);
  location.searchParams.set('digest', digest);
  expect((await fetch(location, { method: 'PUT', body: config, headers: { 'content-type': 'application/octet-stream' } })).status).toBe(201);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: config.length },
    layers: [],
  });
  for (const tag of tags) {
    const put = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    expect(put.status, await put.text()).toBe(201);
  }
}

const HUB_RESULTS = [
  { name: 'busybox', description: 'Busybox base image.', star_count: 3300, is_official: true, is_automated: false },
  { name: 'someone/busybox', description: 'A busybox with a description long enough to be cut short\nand a second line', star_count: 12, is_official: false, is_automated: true },
  { name: 'progrium/busybox', description: '', star_count: 70, is_official: false, is_automated: false },
];

beforeAll(async () => {
  const started = await startRegistry({ extraConfig: 'catalog:\n  maxentries: 2' });
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  for (const [repo, tags] of Object.entries(REPOS)) await pushTiny(reg.host, repo, tags);
  hub = await serveLoopback((req, res) => {
    hubRequests.push(req.url ?? '');
    const url = new URL(req.url ?? '', 'http://x');
    if (url.pathname !== '/v1/search') return void res.writeHead(404).end();
    const results = HUB_RESULTS.filter((r) => r.name.includes(url.searchParams.get('q') ?? '')).slice(0, Number(url.searchParams.get('n')));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ num_results: results.length, query: url.searchParams.get('q'), results }));
  });
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  hub?.server.closeAllConnections();
  await new Promise((r) => (hub ? hub.server.close(r) : r(undefined)));
  rmSync(work, { recursive: true, force: true });
});

const g = (args: string[], env: Record<string, string> = {}) => gantry(['--root', root, 'search', ...args], { env: { NO_COLOR: '1', ...env } });

describe('a registry searched by its catalog', () => {
  test('the table: names containing the term, with the host, sorted; the catalog read page by page', async () => {
    const r = await g([`${reg.host}/team`]);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME +DESCRIPTION +STARS +OFFICIAL$/);
    expect(lines.slice(1).map((l) => l.trimEnd().split(/ +/))).toEqual([
      [`${reg.host}/team/app`, '0'],
      [`${reg.host}/team/base`, '0'],
      [`${reg.host}/zeta/team-tools`, '0'],
    ]);
  });

  test('--format, --limit, --registry', async () => {
    const r = await g(['--format', '{{.Name}}', '--limit', '2', '--registry', reg.host, 'TEAM']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${reg.host}/team/app\n${reg.host}/team/base`);
    const all = await g(['--format', '{{.Name}}', `${reg.host}/`]);
    expect(all.stdout.split('\n')).toEqual(Object.keys(REPOS).map((n) => `${reg.host}/${n}`));
  });

  test('--tags: a TAGS column, each repository\'s tags', async () => {
    const r = await g(['--tags', `${reg.host}/team`]);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^NAME +DESCRIPTION +STARS +OFFICIAL +TAGS$/);
    expect(lines[1]).toMatch(new RegExp(`^${reg.host}/team/app +0 +1,latest$`));
    const f = await g(['--tags', '--format', '{{.Name}} {{.Tags}}', `${reg.host}/o`]);
    expect(f.stdout.split('\n')).toEqual([`${reg.host}/other/tool v1`, `${reg.host}/zeta/team-tools x`]);
  });

  test('filters: the catalog knows no stars; is-automated=true gives none', async () => {
    expect((await g(['--format', '{{.Name}}', '--filter', 'stars=0', '-f', 'is-official=false', `${reg.host}/team/`])).stdout.split('\n')).toHaveLength(2);
    for (const filter of ['stars=1', 'is-official=true', 'is-automated=true']) {
      const r = await g(['--filter', filter, `${reg.host}/team`]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^NAME +DESCRIPTION +STARS +OFFICIAL$/);
    }
  });

  test('the library: the page size it asks for (n=2) follows the registry\'s Link pages', async () => {
    const results = await search({ term: 'a', registry: reg.host, pageSize: 2, tags: true, credentials: () => undefined });
    expect(results.map((r) => [r.name, r.tags])).toEqual([
      [`${reg.host}/alpha`, ['latest']],
      [`${reg.host}/team/app`, ['1', 'latest']],
      [`${reg.host}/team/base`, ['1']],
      [`${reg.host}/zeta/team-tools`, ['x']],
    ]);
  });

  test('usage errors: the limit, a filter, a term with a scheme', async () => {
    const zero = await g(['--limit', '0', `${reg.host}/team`]);
    expect(zero.exitCode).toBe(2);
    expect(zero.stderr.trim()).toBe('error: limit 0 is outside the range of [1, 100]');
    const foo = await g(['--filter', 'foo=bar', `${reg.host}/team`]);
    expect(foo.exitCode).toBe(2);
    expect(foo.stderr).toMatch(/^error: invalid filter 'foo'/);
    const scheme = await g([`http://${reg.host}/team`]);
    expect(scheme.stderr).toMatch(/should not have a scheme/);
  });
});

describe('Docker Hub, by its search endpoint (a stand-in)', () => {
  test('--filter is-official=true --limit 2 --format: n=2 asked, then filtered', async () => {
    hubRequests.length = 0;
    const r = await g(['--filter', 'is-official=true', '--limit', '2', '--format', '{{.Name}}\t{{.StarCount}}\t{{.IsOfficial}}', 'busybox'], { GANTRY_DOCKER_HUB_SEARCH: `http://${hub.host}` });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('busybox\t3300\t[OK]');
    expect(hubRequests).toEqual(['/v1/search?q=busybox&n=2']);
  });

  test('the table: descriptions on one line, cut at 45 characters unless --no-trunc; stars filter', async () => {
    const env = { GANTRY_DOCKER_HUB_SEARCH: `http://${hub.host}` };
    const r = await g(['--filter', 'stars=12', 'busybox'], env);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split('\n').map((l) => l.trimEnd())).toEqual([
      'NAME               DESCRIPTION                                     STARS     OFFICIAL',
      'busybox            Busybox base image.                             3300      [OK]',
      'someone/busybox    A busybox with a description long enough to …   12',
      'progrium/busybox                                                   70',
    ]);
    const full = await g(['--no-trunc', '--format', '{{.Description}}', 'someone'], env);
    expect(full.stdout).toBe('A busybox with a description long enough to be cut short and a second line');
    expect((await g(['--tags', 'busybox'], env)).stderr).toMatch(/Docker Hub's search gives none/);
  });
});
