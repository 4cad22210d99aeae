import { createServer } from 'node:net';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_copy_test.go';

/** One line of testCopyChownExistingDir's ownership checks, as BuildKit writes it (backticks and all). */
const own = (e: string, p: string): string =>
  `e="${e}"; p="${p}"; a=\`stat -c "%u:%g" "$p"\`; if [ "$a" != "$e" ]; then echo "incorrect ownership on $p. expected $e, got $a"; exit 1; fi`;
const ownRun = (pairs: [string, string][]): string => `RUN ${pairs.map(([e, p]) => own(e, p)).join(' \\\n && ')}\n`;

const chownExistingDir = `
# Set up files and directories with known ownership
FROM busybox AS source
RUN touch /file && chown 100:200 /file \\
 && mkdir -p /dir/subdir \\
 && touch /dir/subdir/nestedfile \\
 && chown 100:200 /dir \\
 && chown 101:201 /dir/subdir \\
 && chown 102:202 /dir/subdir/nestedfile

FROM busybox AS test_base
RUN mkdir -p /existingdir/existingsubdir \\
 && touch /existingdir/existingfile \\
 && chown 500:600 /existingdir \\
 && chown 501:601 /existingdir/existingsubdir \\
 && chown 501:601 /existingdir/existingfile

# Copy files from the source stage
FROM test_base AS copy_from
COPY --from=source /file .
COPY --from=source /dir /dir
COPY --from=source /dir/. /existingdir
${ownRun([
  ['100:200', '/file'], ['0:0', '/dir'], ['101:201', '/dir/subdir'], ['102:202', '/dir/subdir/nestedfile'],
  ['500:600', '/existingdir'], ['501:601', '/existingdir/existingsubdir'], ['501:601', '/existingdir/existingfile'],
  ['101:201', '/existingdir/subdir'], ['102:202', '/existingdir/subdir/nestedfile'],
])}
# Copy files from the source stage and chown them.
FROM test_base AS copy_from_chowned
COPY --from=source --chown=300:400 /file .
COPY --from=source --chown=300:400 /dir /dir
COPY --from=source --chown=300:400 /dir/. /existingdir
${ownRun([
  ['300:400', '/file'], ['300:400', '/dir'], ['300:400', '/dir/subdir'], ['300:400', '/dir/subdir/nestedfile'],
  ['500:600', '/existingdir'], ['501:601', '/existingdir/existingsubdir'], ['501:601', '/existingdir/existingfile'],
  ['300:400', '/existingdir/subdir'], ['300:400', '/existingdir/subdir/nestedfile'],
])}`;

/** testChmodNonOctal's Dockerfile, built from its cases as the Go test builds it. */
function chmodNonOctalDockerfile(): string {
  const cases = [
    { src: 'file', dst: 'f1', mode: 'go-w', isDir: false },
    { src: 'file', dst: 'f2', mode: 'u=rw,g=r,o=r', isDir: false },
    { src: 'file', dst: 'f3', mode: 'a+X', isDir: false },
    { src: 'dir', dst: 'd1', mode: 'go-w', isDir: true },
    { src: 'dir', dst: 'd2', mode: 'u+rw,g+r,o-x,o+w', isDir: true },
    { src: 'dir', dst: 'd3', mode: 'a+X', isDir: true },
  ];
  let expected = '';
  let copies = '';
  let verify = '';
  for (const c of cases) {
    if (c.isDir) {
      expected += `RUN mkdir -p /input/dirs/${c.dst} && cp -a /input/${c.src} /input/dirs/${c.dst}/${c.dst}\n`;
      expected += `RUN cp -a /input/dirs/${c.dst}/. /expected/ && chmod ${c.mode} /expected/${c.dst}\n`;
      copies += `COPY --from=base --chmod=${c.mode} /input/dirs/${c.dst} /\n`;
    } else {
      expected += `RUN cp -a /input/${c.src} /expected/${c.dst} && chmod ${c.mode} /expected/${c.dst}\n`;
      copies += `COPY --from=base --chmod=${c.mode} /input/${c.src} /${c.dst}\n`;
    }
    verify += `RUN [ "$(stat -c %A /actual/${c.dst})" = "$(stat -c %A /expected/${c.dst})" ]\n`;
  }
  // FROM alpine in BuildKit's test: busybox has the same chmod, cp -a and stat.
  return `
FROM busybox as base
RUN <<eot
	set -ex
	mkdir /input
	touch /input/file
	chmod 666 /input/file
	mkdir /input/dir
	chmod 124 /input/dir
	mkdir /expected
eot
${expected}
FROM scratch as result
${copies}
FROM base
COPY --from=result / /actual/
${verify}
`;
}

export default {
  file,
  checks: [
    {
      name: 'testDockerfileCopyFromArgs',
      file,
      dockerfile: 'FROM scratch\nCOPY --from=$FOO . .\n',
      error: /variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround/,
    },
    {
      name: 'testEmptyDestDir',
      file,
      dockerfile: 'FROM busybox\nENV empty=""\nCOPY testfile $empty\nRUN [ "$(cat testfile)" == "contents0" ]\n',
      context: { testfile: { content: 'contents0', mode: 0o600 } },
      files: { testfile: 'contents0' },
    },
    {
      name: 'testPreserveDestDirSlash',
      file,
      dockerfile: 'FROM busybox\nCOPY testfile /sample/\nRUN [ "$(cat /sample/testfile)" == "contents0" ]\n',
      context: { testfile: { content: 'contents0', mode: 0o600 } },
      files: { 'sample/testfile': 'contents0' },
    },
    {
      name: 'testCopyLinkDotDestDir',
      file,
      dockerfile: 'FROM busybox\nWORKDIR /var/www\nCOPY --link testfile .\nRUN [ "$(cat testfile)" == "contents0" ]\n',
      context: { testfile: { content: 'contents0', mode: 0o600 } },
      files: { 'var/www/testfile': 'contents0' },
    },
    {
      name: 'testCopyLinkEmptyDestDir',
      file,
      dockerfile: 'FROM busybox\nWORKDIR /var/www\nENV empty=""\nCOPY --link testfile $empty\nRUN [ "$(cat testfile)" == "contents0" ]\n',
      context: { testfile: { content: 'contents0', mode: 0o600 } },
      files: { 'var/www/testfile': 'contents0' },
    },
    {
      name: 'testCopyChownExistingDir',
      file,
      // The Dockerfile is Dockerfile.web, and Dockerfile a symlink to it. The RUN lines assert the
      // owners (the build fails otherwise); the default target first, then copy_from.
      dockerfile: chownExistingDir,
      context: { 'Dockerfile.web': { content: chownExistingDir, mode: 0o600 }, Dockerfile: { symlink: 'Dockerfile.web' } },
      owners: { file: '300:400', dir: '300:400', 'dir/subdir/nestedfile': '300:400', existingdir: '500:600', 'existingdir/existingfile': '501:601', 'existingdir/subdir/nestedfile': '300:400' },
      then: [
        {
          target: 'copy_from',
          context: { 'Dockerfile.web': { content: chownExistingDir, mode: 0o600 }, Dockerfile: { symlink: 'Dockerfile.web' } },
          owners: { file: '100:200', dir: '0:0', 'dir/subdir': '101:201', existingdir: '500:600', 'existingdir/subdir/nestedfile': '102:202' },
        },
      ],
    },
    {
      name: 'testCopyWildcardCache',
      file,
      dockerfile: '',
      // Changing bar (copied after the RUN) keeps the RUN cached; changing foo2 (matched by foo*
      // before it) runs it again.
      async custom(h) {
        const dockerfile = 'FROM busybox AS base\nCOPY foo* files/\nRUN cat /dev/urandom | head -c 100 | sha256sum > unique\nCOPY bar files/\nFROM scratch\nCOPY --from=base unique /\n';
        const unique = async (tag: string): Promise<string> => (await h.files(tag)).get('unique')?.content ?? '';
        const a = await h.build({ dockerfile, context: { foo1: 'foo1-data', foo2: 'foo2-data', bar: 'bar-data' } });
        expect(a.exitCode, a.output).toBe(0);
        const first = await unique(a.tag);
        expect(first).toMatch(/^[0-9a-f]{64}/);
        const b = await h.build({ dockerfile, context: { bar: 'bar-data-mod' } }, { keepContext: true });
        expect(b.exitCode, b.output).toBe(0);
        expect(await unique(b.tag)).toBe(first);
        const c = await h.build({ dockerfile, context: { foo2: 'foo2-data-mod' } }, { keepContext: true });
        expect(c.exitCode, c.output).toBe(0);
        expect(await unique(c.tag)).not.toBe(first);
      },
    },
    {
      name: 'testEmptyWildcard',
      file,
      dockerfile: 'FROM scratch\nCOPY foo nomatch* /\n',
      context: { foo: 'contents0' },
      files: { foo: 'contents0' },
    },
    {
      name: 'testCopyChownCreateDest',
      file,
      dockerfile: 'FROM busybox\nARG group\nENV owner user01\nRUN adduser -D user\nRUN adduser -D user01\nCOPY --chown=user:user . /dest\nCOPY --chown=${owner}:${group} . /dest01\nRUN [ "$(stat -c "%U %G" /dest)" == "user user" ]\nRUN [ "$(stat -c "%U %G" /dest01)" == "user01 user" ]\n',
      buildArgs: { group: 'user' },
      owners: { dest: '1000:1000', dest01: '1001:1000' },
    },
    {
      name: 'testCopyThroughSymlinkContext',
      file,
      dockerfile: 'FROM scratch\nCOPY link/foo .\n',
      context: { link: { symlink: 'sub' }, sub: { dir: true, mode: 0o700 }, 'sub/foo': { content: 'contents', mode: 0o600 } },
      files: { foo: 'contents' },
    },
    {
      name: 'testCopyThroughSymlinkMultiStage',
      file,
      dockerfile: 'FROM busybox AS build\nRUN mkdir -p /out/sub && ln -s /out/sub /sub && ln -s out/sub /sub2 && echo -n "data" > /sub/foo\nFROM scratch\nCOPY --from=build /sub/foo .\nCOPY --from=build /sub2/foo bar\n',
      files: { foo: 'data' },
    },
    {
      name: 'testCopySocket',
      file,
      dockerfile: '',
      // The harness cannot write a socket into the context: a first build writes the context,
      // then a socket is bound in it and the build runs again on the same context.
      async custom(h) {
        const dockerfile = 'FROM scratch\nCOPY . /\n';
        const first = await h.build({ dockerfile });
        expect(first.exitCode, first.output).toBe(0);
        const server = createServer();
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(path.join(first.ctx, 'socket.sock'), resolve);
        });
        try {
          const r = await h.build({ dockerfile }, { keepContext: true });
          await h.expectImage(r, { types: { 'socket.sock': 'file' } });
        } finally {
          server.close();
        }
      },
    },
    {
      name: 'testCopyFollowAllSymlinks',
      file,
      dockerfile: 'FROM scratch\nCOPY foo /\nCOPY foo/sub bar\n',
      // BuildKit only asserts that the build succeeds.
      context: { bar: { content: 'bar-contents', mode: 0o600 }, foo: { dir: true, mode: 0o700 }, 'foo/sub': { symlink: '../bar' } },
    },
    {
      name: 'testCopySymlinks',
      file,
      dockerfile: 'FROM scratch\nCOPY foo /\nCOPY sub/l* alllinks/\n',
      context: {
        bar: { content: 'bar-contents', mode: 0o600 },
        foo: { symlink: 'bar' },
        sub: { dir: true, mode: 0o700 },
        'sub/lfile': { content: 'lfile-contents', mode: 0o600 },
        'sub/l0': { symlink: 'subfile' },
        'sub/subfile': { content: 'subfile-contents', mode: 0o600 },
        'sub/l1': { symlink: 'second' },
        'sub/second': { symlink: 'baz' },
        'sub/baz': { content: 'baz-contents', mode: 0o600 },
      },
      // BuildKit reads these from a local export (following links): each is the file's text here.
      files: { foo: 'bar-contents', 'alllinks/l0': 'subfile-contents', 'alllinks/lfile': 'lfile-contents', 'alllinks/l1': 'baz-contents' },
    },
    {
      name: 'testCopyChown',
      file,
      // Debian's busybox names gid 65534 "nogroup", Docker Hub's busybox "nobody", which the
      // test's --chown=1000:nobody and stat expect: the group is renamed first.
      dockerfile: `
FROM busybox AS base
RUN sed -i 's/^nogroup:/nobody:/' /etc/group
ENV owner 1000
RUN mkdir -m 0777 /out
COPY --chown=daemon foo /
COPY --chown=1000:nobody bar /baz
ARG group
COPY --chown=\${owner}:\${group} foo /foobis
RUN stat -c "%U %G" /foo  > /out/fooowner
RUN stat -c "%u %G" /baz/sub  > /out/subowner
RUN stat -c "%u %G" /foobis  > /out/foobisowner
FROM scratch
COPY --from=base /out /
`,
      context: { foo: { content: 'foo-contents', mode: 0o600 }, bar: { dir: true, mode: 0o700 }, 'bar/sub': { content: '', mode: 0o600 } },
      buildArgs: { group: 'nobody' },
      files: { fooowner: 'daemon daemon\n', subowner: '1000 nobody\n', foobisowner: '1000 nobody\n' },
    },
    {
      name: 'testCopyChmod',
      file,
      dockerfile: `
FROM busybox AS base

RUN mkdir -m 0777 /out
COPY --chmod=0644 foo /
COPY --chmod=777 bar /baz
COPY --chmod=0 foo /foobis
COPY --chmod=777 foo /parent/foo
COPY --chmod=770 foo /parent/sub/foo

ARG mode
COPY --chmod=\${mode} foo /footer

RUN stat -c "%04a" /foo  > /out/fooperm
RUN stat -c "%04a" /baz  > /out/barperm
RUN stat -c "%04a" /foobis  > /out/foobisperm
RUN stat -c "%04a" /parent  > /out/parentperm
RUN stat -c "%04a" /parent/sub  > /out/subparentperm
RUN stat -c "%04a" /footer  > /out/footerperm
FROM scratch
COPY --from=base /out /
`,
      context: { foo: { content: 'foo-contents', mode: 0o600 }, bar: { content: 'bar-contents', mode: 0o700 } },
      buildArgs: { mode: '755' },
      files: { fooperm: '0644\n', barperm: '0777\n', foobisperm: '0000\n', parentperm: '0777\n', subparentperm: '0770\n', footerperm: '0755\n' },
    },
    {
      name: 'testCopyInvalidChmod',
      file,
      dockerfile: 'FROM scratch\nCOPY --chmod=64a foo /\n',
      context: { foo: 'foo-contents' },
      error: /invalid chmod parameter: '64a'\. it should be octal string and between 0 and 07777/,
    },
    {
      name: 'testCopyInvalidChmod',
      file,
      dockerfile: 'FROM scratch\nCOPY --chmod=10000 foo /\n',
      context: { foo: 'foo-contents' },
      error: /invalid chmod parameter: '10000'\. it should be octal string and between 0 and 07777/,
    },
    {
      name: 'testCopyOverrideFiles',
      file,
      dockerfile: 'FROM scratch AS base\nCOPY sub sub\nCOPY sub sub\nCOPY files/foo.go dest/foo.go\nCOPY files/foo.go dest/foo.go\nCOPY files dest\n',
      context: {
        sub: { dir: true, mode: 0o700 },
        'sub/dir1': { dir: true, mode: 0o700 },
        'sub/dir1/dir2': { dir: true, mode: 0o700 },
        'sub/dir1/dir2/foo': { content: 'foo-contents', mode: 0o600 },
        files: { dir: true, mode: 0o700 },
        'files/foo.go': { content: 'foo.go-contents', mode: 0o600 },
      },
      files: { 'sub/dir1/dir2/foo': 'foo-contents', 'dest/foo.go': 'foo.go-contents' },
    },
    {
      name: 'testCopyVarSubstitution',
      file,
      dockerfile: 'FROM scratch AS base\nENV FOO bar\nCOPY $FOO baz\n',
      context: { bar: 'bar-contents' },
      files: { baz: 'bar-contents' },
    },
    {
      name: 'testCopyWildcards',
      file,
      dockerfile: 'FROM scratch AS base\nCOPY *.go /gofiles/\nCOPY f*.go foo2.go\nCOPY sub/* /subdest/\nCOPY sub/*/dir2/foo /subdest2/\nCOPY sub/*/dir2/foo /subdest3/bar\nCOPY . all/\nCOPY sub/dir1/ subdest4\nCOPY sub/dir1/. subdest5\nCOPY sub/dir1 subdest6\n',
      context: {
        'foo.go': { content: 'foo-contents', mode: 0o600 },
        'bar.go': { content: 'bar-contents', mode: 0o600 },
        sub: { dir: true, mode: 0o700 },
        'sub/dir1': { dir: true, mode: 0o700 },
        'sub/dir1/dir2': { dir: true, mode: 0o700 },
        'sub/dir1/dir2/foo': { content: 'foo-contents', mode: 0o600 },
      },
      files: {
        'gofiles/foo.go': 'foo-contents',
        'gofiles/bar.go': 'bar-contents',
        'foo2.go': 'foo-contents',
        'subdest/dir2/foo': 'foo-contents',
        'subdest2/foo': 'foo-contents',
        'subdest3/bar': 'foo-contents',
        'all/foo.go': 'foo-contents',
        'subdest4/dir2/foo': 'foo-contents',
        'subdest5/dir2/foo': 'foo-contents',
        'subdest6/dir2/foo': 'foo-contents',
      },
    },
    {
      name: 'testCopyRelative',
      file,
      // BuildKit asserts with the RUN lines; the files are checked in the image too.
      dockerfile: `
FROM busybox
WORKDIR /test1
WORKDIR test2
RUN sh -c "[ "$PWD" = '/test1/test2' ]"
COPY foo ./
RUN sh -c "[ $(cat /test1/test2/foo) = 'hello' ]"
ADD foo ./bar/baz
RUN sh -c "[ $(cat /test1/test2/bar/baz) = 'hello' ]"
COPY foo ./bar/baz2
RUN sh -c "[ $(cat /test1/test2/bar/baz2) = 'hello' ]"
WORKDIR ..
COPY foo ./
RUN sh -c "[ $(cat /test1/foo) = 'hello' ]"
COPY foo /test3/
RUN sh -c "[ $(cat /test3/foo) = 'hello' ]"
WORKDIR /test4
COPY . .
RUN sh -c "[ $(cat /test4/foo) = 'hello' ]"
WORKDIR /test5/test6
COPY foo ../
RUN sh -c "[ $(cat /test5/foo) = 'hello' ]"
`,
      context: { foo: { content: 'hello', mode: 0o600 } },
      files: { 'test1/test2/foo': 'hello', 'test1/test2/bar/baz': 'hello', 'test1/test2/bar/baz2': 'hello', 'test1/foo': 'hello', 'test3/foo': 'hello', 'test4/foo': 'hello', 'test5/foo': 'hello' },
    },
    {
      name: 'testCopyUnicodePath',
      file,
      // FROM alpine in BuildKit's test; the base does not matter.
      dockerfile: 'FROM busybox\nCOPY test-äöü.txt /\nCOPY test-%C3%A4%C3%B6%C3%BC.txt /\nCOPY test+aou.txt /\n',
      context: { 'test-äöü.txt': { content: 'foo', mode: 0o644 }, 'test-%C3%A4%C3%B6%C3%BC.txt': { content: 'bar', mode: 0o644 }, 'test+aou.txt': { content: 'baz', mode: 0o644 } },
      files: { 'test-äöü.txt': 'foo', 'test-%C3%A4%C3%B6%C3%BC.txt': 'bar', 'test+aou.txt': 'baz' },
    },
    {
      name: 'testChmodNonOctal',
      file,
      // The RUN lines compare each COPY --chmod result with chmod's on the same input.
      dockerfile: chmodNonOctalDockerfile(),
      modes: { 'actual/f1': 0o644, 'actual/f2': 0o644, 'actual/f3': 0o666, 'actual/d1': 0o104, 'actual/d2': 0o766, 'actual/d3': 0o135 },
    },
  ],
  notPorted: [
    {
      name: 'testLocalCustomSessionID',
      file,
      reason: 'replaces a stage with a local directory of a custom session (context:base=local:basedir): needs --build-context, which gantry lacks (issue 21), and asserts session plumbing',
    },
  ],
} satisfies CheckFile;
