import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { servedDir } from './addgit.js';
import type { BuildResult, CheckFile, ContextEntry, Expectations, Harness } from './types.js';

const file = 'exclude_patterns_test.go';

const source: Record<string, string> = {
  'dir1/file-101.png': '2',
  'dir1/file-102.txt': '3',
  'dir1/file-103.jpeg': '4',
  'dir2/file-201.pdf': '6',
  'dir2/file-202.jpeg': '7',
  'dir2/file-203.png': '8',
  'dir3/file-301.mp3': '9',
  'dir3/file-302.mpeg': '10',
  'dir4/file-401.txt': '11',
};
const links: Record<string, string> = { 'dir4/file-402.txt': 'file-401.txt', 'dir4/file-403.txt': 'file-404.txt' };

const context: Record<string, ContextEntry> = {
  dir1: { dir: true, mode: 0o777 },
  dir2: { dir: true, mode: 0o777 },
  dir3: { dir: true, mode: 0o777 },
  dir4: { dir: true, mode: 0o777 },
  ...Object.fromEntries(Object.entries(source).map(([p, c]) => [p, { content: c, mode: 0o600 }])),
  ...Object.fromEntries(Object.entries(links).map(([p, l]) => [p, { symlink: l }])),
};

/** BuildKit's table: a path either excluded or with its content (a symlink's: its target). */
const cases: [string, string | null][] = [
  ['builder1/1/dir1/file-101.png', null],
  ['builder1/1/dir1/file-102.txt', '3'],
  ['builder1/1/dir1/file-103.jpeg', null],
  ['builder1/1/dir2/file-201.pdf', '6'],
  ['builder1/1/dir2/file-202.jpeg', null],
  ['builder1/1/dir2/file-203.png', null],
  ['builder1/1/dir3/file-301.mp3', '9'],
  ['builder1/1/dir3/file-302.mpeg', '10'],
  ['builder1/1/dir4/file-401.txt', '11'],
  ['builder1/1/dir4/file-402.txt', 'file-401.txt'],
  ['builder1/1/dir4/file-403.txt', 'file-404.txt'],
  ['builder2/2/dir1/file-101.png', '2'],
  ['builder2/2/dir1/file-102.txt', null],
  ['builder2/2/dir1/file-103.jpeg', '4'],
  ['builder2/2/dir2/file-201.pdf', null],
  ['builder2/2/dir2/file-202.jpeg', '7'],
  ['builder2/2/dir2/file-203.png', '8'],
  ['builder2/2/dir3/file-301.mp3', '9'],
  ['builder2/2/dir3/file-302.mpeg', '10'],
  ['builder2/2/dir4/file-401.txt', null],
  ['builder2/2/dir4/file-402.txt', null],
  ['builder2/2/dir4/file-403.txt', null],
  ['builder3/3/file-301.mp3', null],
  ['builder3/3/file-302.mpeg', '10'],
  ['builder4/4/file-101.png', null],
  ['builder4/4/file-102.txt', null],
  ['builder4/4/file-103.jpeg', null],
  ['builder4/4/file-201.pdf', null],
  ['builder4/4/file-202.jpeg', null],
  ['builder4/4/file-203.png', null],
  ['builder4/4/file-301.mp3', null],
  ['builder4/4/file-302.mpeg', '10'],
  ['builder4/4/dir4/file-401.txt', null],
  ['builder4/4/dir4/file-402.txt', null],
  ['builder4/4/dir4/file-403.txt', null],
  ['builder5/5/file-101.png', null],
  ['builder5/5/file-102.txt', '3'],
  ['builder5/5/file-103.jpeg', null],
  ['builder5/5/file-201.pdf', null],
  ['builder5/5/file-202.jpeg', null],
  ['builder5/5/file-203.png', null],
  ['builder5/5/file-301.mp3', null],
  ['builder5/5/file-302.mpeg', null],
  ['builder5/5/file-401.txt', '11'],
  ['builder5/5/file-402.txt', 'file-401.txt'],
  ['builder5/5/file-403.txt', 'file-404.txt'],
];

const expectations: Expectations = {
  absent: cases.filter(([, c]) => c === null).map(([p]) => p),
  files: Object.fromEntries(cases.filter(([p, c]) => c !== null && !p.endsWith('-402.txt') && !p.endsWith('-403.txt')).map(([p, c]) => [p, c!])),
  symlinks: Object.fromEntries(cases.filter(([p, c]) => c !== null && (p.endsWith('-402.txt') || p.endsWith('-403.txt'))).map(([p, c]) => [p, c!])),
  types: { 'builder6/6': 'directory' },
};

/** The table's expectations, and builder6/6 empty (everything excluded). */
async function assertResult(h: Harness, r: BuildResult): Promise<void> {
  await h.expectImage(r, expectations);
  const inSix = [...(await h.files(r.tag)).keys()].filter((p) => p.startsWith('builder6/6/'));
  expect(inSix).toEqual([]);
}

const stages = (from: string, add: string): string => `
# ignore all the image files
FROM scratch as builder1
COPY ${from}--exclude=*/*.png --exclude=*/*.jpeg . /1

# ignore all document files
FROM scratch as builder2
COPY ${from}--exclude=*/*.pdf --exclude=*/*.txt . /2

# ignore all mp3 files
FROM scratch as builder3
${add} ${from}--exclude=*.mp3 dir3/ /3/

# Ignore everything, keeping only .mpeg files, using src as a wildcard.
# it's a fake example, just to be sure that src as wildcards work as expected.
FROM scratch as builder4
COPY ${from}--exclude=*.mp3 --exclude=*.jpeg --exclude=*.png --exclude=*.pdf --exclude=*.txt dir* /4/

# Ignore everything, keeping only txt files.
# it's a fake example, just to be sure that src as wildcards work as expected.
FROM scratch as builder5
${add} ${from}--exclude=*.mp* --exclude=*.jpeg --exclude=*.png --exclude=*.pdf dir* /5

# Exclude all files. No idea how it could be useful, but it should not be forbidden.
FROM scratch as builder6
${add} ${from}--exclude=* dir* /6

FROM scratch
COPY --from=builder1 / /builder1
COPY --from=builder2 / /builder2
COPY --from=builder3 / /builder3
COPY --from=builder4 / /builder4
COPY --from=builder5 / /builder5
COPY --from=builder6 / /builder6
`;

export default {
  file,
  checks: [
    {
      name: 'testExcludedFilesOnCopy',
      file,
      dockerfile: '',
      // From a plain directory. BuildKit gives the Dockerfile as a mount of its own; here it is
      // written outside the context (-f); the harness leaves an empty Dockerfile in the context,
      // which nothing asserts about.
      async custom(h) {
        const r = await h.build({ dockerfile: '', context, workFiles: { 'Dockerfile.exclude': stages('', 'ADD') }, args: ['-f', '{work}/Dockerfile.exclude'] });
        await assertResult(h, r);
      },
    },
    {
      name: 'testExcludedFilesOnCopy',
      file,
      dockerfile: '',
      // From a git repository served over HTTP (the ADDs are COPY --from=base, as in BuildKit).
      async custom(h) {
        const repo = await servedDir();
        try {
          for (const p of ['dir1', 'dir2', 'dir3', 'dir4']) mkdirSync(path.join(repo.dir, p));
          for (const [p, c] of Object.entries(source)) writeFileSync(path.join(repo.dir, p), c, { mode: 0o600 });
          for (const [p, l] of Object.entries(links)) symlinkSync(l, path.join(repo.dir, p));
          await repo.sh('git init', 'git config --local user.email test', 'git config --local user.name test', 'git add *', 'git commit -m 0.1', 'git tag 0.1', 'git update-server-info');
          const dockerfile = `
FROM scratch AS base
ARG REPO="${repo.url}/.git"
ARG TAG="0.1"
ADD --keep-git-dir=true \${REPO}#\${TAG} /
${stages('--from=base ', 'COPY')}`;
          const r = await h.build({ dockerfile });
          await assertResult(h, r);
        } finally {
          repo.close();
        }
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
