import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { buildWithFiles, tarball } from './add.js';
import type { Check, CheckFile } from './types.js';

const file = 'dockerfile_core_test.go';

const dirsDockerfile = '\nFROM busybox\nCOPY foo /foo2\nCOPY foo /\nRUN echo -n bar > foo3\nRUN test -f foo\nRUN cmp -s foo foo2\nRUN cmp -s foo foo3\n';

// Debian's busybox has no "wheel" group, which Docker Hub's busybox has (wheel:x:10:root) and
// these tests' `id` expectations name: it is added first.
const wheel = "RUN echo 'wheel:x:10:root' >> /etc/group\n";

const userDockerfile = `
FROM busybox AS base
${wheel}RUN mkdir -m 0777 /out
RUN id -un > /out/rootuser

# Make sure our defaults work
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)" = '0:0/root:root' ]

USER root
RUN [ "$(id -G):$(id -Gn)" = '0 10:root wheel' ]

# Setup dockerio user and group
RUN echo 'dockerio:x:1001:1001::/bin:/bin/false' >> /etc/passwd && \\
	echo 'dockerio:x:1001:' >> /etc/group

# Make sure we can switch to our user and all the information is exactly as we expect it to be
USER dockerio
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001:dockerio' ]

# Switch back to root and double check that worked exactly as we might expect it to
USER root
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '0:0/root:root/0 10:root wheel' ] && \\
        # Add a "supplementary" group for our dockerio user
	echo 'supplementary:x:1002:dockerio' >> /etc/group

# ... and then go verify that we get it like we expect
USER dockerio
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary' ]
USER 1001
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001 1002:dockerio supplementary' ]

# super test the new "user:group" syntax
USER dockerio:dockerio
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001:dockerio' ]
USER 1001:dockerio
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001:dockerio' ]
USER dockerio:1001
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001:dockerio' ]
USER 1001:1001
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1001/dockerio:dockerio/1001:dockerio' ]
USER dockerio:supplementary
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1002/dockerio:supplementary/1002:supplementary' ]
USER dockerio:1002
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1002/dockerio:supplementary/1002:supplementary' ]
USER 1001:supplementary
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1002/dockerio:supplementary/1002:supplementary' ]
USER 1001:1002
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1001:1002/dockerio:supplementary/1002:supplementary' ]

# make sure unknown uid/gid still works properly
USER 1042:1043
RUN [ "$(id -u):$(id -g)/$(id -un):$(id -gn)/$(id -G):$(id -Gn)" = '1042:1043/1042:1043/1043:1043' ]
USER daemon
RUN id -un > /out/daemonuser
FROM scratch
COPY --from=base /out /
USER nobody
`;

const hostnameDockerfile = '\nFROM busybox\nRUN cat /etc/hosts | grep foo\nRUN echo $HOSTNAME | grep foo\n\tRUN echo $(hostname) | grep foo\n\t';

export default {
  file,
  checks: [
    {
      name: 'testDockerfileDirs',
      file,
      // Context and Dockerfile in one directory. (BuildKit's second build, with relative paths
      // from the context as working directory, is not ported: the harness cannot set gantry's cwd.)
      dockerfile: dirsDockerfile,
      context: { foo: { content: 'bar', mode: 0o600 } },
      files: { foo: 'bar', foo2: 'bar', foo3: 'bar' },
    },
    {
      name: 'testDockerfileDirs',
      file,
      // The Dockerfile in another directory than the context (-f); the context's own Dockerfile is empty.
      dockerfile: '',
      context: { foo: { content: 'bar', mode: 0o600 } },
      workFiles: { 'Dockerfile.elsewhere': dirsDockerfile },
      args: ['-f', '{work}/Dockerfile.elsewhere'],
      files: { foo: 'bar', foo2: 'bar', foo3: 'bar' },
    },
    {
      name: 'testSymlinkedDockerfile',
      file,
      dockerfile: '\nFROM scratch\nENV foo bar\n',
      context: { 'Dockerfile.web': { content: '\nFROM scratch\nENV foo bar\n', mode: 0o600 }, Dockerfile: { symlink: 'Dockerfile.web' } },
      // BuildKit asserts only that the build succeeds; the ENV of Dockerfile.web is checked too.
      async custom(h) {
        const r = await h.build({ dockerfile: '\nFROM scratch\nENV foo bar\n', context: { 'Dockerfile.web': { content: '\nFROM scratch\nENV foo bar\n', mode: 0o600 }, Dockerfile: { symlink: 'Dockerfile.web' } } });
        expect(r.exitCode, r.output).toBe(0);
        expect((await h.inspect(r.tag)).Config.Env).toContain('foo=bar');
      },
    },
    {
      name: 'testSymlinkDestination',
      file,
      dockerfile: '',
      // COPY into a directory reached through a relative symlink that ADD unpacked.
      async custom(h) {
        const t = tarball([{ name: 'symlink', type: 'symlink', linkname: '../tmp/symlink-target', mode: 0o755 }]);
        const r = await buildWithFiles(h, { dockerfile: '\nFROM scratch\nADD t.tar /\nCOPY foo /symlink/\n', context: { foo: { content: 'content0', mode: 0o600 } } }, { 't.tar': t });
        await h.expectImage(r, { files: { 'tmp/symlink-target/foo': 'content0' }, symlinks: { symlink: '../tmp/symlink-target' } });
      },
    },
    {
      name: 'testContextChangeDirToFile',
      file,
      dockerfile: '',
      // foo is a directory in the first build's context and a file in the second's.
      async custom(h) {
        const a = await h.build({ dockerfile: '\nFROM scratch\nCOPY foo /\n', context: { foo: { dir: true, mode: 0o700 }, 'foo/bar': { content: 'contents', mode: 0o600 } } });
        expect(a.exitCode, a.output).toBe(0);
        const b = await h.build({ dockerfile: '\nFROM scratch\nCOPY foo /\n', context: { foo: { content: 'contents2', mode: 0o600 } } });
        await h.expectImage(b, { files: { foo: 'contents2' } });
      },
    },
    {
      name: 'testExposeExpansion',
      file,
      dockerfile: '\nFROM scratch\nARG PORTS="3000 4000/udp"\nEXPOSE $PORTS\nEXPOSE 5000\n',
      config: { ExposedPorts: { '3000/tcp': {}, '4000/udp': {}, '5000/tcp': {} } },
    },
    {
      name: 'testDockerfileLowercase',
      file,
      dockerfile: '',
      // The context holds "dockerfile" only (the harness always writes "Dockerfile": it is removed).
      async custom(h) {
        const first = await h.build({ dockerfile: '\nFROM scratch\n' });
        rmSync(path.join(first.ctx, 'Dockerfile'));
        writeFileSync(path.join(first.ctx, 'dockerfile'), '\nFROM scratch\n', { mode: 0o600 });
        const r = await h.gantry(['build', '--progress', 'plain', '-t', 'checks/testdockerfilelowercase:lower', first.ctx]);
        expect(r.exitCode, r.output).toBe(0);
      },
    },
    {
      name: 'testLabels',
      file,
      dockerfile: '\nFROM scratch\nLABEL foo=bar\n',
      args: ['--label', 'bar=baz'],
      config: { Labels: { foo: 'bar', bar: 'baz' } },
    },
    {
      name: 'testUser',
      file,
      dockerfile: userDockerfile,
      files: { rootuser: 'root\n', daemonuser: 'daemon\n' },
      config: { User: 'nobody' },
    },
    {
      name: 'testUserAdditionalGids',
      file,
      dockerfile: `
# Mimics the tests in https://github.com/containerd/containerd/commit/3eda46af12b1deedab3d0802adb2e81cb3521950
FROM busybox
${wheel}SHELL ["/bin/sh", "-euxc"]
RUN [ "$(id)" = "uid=0(root) gid=0(root) groups=0(root),10(wheel)" ]
USER 1234
RUN [ "$(id)" = "uid=1234 gid=0(root) groups=0(root)" ]
USER 1234:1234
RUN [ "$(id)" = "uid=1234 gid=1234 groups=1234" ]
USER daemon
RUN [ "$(id)" = "uid=1(daemon) gid=1(daemon) groups=1(daemon)" ]
`,
    },
    {
      name: 'testDockerfileCheckHostname',
      file,
      // The "arg" case. The "meta" and "meta and arg" cases set BuildKit's hostname frontend
      // option, which docker build and gantry have no flag for.
      dockerfile: hostnameDockerfile,
      buildArgs: { BUILDKIT_SANDBOX_HOSTNAME: 'foo' },
    },
    {
      name: 'testStepNames',
      file,
      dockerfile: '\nFROM busybox AS base\nWORKDIR /out\nRUN echo "base" > base\nFROM scratch\nCOPY --from=base --chmod=0644 /out /out\n',
      output: [/\[base 3\/3\] RUN echo "base" > base/, /\[stage-1 1\/1\] COPY --from=base --chmod=0644 \/out \/out/],
      files: { 'out/base': 'base\n' },
    },
    {
      name: 'testTargetMistype',
      file,
      dockerfile: '\nFROM scratch AS build\nCOPY Dockerfile /out\n\nFROM scratch\nCOPY --from=build /out /\n',
      target: 'bulid',
      error: /target stage "bulid" could not be found \(did you mean build\?\)/,
    },
  ] satisfies Check[],
  notPorted: [
    { name: 'testNoSnapshotLeak', file, reason: "asserts BuildKit's disk usage records (the same number of snapshots after a second, cached build)" },
  ],
} satisfies CheckFile;
