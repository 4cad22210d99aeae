import { describe, expect, test } from 'vitest';
import { toInstructions, parseGoDuration, type Instruction } from '../../src/dockerfile/instructions.js';
import { parse } from '../../src/dockerfile/parser.js';
import { WarningSink } from '../../src/dockerfile/warnings.js';
import { dockerfileError } from '../helpers/errors.js';

function instructions(text: string): { list: Instruction[]; warnings: WarningSink } {
  const warnings = new WarningSink();
  return { list: toInstructions(parse(text, { file: 'Dockerfile' }), warnings), warnings };
}
const one = (line: string): Instruction => instructions(`FROM a\n${line}\n`).list[1] as Instruction;
const error = (line: string) => dockerfileError(() => instructions(`FROM a\n${line}\n`));

describe('FROM', () => {
  test('image, stage name, platform', () => {
    const [from] = instructions('FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n').list;
    expect(from).toMatchObject({ kind: 'FROM', image: 'golang:1.22', stageName: 'Build', platform: '$BUILDPLATFORM' });
  });
  test('stage name casing and AS casing warnings', () => {
    const { warnings } = instructions('FROM a as Build\n');
    expect(warnings.items.map((w) => w.rule)).toEqual(['StageNameCasing', 'FromAsCasing']);
  });
  test.each([
    ['FROM', 'FROM requires either one or three arguments (FROM <image> [AS <name>])'],
    ['FROM a b', 'FROM requires either one or three arguments (FROM <image> [AS <name>])'],
    ['FROM a AS 1x', `invalid name for build stage: "1x", name can't start with a number or contain symbols`],
    ['FROM --platform a', 'missing a value on flag: platform'],
    ['FROM --plataform=x a', 'unknown flag: plataform (did you mean --platform?)'],
  ])('%s → error', (line, detail) => {
    const err = dockerfileError(() => instructions(line + '\n'));
    expect(err.detail).toBe(detail);
    expect(err.instruction).toBe('FROM');
    expect(err.location.line).toBe(1);
  });
});

describe('RUN', () => {
  test('shell and exec form', () => {
    expect(one('RUN echo $HOME')).toMatchObject({ command: { form: 'shell', args: ['echo $HOME'] } });
    expect(one('RUN ["echo", "x"]')).toMatchObject({ command: { form: 'exec', args: ['echo', 'x'] } });
  });
  test('--mount (repeated), --network, --security', () => {
    const run = one('RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=tok --network=none --security=insecure make');
    expect(run).toMatchObject({
      kind: 'RUN',
      network: 'none',
      security: 'insecure',
      mounts: [
        { type: 'cache', target: '/root/.cache', id: '/root/.cache', sharing: 'shared' },
        { type: 'secret', id: 'tok', target: '/run/secrets/tok' },
      ],
    });
  });
  test('a heredoc-only RUN is accepted', () => {
    expect(one('RUN <<EOF\necho\nEOF')).toMatchObject({ kind: 'RUN', heredocs: [{ name: 'EOF' }] });
  });
  test.each([
    ['RUN', 'RUN requires at least one argument'],
    ['RUN --network=bridge x', 'unsupported network mode "bridge" (use default, none or host)'],
    ['RUN --security=root x', 'unsupported security mode "root" (use sandbox or insecure)'],
    ['RUN --mount=type=nfs,target=/x x', '--mount=type=nfs,target=/x: unsupported mount type "nfs"'],
    ['RUN --mount=type=cache x', '--mount=type=cache: mount type cache needs a target'],
    ['RUN --mnt=x y', 'unknown flag: mnt (did you mean --mount?)'],
    ['RUN --network=none --network=host x', 'duplicate flag specified: network'],
  ])('%s → error', (line, detail) => {
    const err = error(line);
    expect(err.detail).toBe(detail);
    expect(err.location.line).toBe(2);
  });
  test('a flag error points at the flag column', () => {
    const err = error('RUN   --mnt=x y');
    expect(err.location).toMatchObject({ line: 2, column: 7 });
    expect(err.message).toBe('Dockerfile:2:7: RUN: unknown flag: mnt (did you mean --mount?)');
  });
});

describe('CMD, ENTRYPOINT, SHELL', () => {
  test('CMD shell form and exec form (JSONArgsRecommended is the planner\'s)', () => {
    const shell = instructions('FROM a\nCMD echo hi\n');
    expect(shell.list[1]).toMatchObject({ kind: 'CMD', command: { form: 'shell', args: ['echo hi'] } });
    const exec = instructions('FROM a\nENTRYPOINT ["/bin/app"]\n');
    expect(exec.list[1]).toMatchObject({ kind: 'ENTRYPOINT', command: { form: 'exec', args: ['/bin/app'] } });
    expect(exec.warnings.items).toEqual([]);
  });
  test('empty CMD is allowed (clears the command)', () => {
    expect(one('CMD []')).toMatchObject({ kind: 'CMD', command: { form: 'exec', args: [] } });
  });
  test('SHELL takes JSON only', () => {
    expect(one('SHELL ["/bin/bash", "-c"]')).toMatchObject({ kind: 'SHELL', shell: ['/bin/bash', '-c'] });
    expect(error('SHELL /bin/bash -c').detail).toBe('SHELL requires the arguments to be in JSON form');
    expect(error('SHELL []').detail).toBe('SHELL requires at least one argument');
  });
  test('CMD takes no flags', () => {
    expect(error('CMD --x ["a"]').detail).toBe('unknown flag: x');
  });
});

describe('ENV, LABEL, ARG', () => {
  test('ENV both forms', () => {
    expect(one('ENV A=1 B="two words"')).toMatchObject({ pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '"two words"' }], legacy: false });
    const legacy = instructions('FROM a\nENV A one two\n');
    expect(legacy.list[1]).toMatchObject({ pairs: [{ key: 'A', value: 'one two' }], legacy: true });
  });
  test('LABEL pairs', () => {
    expect(one('LABEL org.opencontainers.image.title="x y" b=c')).toMatchObject({
      kind: 'LABEL',
      pairs: [{ key: 'org.opencontainers.image.title', value: '"x y"' }, { key: 'b', value: 'c' }],
    });
  });
  test('ARG with and without defaults', () => {
    expect(one('ARG A B=2 C="x y"')).toMatchObject({
      args: [{ name: 'A' }, { name: 'B', defaultValue: '2' }, { name: 'C', defaultValue: '"x y"' }],
    });
  });
  test.each([
    ['ENV', 'ENV requires at least one argument'],
    ['ENV A', 'ENV must have two arguments'],
    ['ENV A=1 B', `Syntax error - can't find = in "B". Must be of the form: name=value`],
    ['ENV =1', 'ENV names can not be blank'],
    ['LABEL', 'LABEL requires at least one argument'],
    ['ARG', 'ARG requires at least one argument'],
    ['ARG =x', 'ARG names can not be blank'],
  ])('%s → error', (line, detail) => {
    expect(error(line).detail).toBe(detail);
  });
});

describe('simple instructions', () => {
  test('MAINTAINER warns MaintainerDeprecated', () => {
    const r = instructions('FROM a\nMAINTAINER Jane <j@example.com>\n');
    expect(r.list[1]).toMatchObject({ kind: 'MAINTAINER', maintainer: 'Jane <j@example.com>' });
    expect(r.warnings.items[0]).toMatchObject({ rule: 'MaintainerDeprecated', location: { line: 2 } });
  });
  test('EXPOSE, VOLUME (both forms), USER, WORKDIR, STOPSIGNAL', () => {
    expect(one('EXPOSE 80 443/tcp 53/udp')).toMatchObject({ ports: ['80', '443/tcp', '53/udp'] });
    expect(one('VOLUME /a /b')).toMatchObject({ volumes: ['/a', '/b'] });
    expect(one('VOLUME ["/a b"]')).toMatchObject({ volumes: ['/a b'] });
    expect(one('USER app:app')).toMatchObject({ user: 'app:app' });
    expect(one('WORKDIR /srv/app')).toMatchObject({ path: '/srv/app' });
    expect(one('STOPSIGNAL SIGINT')).toMatchObject({ signal: 'SIGINT' });
  });
  test.each([
    ['EXPOSE', 'EXPOSE requires at least one argument'],
    ['VOLUME', 'VOLUME requires at least one argument'],
    ['VOLUME [""]', 'VOLUME specified can not be an empty string'],
    ['USER', 'USER requires exactly one argument'],
    ['WORKDIR', 'WORKDIR requires exactly one argument'],
    ['STOPSIGNAL', 'STOPSIGNAL requires exactly one argument'],
    ['MAINTAINER', 'MAINTAINER requires exactly one argument'],
  ])('%s → error', (line, detail) => {
    expect(error(line).detail).toBe(detail);
  });
});

describe('HEALTHCHECK', () => {
  test('CMD with every flag, exec and shell forms', () => {
    expect(
      one('HEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD ["curl", "-f", "http://localhost/"]'),
    ).toMatchObject({
      test: ['CMD', 'curl', '-f', 'http://localhost/'],
      interval: 30e9,
      timeout: 90e9,
      startPeriod: 500e6,
      startInterval: 2e9,
      retries: 3,
    });
    expect(one('HEALTHCHECK CMD curl -f http://localhost/ || exit 1')).toMatchObject({
      test: ['CMD-SHELL', 'curl -f http://localhost/ || exit 1'],
    });
  });
  test('NONE', () => {
    expect(one('HEALTHCHECK NONE')).toMatchObject({ test: ['NONE'] });
  });
  test.each([
    ['HEALTHCHECK', 'HEALTHCHECK requires at least one argument'],
    ['HEALTHCHECK NONE x', 'HEALTHCHECK NONE takes no arguments'],
    ['HEALTHCHECK --interval=1s NONE', 'HEALTHCHECK NONE takes no flags'],
    ['HEALTHCHECK CONNECT TCP 7000', 'Unknown type "CONNECT" in HEALTHCHECK (try CMD)'],
    ['HEALTHCHECK CMD', 'Missing command after HEALTHCHECK CMD'],
    ['HEALTHCHECK --interval=5 CMD x', '--interval: time: invalid duration "5"'],
    ['HEALTHCHECK --timeout=10us CMD x', 'Interval "--timeout" cannot be less than 1ms'],
    ['HEALTHCHECK --retries=-1 CMD x', '--retries cannot be negative'],
    ['HEALTHCHECK --retries=two CMD x', '--retries: invalid number "two"'],
  ])('%s → error', (line, detail) => {
    expect(error(line).detail).toBe(detail);
  });
  test('Go durations', () => {
    expect(parseGoDuration('1h2m3.5s')).toBe(3723.5e9);
    expect(parseGoDuration('0')).toBe(0);
    expect(() => parseGoDuration('1d')).toThrow('invalid duration');
  });
});

describe('ONBUILD', () => {
  test('the trigger is a typed instruction and the expression is kept', () => {
    expect(one('ONBUILD RUN make install')).toMatchObject({
      kind: 'ONBUILD',
      expression: 'RUN make install',
      trigger: { kind: 'RUN', command: { form: 'shell', args: ['make install'] } },
    });
  });
  test.each([
    ['ONBUILD', 'ONBUILD requires at least one argument'],
    ['ONBUILD ONBUILD RUN x', "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"],
    ['ONBUILD FROM x', "FROM isn't allowed as an ONBUILD trigger"],
    ['ONBUILD MAINTAINER x', "MAINTAINER isn't allowed as an ONBUILD trigger"],
  ])('%s → error', (line, detail) => {
    expect(error(line).detail).toBe(detail);
  });
});

describe('COPY and ADD', () => {
  test('every COPY flag', () => {
    expect(
      one('COPY --from=build --chown=app:app --chmod=0755 --link --parents --exclude=*.md --exclude=.git a b /dst/'),
    ).toMatchObject({
      kind: 'COPY',
      sources: ['a', 'b'],
      dest: '/dst/',
      from: 'build',
      chown: 'app:app',
      chmod: '0755',
      link: true,
      parents: true,
      exclude: ['*.md', '.git'],
    });
  });
  test('every ADD flag', () => {
    expect(
      one('ADD --chown=1:2 --chmod=u+x --link=false --keep-git-dir --exclude=x --checksum=sha256:0123abcd https://example.com/a.tgz /x'),
    ).toMatchObject({
      kind: 'ADD',
      sources: ['https://example.com/a.tgz'],
      dest: '/x',
      chown: '1:2',
      chmod: 'u+x',
      link: false,
      keepGitDir: true,
      exclude: ['x'],
      checksum: 'sha256:0123abcd',
    });
  });
  test('JSON form keeps spaces in names', () => {
    expect(one('COPY ["a b", "/c d/"]')).toMatchObject({ sources: ['a b'], dest: '/c d/', json: true });
  });
  test('heredoc sources', () => {
    expect(one('COPY <<EOF /etc/motd\nhello\nEOF')).toMatchObject({ sources: ['<<EOF'], heredocs: [{ name: 'EOF', content: 'hello\n' }] });
  });
  test.each([
    ['COPY a', 'COPY requires at least two arguments, but only one was provided. Destination could not be determined'],
    ['COPY', 'COPY requires at least two arguments, but only none was provided. Destination could not be determined'],
    ['ADD --from=x a b', 'unknown flag: from'],
    ['COPY --checksum=sha256:00 a b', 'unknown flag: checksum'],
    ['COPY --chmod=999 a b', "invalid chmod parameter: '999'. it should be octal string and between 0 and 07777"],
    ['COPY --chmod=17777 a b', "invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777"],
    ['COPY --chmod=u+q a b', "invalid chmod parameter: 'u+q': invalid syntax (expected an octal mode like 0755 or a symbolic one like u+x,go-w)"],
    ['COPY --link=maybe a b', 'expecting boolean value for flag link, not: maybe'],
  ])('%s → error', (line, detail) => {
    expect(error(line).detail).toBe(detail);
  });
});

describe('unknown instructions', () => {
  test('get a suggestion, the file, line and column', () => {
    const err = dockerfileError(() => instructions('FROM a\n  RUUN make\n'));
    expect(err.message).toBe('Dockerfile:2:3: unknown instruction: RUUN (did you mean RUN?)');
    expect(err.code).toBe('DOCKERFILE_UNKNOWN_INSTRUCTION');
  });
  test('no suggestion when nothing is close', () => {
    expect(dockerfileError(() => instructions('FROM a\nFROBNICATE x\n')).detail).toBe('unknown instruction: FROBNICATE');
  });
});
