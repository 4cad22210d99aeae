import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { serveLoopback } from '../helpers/http.js';
import type { Check, CheckFile, Expectations, Harness } from './types.js';

const file = 'dockerfile_addgit_test.go';

// BuildKit serves each test repository with Go's http.FileServer (git's dumb HTTP protocol,
// after `git update-server-info`); so do these checks, on a loopback port. FROM alpine is
// FROM busybox here (the RUN lines use only sh, cat, stat and test).

const gitEnv = { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0', GIT_ALLOW_PROTOCOL: 'http:https:file' };

export interface Repo {
  dir: string;
  url: string;
  git(...args: string[]): string;
  /** Shell commands, run without blocking (git may fetch from this process's servers). */
  sh(...commands: string[]): Promise<void>;
  close(): void;
}

/** An empty directory served over HTTP as files, like http.FileServer. */
export async function servedDir(): Promise<Repo> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gantry-bkgit-'));
  const { host, server } = await serveLoopback((req, res) => {
    const p = path.join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    try {
      if (!p.startsWith(dir) || !statSync(p).isFile()) throw new Error('not a file');
      res.writeHead(200).end(readFileSync(p));
    } catch {
      res.writeHead(404).end();
    }
  });
  return {
    dir,
    url: `http://${host}`,
    git: (...args) => execFileSync('git', args, { cwd: dir, env: gitEnv, encoding: 'utf8' }).trim(),
    sh: async (...commands) => {
      for (const c of commands) await promisify(execFile)('sh', ['-c', c], { cwd: dir, env: gitEnv });
    },
    close: () => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const init = (format = ''): string[] => [`git init${format}`, 'git config --local user.email test', 'git config --local user.name test', 'git config --local protocol.file.allow always'];
const commit = (tag: string): string[] => [`echo foo of ${tag} >foo`, 'git add foo', `git commit -m ${tag}`, `git tag ${tag}`];

/** testAddGit's repository: tags v0.0.1..v0.0.3, each changing foo. */
async function tagsRepo(format: string, tags = ['v0.0.1', 'v0.0.2', 'v0.0.3']): Promise<Repo> {
  const repo = await servedDir();
  await repo.sh(...init(format), ...tags.flatMap(commit), 'git update-server-info');
  return repo;
}

type Step = Expectations & { error?: RegExp };

/** One build of testAddGit (sha1 or sha256): the Dockerfile gets the server's URL and v0.0.2's, v0.0.3's hashes. */
function addGit(name: string, format: string, part: string, dockerfile: (url: string, v2: string, v3: string) => string, exp: Step): Check {
  return {
    name,
    file,
    dockerfile: '',
    // part: ${part}
    async custom(h: Harness) {
      const repo = await tagsRepo(format);
      try {
        const r = await h.build({ dockerfile: dockerfile(repo.url, repo.git('rev-parse', 'v0.0.2'), repo.git('rev-parse', 'v0.0.3')) });
        if (exp.error) {
          expect(r.exitCode, r.output).not.toBe(0);
          expect(r.exitCode, r.output).not.toBe(70);
          expect(r.output, part).toMatch(exp.error);
        } else await h.expectImage(r, exp);
      } finally {
        repo.close();
      }
    },
  };
}

function addGitChecks(name: string, format: string): Check[] {
  return [
    // BuildKit's first build also runs `apk add git` and `git status -s` in the kept checkout;
    // without a network or git in the image, the kept .git and the owners are checked instead.
    addGit(name, format, 'basic and complicated', (url, v2) => `
FROM busybox

# Basic case
ADD ${url}/.git#v0.0.1 /x
RUN cd /x && \\
  [ "$(cat foo)" = "foo of v0.0.1" ]

# Complicated case
ARG REPO="${url}/.git"
ARG TAG="v0.0.2"
ADD --keep-git-dir=true --chown=4242:8484 --checksum=${v2} \${REPO}#\${TAG} /buildkit-chowned
USER 4242
RUN cd /buildkit-chowned && \\
  [ "$(cat foo)" = "foo of v0.0.2" ] && \\
  [ "$(stat -c %u foo)" = "4242" ] && \\
  [ "$(stat -c %g foo)" = "8484" ]
`, { files: { 'x/foo': 'foo of v0.0.1\n', 'buildkit-chowned/foo': 'foo of v0.0.2\n' }, owners: { 'buildkit-chowned/foo': '4242:8484' }, present: ['buildkit-chowned/.git/HEAD'], absent: ['x/.git'] }),
    addGit(name, format, 'checksum without keep-git-dir', (url, _v2, v3) => `
FROM busybox
ARG REPO="${url}/.git"
ARG TAG="v0.0.3"
ADD --checksum=${v3} \${REPO}#\${TAG} /nogitdir
RUN [ -f /nogitdir/foo ]
RUN [ "$(cat /nogitdir/foo)" = "foo of v0.0.3" ]
RUN [ ! -d /nogitdir/.git ]
`, { files: { 'nogitdir/foo': 'foo of v0.0.3\n' }, absent: ['nogitdir/.git'] }),
    addGit(name, format, '--keep-git-dir without a value', (url, v2) => `
		FROM busybox
		ARG REPO="${url}/.git"
		ARG TAG="v0.0.2"
		ADD --keep-git-dir --checksum=${v2} \${REPO}#\${TAG} /nogitdir
		RUN [ -f /nogitdir/foo ]
		RUN [ "$(cat /nogitdir/foo)" = "foo of v0.0.2" ]
		RUN [ -d /nogitdir/.git ]
		`, { files: { 'nogitdir/foo': 'foo of v0.0.2\n' }, present: ['nogitdir/.git/HEAD'] }),
    addGit(name, format, 'a commit as the ref and the checksum', (url, _v2, v3) => `
	FROM busybox
	ARG REPO="${url}/.git"
	ARG COMMIT="${v3}"
	ADD --keep-git-dir=true --checksum=${v3} \${REPO}#\${COMMIT} /commitdir
	RUN [ -f /commitdir/foo ]
	RUN [ "$(cat /commitdir/foo)" = "foo of v0.0.3" ]
	RUN [ -d /commitdir/.git ]
	`, { files: { 'commitdir/foo': 'foo of v0.0.3\n' }, present: ['commitdir/.git/HEAD'] }),
    addGit(name, format, 'checksum mismatch', (url, v2) => `
	FROM busybox
	ARG REPO="${url}/.git"
	ARG TAG="v0.0.3"
	ADD --checksum=${v2} \${REPO}#\${TAG} /faildir
	`, { error: /expected checksum to match/ }),
    addGit(name, format, 'garbage checksum', (url) => `
	FROM busybox
	ARG REPO="${url}/.git"
	ARG TAG="v0.0.3"
	ADD --checksum=foobar \${REPO}#\${TAG} /faildir
	`, { error: /invalid checksum[\s\S]*expected hex commit hash/ }),
  ];
}

/** testGitQueryString's repository (with a submodule served by a second server) and its hashes. */
async function queryRepos(): Promise<{ main: Repo; sub: Repo; v2: string; latest: string }> {
  const sub = await servedDir();
  await sub.sh(...init(), 'echo 123 >file', 'git add file', 'git commit -m initial', 'git update-server-info');
  const main = await servedDir();
  await main.sh(...init(), 'echo base >foo');
  writeFileSync(path.join(main.dir, 'Dockerfile'), '\nFROM scratch AS withgit\nCOPY .git/HEAD out\n\nFROM scratch as withsubmod\nCOPY submod/file out\n\nFROM scratch\nCOPY foo out\n');
  await main.sh(
    `git submodule add ${sub.url}/.git submod`,
    'git add Dockerfile foo submod', 'git commit -m initial', 'git tag v0.0.1', 'git branch base',
    'echo feature >foo', 'mkdir sub', 'echo subfeature >sub/foo', 'cp Dockerfile sub/', 'git add foo sub', 'git commit -m feature', 'git branch feature',
    'git checkout -B master base', 'echo v0.0.2 >foo', 'git add foo', 'git commit -m v0.0.2', 'git tag v0.0.2',
    'echo latest >foo', 'git add foo', 'git commit -m latest', 'git tag latest', 'git update-server-info',
  );
  return { main, sub, v2: main.git('rev-parse', 'v0.0.2'), latest: main.git('rev-parse', 'latest') };
}

interface QueryCase {
  name: string;
  /** The URL after the server's, with {v2} and {latest} for the commits' hashes. */
  url: string;
  target?: string;
  out?: string;
  err?: string;
  gap?: string;
}

const queryCases: QueryCase[] = [
  { name: 'tag with invalid commit', url: '/.git?tag=v0.0.2&commit={latest}', err: 'expected checksum to match' },
  { name: 'old style ref', url: '/.git#v0.0.2', out: 'v0.0.2\n' },
  { name: 'querystring ref', url: '/.git?ref=base', out: 'base\n' },
  { name: 'querystring branch', url: '/.git?branch=base', out: 'base\n' },
  { name: 'querystring invalid branch', url: '/.git?branch=invalid', err: 'repository does not contain ref' },
  { name: 'tag as branch', url: '/.git?branch=v0.0.2', err: 'repository does not contain ref' },
  { name: 'allowed mixed refs', url: '/.git?tag=v0.0.2#refs/tags/v0.0.2', out: 'v0.0.2\n' },
  { name: 'v2 by commit', url: '/.git?commit={latest}', out: 'latest\n' },
  { name: 'v2 by commit (wrong short)', url: '/.git?commit={v2:8}', err: 'expected checksum to match' },
  { name: 'v2 by commit (short)', url: '/.git?commit={latest:8}', out: 'latest\n' },
  { name: 'v2 ref by commit', url: '/.git?ref={v2}', out: 'v0.0.2\n' },
  { name: 'v2 ref by commit (short)', url: '/.git?ref={v2:8}', err: 'repository does not contain ref' },
  { name: 'tag with commit', url: '/.git?tag=v0.0.2&commit={v2}', out: 'v0.0.2\n' },
  { name: 'commit with commit', url: '/.git?ref={v2}&commit={v2}', out: 'v0.0.2\n' },
  { name: 'latest with commit', url: '/.git?commit={latest}', out: 'latest\n' },
  { name: 'mismatch refs', url: '/.git?tag=v0.0.2#refs/heads/master', err: 'ref conflicts' },
  { name: 'sub old-style', url: '/.git#feature:sub', out: 'subfeature\n' },
  { name: 'sub query', url: '/.git?subdir=sub&ref=feature', out: 'subfeature\n' },
  { name: 'withgit', url: '/.git?keep-git-dir=true', out: '{latest}\n', target: 'withgit' },
  { name: 'withgitandtag', url: '/.git?tag=v0.0.2&keep-git-dir=true', out: '{v2}\n', target: 'withgit' },
  { name: 'withgit-default', url: '/.git', err: '.git/HEAD": not found', target: 'withgit' },
  { name: 'withgit-valueless', url: '/.git?keep-git-dir&submodules', out: '{latest}\n', target: 'withgit' },
  { name: 'withgit-forbidden', url: '/.git?keep-git-dir=false', err: '.git/HEAD": not found', target: 'withgit' },
  { name: 'withsubmod', url: '/.git', out: '123\n', target: 'withsubmod' },
  { name: 'withsubmodset', url: '/.git?submodules=true', out: '123\n', target: 'withsubmod' },
  { name: 'withsubmodempty', url: '/.git?submodules', out: '123\n', target: 'withsubmod' },
  { name: 'withoutsubmod', url: '/.git?submodules=false', err: 'submod/file": not found', target: 'withsubmod' },
];

const escape = (s: string): RegExp => new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));

/** testGitQueryString's "add_" subtest of one case. */
function queryCheck(c: QueryCase): Check {
  return {
    name: 'testGitQueryString',
    file,
    dockerfile: '',
    ...(c.gap ? { gap: c.gap } : {}),
    // case: ${c.name}
    async custom(h) {
      const { main, sub, v2, latest } = await queryRepos();
      const fill = (s: string): string => s.replaceAll('{v2:8}', v2.slice(0, 8)).replaceAll('{latest:8}', latest.slice(0, 8)).replaceAll('{v2}', v2).replaceAll('{latest}', latest);
      try {
        const dockerfile = `
FROM scratch AS main
ADD ${main.url}${fill(c.url)} /repo/

FROM scratch as withsubmod
COPY --from=main /repo/submod/file /repo/foo

FROM scratch AS withgit
COPY --from=main /repo/.git/HEAD /repo/foo

FROM main
		`;
        const r = await h.build({ dockerfile, ...(c.target ? { target: c.target } : {}) });
        if (c.err) {
          expect(r.exitCode, r.output).not.toBe(0);
          expect(r.exitCode, r.output).not.toBe(70);
          expect(r.output, c.name).toMatch(escape(c.err));
        } else await h.expectImage(r, { files: { 'repo/foo': fill(c.out ?? '') } });
      } finally {
        main.close();
        sub.close();
      }
    },
  };
}

export default {
  file,
  checks: [
    ...addGitChecks('testAddGitSHA1', ''),
    ...addGitChecks('testAddGitSHA256', ' --object-format=sha256'),
    {
      name: 'testAddGitChecksumCache',
      file,
      dockerfile: '',
      // Adding --checksum (of the same commit) keeps the cache: the RUN after the ADD is not run again.
      async custom(h) {
        const repo = await tagsRepo('', ['v0.0.1', 'v0.0.2']);
        try {
          const v2 = repo.git('rev-parse', 'v0.0.2');
          const df = (checksum: string): string => `
FROM busybox AS src
ADD --keep-git-dir ${checksum}${repo.url}/.git#v0.0.2 /repo
RUN head -c 16 /dev/urandom | base64 > /repo/unique.txt

FROM scratch
COPY --from=src /repo/unique.txt /
`;
          const a = await h.build({ dockerfile: df('') });
          expect(a.exitCode, a.output).toBe(0);
          const b = await h.build({ dockerfile: df(`--checksum=${v2} `) });
          expect(b.exitCode, b.output).toBe(0);
          const unique = async (tag: string): Promise<string | undefined> => (await h.files(tag)).get('unique.txt')?.content;
          const first = await unique(a.tag);
          expect(first).toMatch(/\S/);
          expect(await unique(b.tag)).toBe(first);
        } finally {
          repo.close();
        }
      },
    },
    // testGitQueryString: its "add_" subtests (ADD of the URL); the "context_" ones build with
    // the git URL as the build context, which gantry does not take (a context is a directory).
    ...queryCases.map(queryCheck),
  ],
  notPorted: [],
} satisfies CheckFile;
