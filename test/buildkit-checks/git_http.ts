import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_git_http_test.go';

// BuildKit builds from a context that is a git repository or a tarball over http, or from a
// Dockerfile over http (docker build URL); so does gantry (src/builder/remote-context.ts).

/** Serves `dir`'s files (a static file server, as Go's http.FileServer) while `run` runs. */
async function withFileServer(dir: string, run: (base: string) => Promise<void>): Promise<void> {
  const s: Server = createServer((req, res) => {
    const p = path.join(dir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    if (!p.startsWith(dir) || !statSync(p, { throwIfNoEntry: false })?.isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200).end(readFileSync(p));
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  try {
    await run(`http://127.0.0.1:${(s.address() as AddressInfo).port}`);
  } finally {
    await new Promise((resolve) => s.close(resolve));
  }
}

/** `gantry build URL` (with `extra` options) in the check's store; returns the image's files. */
async function buildURL(h: Harness, url: string, tag: string, extra: string[] = []) {
  const r = await h.gantry(['build', '--progress', 'plain', '-t', tag, ...extra, url]);
  expect(r.exitCode, r.output).toBe(0);
  return h.files(tag);
}

function fromGit(format: 'sha1' | 'sha256') {
  return async (h: Harness): Promise<void> => {
    const dir = mkdtempSync(path.join(tmpdir(), 'bk-git-'));
    const git = (...args: string[]): void => void execFileSync('git', args, { cwd: dir, env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir } });
    try {
      let dockerfile = '\nFROM busybox AS build\nRUN echo -n fromgit > foo\nFROM scratch\nCOPY --from=build foo bar\n';
      writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
      git('init', ...(format === 'sha256' ? ['--object-format=sha256'] : []));
      git('config', '--local', 'user.email', 'test');
      git('config', '--local', 'user.name', 'test');
      git('add', 'Dockerfile');
      git('commit', '-m', 'initial');
      git('branch', 'first');
      dockerfile += '\nCOPY --from=build foo bar2\n';
      writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
      git('add', 'Dockerfile');
      git('commit', '-m', 'second');
      git('update-server-info');
      await withFileServer(dir, async (base) => {
        const first = await buildURL(h, `${base}/.git#first`, `bkgit/${format}:first`);
        expect(first.get('bar')?.content).toBe('fromgit');
        expect(first.has('bar2')).toBe(false);
        const main = await buildURL(h, `${base}/.git`, `bkgit/${format}:main`);
        expect(main.get('bar')?.content).toBe('fromgit');
        expect(main.get('bar2')?.content).toBe('fromgit');
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

export default {
  file,
  checks: [
    { name: 'testDockerfileFromGitSHA1', file, dockerfile: '', custom: fromGit('sha1') },
    { name: 'testDockerfileFromGitSHA256', file, dockerfile: '', custom: fromGit('sha256') },
    {
      name: 'testDockerfileFromHTTP',
      file,
      dockerfile: '',
     
      async custom(h) {
        const dir = mkdtempSync(path.join(tmpdir(), 'bk-http-'));
        try {
          const src = path.join(dir, 'src');
          execFileSync('mkdir', [src]);
          writeFileSync(path.join(src, 'mydockerfile'), 'FROM scratch\nCOPY foo bar\n', { mode: 0o600 });
          writeFileSync(path.join(src, 'foo'), 'foo-contents', { mode: 0o600 });
          execFileSync('tar', ['-cf', path.join(dir, 'myurl'), '-C', src, 'mydockerfile', 'foo']);
          await withFileServer(dir, async (base) => {
            const files = await buildURL(h, `${base}/myurl`, 'bkhttp/ctx:1', ['-f', 'mydockerfile']);
            expect(files.get('bar')?.content).toBe('foo-contents');
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
    {
      name: 'testHTTPDockerfile',
      file,
      dockerfile: '',
     
      async custom(h) {
        const dir = mkdtempSync(path.join(tmpdir(), 'bk-http-'));
        try {
          writeFileSync(path.join(dir, 'df'), '\nFROM busybox\nRUN echo -n "foo-contents" > /foo\nFROM scratch\nCOPY --from=0 /foo /foo\n');
          // BuildKit's filename (mydockerfile) is bogus: any name works for a Dockerfile URL.
          await withFileServer(dir, async (base) => {
            const files = await buildURL(h, `${base}/df`, 'bkhttp/df:1', ['-f', 'mydockerfile']);
            expect(files.get('foo')?.content).toBe('foo-contents');
          });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
