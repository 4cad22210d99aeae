import type { CheckFile } from './types.js';

const file = 'dockerfile_heredoc_test.go';

const lines = (...l: string[]): string => l.join('\n') + '\n';

export default {
  file,
  checks: [
    {
      name: 'testCopyHeredoc',
      file,
      dockerfile: `
FROM busybox AS build

RUN adduser -D user
WORKDIR /dest

COPY <<EOF single
single file
EOF

COPY <<EOF <<EOF2 double/
first file
EOF
second file
EOF2

RUN mkdir -p /permfiles
COPY --chmod=777 <<EOF /permfiles/all
dummy content
EOF
COPY --chmod=0644 <<EOF /permfiles/rw
dummy content
EOF
COPY --chown=user:user <<EOF /permfiles/owned
dummy content
EOF
RUN stat -c "%04a" /permfiles/all >> perms && \\
	stat -c "%04a" /permfiles/rw >> perms && \\
	stat -c "%U:%G" /permfiles/owned >> perms

FROM scratch
COPY --from=build /dest /
`,
      files: { single: 'single file\n', 'double/EOF': 'first file\n', 'double/EOF2': 'second file\n', perms: '0777\n0644\nuser:user\n' },
    },
    {
      name: 'testCopyHeredocSpecialSymbols',
      file,
      dockerfile: lines(
        '',
        'FROM scratch',
        '',
        'COPY <<EOF quotefile',
        '"quotes in file"',
        'EOF',
        '',
        'COPY <<EOF slashfile1',
        '\\',
        'EOF',
        'COPY <<EOF slashfile2',
        '\\\\',
        'EOF',
        'COPY <<EOF slashfile3',
        '\\$',
        'EOF',
        '',
        'COPY <<"EOF" rawslashfile1',
        '\\',
        'EOF',
        'COPY <<"EOF" rawslashfile2',
        '\\\\',
        'EOF',
        'COPY <<"EOF" rawslashfile3',
        '\\$',
        'EOF',
      ),
      files: {
        quotefile: '"quotes in file"\n',
        slashfile1: '\n',
        slashfile2: '\\\n',
        slashfile3: '$\n',
        rawslashfile1: '\\\n',
        rawslashfile2: '\\\\\n',
        rawslashfile3: '\\$\n',
      },
    },
    {
      name: 'testRunBasicHeredoc',
      file,
      dockerfile: `
FROM busybox AS build

RUN <<EOF
echo "i am" >> /dest
whoami >> /dest
EOF

FROM scratch
COPY --from=build /dest /dest
`,
      files: { dest: 'i am\nroot\n' },
    },
    {
      name: 'testRunFakeHeredoc',
      file,
      dockerfile: `
FROM busybox AS build

SHELL ["/bin/awk"]
RUN <<EOF
BEGIN {
	print "foo" > "/dest"
}
EOF

FROM scratch
COPY --from=build /dest /dest
`,
      files: { dest: 'foo\n' },
    },
    {
      name: 'testRunShebangHeredoc',
      file,
      dockerfile: `
FROM busybox AS build

WORKDIR /dest

RUN <<EOF
#!/bin/awk -f
BEGIN {
	print "hello" >> "./out1"
	print "world" >> "./out1"
}
EOF

RUN <<-EOF
	#!/bin/awk -f
	BEGIN {
		print "hello" >> "./out2"
		print "world" >> "./out2"
	}
EOF

FROM scratch
COPY --from=build /dest /
`,
      files: { out1: 'hello\nworld\n', out2: 'hello\nworld\n' },
    },
    {
      name: 'testRunComplexHeredoc',
      file,
      dockerfile: `
FROM busybox AS build

WORKDIR /dest

RUN cat <<EOF1 | tr '[:upper:]' '[:lower:]' > ./out1; \\
	cat <<EOF2 | tr '[:lower:]' '[:upper:]' > ./out2
hello WORLD
EOF1
HELLO world
EOF2

RUN <<EOF 3<<IN1 4<<IN2 awk -f -
BEGIN {
	while ((getline line < "/proc/self/fd/3") > 0)
		print tolower(line) > "./fd3"
	while ((getline line < "/proc/self/fd/4") > 0)
		print toupper(line) > "./fd4"
}
EOF
hello WORLD
IN1
HELLO world
IN2

FROM scratch
COPY --from=build /dest /
`,
      files: { out1: 'hello world\n', out2: 'HELLO WORLD\n', fd3: 'hello world\n', fd4: 'HELLO WORLD\n' },
    },
    {
      name: 'testHeredocIndent',
      file,
      dockerfile: `
FROM busybox AS build

COPY <<EOF /dest/foo-copy
	foo
EOF

COPY <<-EOF /dest/bar-copy
	bar
EOF

RUN <<EOF
echo "
	foo" > /dest/foo-run
EOF

RUN <<-EOF
echo "
	bar" > /dest/bar-run
EOF

RUN <<EOF
#!/bin/sh
echo "
	foo" > /dest/foo2-run
EOF

RUN <<-EOF
#!/bin/sh
echo "
	bar" > /dest/bar2-run
EOF

RUN <<EOF sh > /dest/foo3-run
echo "
	foo"
EOF

RUN <<-EOF sh > /dest/bar3-run
echo "
	bar"
EOF

FROM scratch
COPY --from=build /dest /
`,
      files: {
        'foo-copy': '\tfoo\n',
        'foo-run': '\n\tfoo\n',
        'foo2-run': '\n\tfoo\n',
        'foo3-run': '\n\tfoo\n',
        'bar-copy': 'bar\n',
        'bar-run': '\nbar\n',
        'bar2-run': '\nbar\n',
        'bar3-run': '\nbar\n',
      },
    },
    {
      name: 'testHeredocVarSubstitution',
      file,
      dockerfile: `
FROM busybox as build

ARG name=world

COPY <<EOF /dest/c1
Hello \${name}!
EOF
COPY <<'EOF' /dest/c2
Hello \${name}!
EOF
COPY <<"EOF" /dest/c3
Hello \${name}!
EOF

COPY <<EOF /dest/q1
Hello '\${name}'!
EOF
COPY <<EOF /dest/q2
Hello "\${name}"!
EOF
COPY <<'EOF' /dest/qsingle1
Hello '\${name}'!
EOF
COPY <<'EOF' /dest/qsingle2
Hello "\${name}"!
EOF
COPY <<"EOF" /dest/qdouble1
Hello '\${name}'!
EOF
COPY <<"EOF" /dest/qdouble2
Hello "\${name}"!
EOF

RUN <<EOF
greeting="Hello"
echo "\${greeting} \${name}!" > /dest/r1
EOF
RUN <<EOF
name="new world"
echo "Hello \${name}!" > /dest/r2
EOF

FROM scratch
COPY --from=build /dest /
`,
      files: {
        c1: 'Hello world!\n',
        c2: 'Hello ${name}!\n',
        c3: 'Hello ${name}!\n',
        q1: "Hello 'world'!\n",
        q2: 'Hello "world"!\n',
        qsingle1: "Hello '${name}'!\n",
        qsingle2: 'Hello "${name}"!\n',
        qdouble1: "Hello '${name}'!\n",
        qdouble2: 'Hello "${name}"!\n',
        r1: 'Hello world!\n',
        r2: 'Hello new world!\n',
      },
    },
    {
      name: 'testOnBuildHeredoc',
      file,
      // BuildKit pushes the base image to a registry and builds FROM it there; here the base is
      // tagged in the check's store and the second build takes it FROM that name.
      dockerfile: '\nFROM busybox\nONBUILD RUN <<EOF\necho "hello world" >> /dest\nEOF\n',
      async custom(h) {
        const base = await h.build({ dockerfile: '\nFROM busybox\nONBUILD RUN <<EOF\necho "hello world" >> /dest\nEOF\n' }, { tag: 'checks/testonbuildheredoc:base' });
        await h.expectImage(base, { absent: ['dest'] });
        const r = await h.build({ dockerfile: '\n\tFROM checks/testonbuildheredoc:base AS base\n\tFROM scratch\n\tCOPY --from=base /dest /dest\n\t' });
        await h.expectImage(r, { files: { dest: 'hello world\n' } });
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
