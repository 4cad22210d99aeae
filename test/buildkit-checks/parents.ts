import type { Check, CheckFile } from './types.js';

const file = 'dockerfile_parents_test.go';

// FROM alpine in BuildKit's tests: busybox has the same sh, test, mkdir and touch. Each stage's
// RUN asserts what the COPY --parents made (the build fails otherwise).
const relativeParents = `
FROM busybox AS base
WORKDIR /test
RUN <<eot
	set -ex
	mkdir -p a/b/c/d/e
	mkdir -p a/b2/c/d/e
	mkdir -p a/b/c2/d/e
	mkdir -p a/b/c2/d/e2
	touch a/b/c/d/foo
	touch a/b/c/d/e/bay
	touch a/b2/c/d/e/bar
	touch a/b/c2/d/e/baz
	touch a/b/c2/d/e2/baz
eot

FROM busybox AS middle
COPY --from=base --parents /test/a/b/./c/d /out/
RUN <<eot
	set -ex
	[ -d /out/c/d/e ]
	[ -f /out/c/d/foo ]
	[ ! -d /out/a ]
	[ ! -d /out/e ]
eot

FROM busybox AS end
COPY --from=base --parents /test/a/b/c/d/. /out/
RUN <<eot
	set -ex
	[ -d /out/test/a/b/c/d/e ]
	[ -f /out/test/a/b/c/d/foo ]
eot

FROM busybox AS start
COPY --from=base --parents ./test/a/b/c/d /out/
RUN <<eot
	set -ex
	[ -d /out/test/a/b/c/d/e ]
	[ -f /out/test/a/b/c/d/foo ]
eot

FROM busybox AS double
COPY --from=base --parents /test/a/./b/./c /out/
RUN <<eot
	set -ex
	[ -d /out/b/c/d/e ]
	[ -f /out/b/c/d/foo ]
eot

FROM busybox AS wildcard
COPY --from=base --parents /test/a/./*/c /out/
RUN <<eot
	set -ex
	[ -d /out/b/c/d/e ]
	[ -f /out/b2/c/d/e/bar ]
eot

FROM busybox AS doublewildcard
COPY --from=base --parents /test/a/b*/./c/**/e /out/
RUN <<eot
	set -ex
	[ -d /out/c/d/e ]
	[ -f /out/c/d/e/bay ] # via b
	[ -f /out/c/d/e/bar ] # via b2
eot

FROM busybox AS doubleinputs
COPY --from=base --parents /test/a/b/c*/./d/**/baz /test/a/b*/./c/**/bar /out/
RUN <<eot
	set -ex
	[ -f /out/d/e/baz ]
	[ ! -f /out/d/e/bay ]
	[ -f /out/d/e2/baz ]
	[ -f /out/c/d/e/bar ] # via b2
eot
`;

const missingDirectory = `
FROM busybox AS base
WORKDIR /test
RUN <<eot
	set -ex
	mkdir -p a/b/c/d/e
	touch a/b/c/d/foo
	touch a/b/c/d/e/bay
eot

FROM busybox AS normal
COPY --from=base --parents /test/a/b/c/d /out/
RUN <<eot
	set -ex
	[ -d /out/test/a/b/c/d/e ]
	[ -f /out/test/a/b/c/d/e/bay ]
	[ ! -d /out/e ]
	[ ! -d /out/a ]
eot

FROM busybox AS withpivot
COPY --from=base --parents /test/a/b/./c/d /out/
RUN <<eot
	set -ex
	[ -d /out/c/d/e ]
	[ -f /out/c/d/foo ]
	[ ! -d /out/a ]
	[ ! -d /out/e ]
eot

FROM busybox AS nonexistentfile
COPY --from=base --parents /test/nonexistent-file /out/

FROM busybox AS wildcard-nonexistent
COPY --from=base --parents /test/a/b2*/c /out/
RUN <<eot
	set -ex
	[ -d /out ]
	[ ! -d /out/a ]
eot

FROM busybox AS wildcard-afterpivot
COPY --from=base --parents /test/a/b/./c2* /out/
RUN <<eot
	set -ex
	[ -d /out ]
	[ ! -d /out/a ]
	[ ! -d /out/c* ]
eot
`;

const target = (name: string, dockerfile: string, t: string, gap?: string): Check => ({ name, file, dockerfile, target: t, ...(gap ? { gap } : {}) });

const gaps: Record<string, string> = {};

export default {
  file,
  checks: [
    {
      name: 'testCopyParents',
      file,
      dockerfile: '\nFROM scratch\nCOPY --parents foo1/foo2/bar /\n\nWORKDIR /test\nCOPY --parents foo1/foo2/ba* .\n',
      context: {
        foo1: { dir: true, mode: 0o700 },
        'foo1/foo2': { dir: true, mode: 0o700 },
        'foo1/foo2/bar': { content: 'testing', mode: 0o600 },
        'foo1/foo2/baz': { content: 'testing2', mode: 0o600 },
      },
      files: { 'foo1/foo2/bar': 'testing', 'test/foo1/foo2/bar': 'testing', 'test/foo1/foo2/baz': 'testing2' },
    },
    // testCopyRelativeParents: one check per target BuildKit builds.
    ...['middle', 'end', 'start', 'double', 'wildcard', 'doublewildcard', 'doubleinputs'].map((t) => target('testCopyRelativeParents', relativeParents, t, gaps[t])),
    // testCopyParentsMissingDirectory: one check per target.
    ...['normal', 'withpivot', 'wildcard-nonexistent', 'wildcard-afterpivot'].map((t) => target('testCopyParentsMissingDirectory', missingDirectory, t, gaps[t])),
    {
      name: 'testCopyParentsMissingDirectory',
      file,
      // BuildKit's pattern starts with its internal wording ("failed to calculate checksum of
      // ref …: "); the check wants the path and "not found" as BuildKit words them.
      dockerfile: missingDirectory,
      target: 'nonexistentfile',
      error: /"\/test\/nonexistent-file": not found/,
    },
  ],
  notPorted: [],
} satisfies CheckFile;
