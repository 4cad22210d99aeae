import { describe, expect, test } from 'vitest';
import { OptionError } from '../../src/errors/index.js';
import { parseDockerfile } from '../../src/dockerfile/stages.js';
import { contextKey, plan, planModel, DEFAULT_PATH, type BuildPlan, type PlannedStage, type PlanOptions, type Step } from '../../src/plan/planner.js';
import { dockerfileError } from '../helpers/errors.js';

const P = (text: string, options: PlanOptions = {}): BuildPlan =>
  plan(text, { buildPlatform: 'linux/amd64', ...options });
const steps = (p: BuildPlan): Step[] => p.stages.flatMap((s) => s.steps);
const stepOf = <K extends Step['op']>(p: BuildPlan, op: K, n = 0): Extract<Step, { op: K }> =>
  steps(p).filter((s) => s.op === op)[n] as Extract<Step, { op: K }>;
const rules = (p: BuildPlan): string[] => p.warnings.map((w) => w.rule);

describe('ARG scoping', () => {
  test('global ARGs are usable in FROM, not inside a stage until re-declared', () => {
    const p = P('ARG TAG=3.19\nFROM alpine:${TAG}\nRUN echo\nENV A=x${TAG}\nARG TAG\nENV B=x${TAG}\n');
    expect(p.images).toEqual(['alpine:3.19']);
    expect(stepOf(p, 'env', 0).pairs).toEqual([{ key: 'A', value: 'x' }]);
    expect(stepOf(p, 'arg').args).toEqual([{ name: 'TAG', value: '3.19', source: 'global' }]);
    expect(stepOf(p, 'env', 1).pairs).toEqual([{ key: 'B', value: 'x3.19' }]);
  });

  test('--build-arg overrides global and stage defaults', () => {
    const p = P('ARG TAG=1\nFROM img:$TAG\nARG TAG\nARG MODE=debug\nRUN x\n', { buildArgs: { TAG: '2', MODE: 'release' } });
    expect(p.images).toEqual(['img:2']);
    expect(stepOf(p, 'arg', 0).args[0]).toEqual({ name: 'TAG', value: '2', source: 'build-arg' });
    expect(stepOf(p, 'arg', 1).args[0]).toEqual({ name: 'MODE', value: 'release', source: 'build-arg' });
    expect(stepOf(p, 'run').runEnv).toContain('MODE=release');
  });

  test('ENV a=1 b=$a uses the old a', () => {
    const p = P('FROM scratch\nENV a=old\nENV a=new b=$a\n');
    expect(stepOf(p, 'env', 1).pairs).toEqual([
      { key: 'a', value: 'new' },
      { key: 'b', value: 'old' },
    ]);
  });

  test('ENV wins over an ARG of the same name', () => {
    const p = P('FROM scratch\nARG V=arg\nENV V=env\nWORKDIR /$V\nRUN x\n');
    expect(stepOf(p, 'workdir').path).toBe('/env');
    expect(stepOf(p, 'run').runEnv.filter((e) => e.startsWith('V='))).toEqual(['V=env']);
  });

  test('a stage FROM another keeps its ARGs in scope (not in the image), as BuildKit 28.5 does', () => {
    const p = P('FROM scratch AS a\nARG X=1\nARG U\nENV Y=2\nFROM a\nRUN x\nCOPY $U$X /\n');
    const run = stepOf(p, 'run');
    expect(run.state.env).toContain('Y=2');
    expect(run.state.env.some((e) => e.startsWith('X='))).toBe(false);
    expect(run.runEnv).toContain('X=1');
    expect(stepOf(p, 'copy').sources).toEqual(['1']);
    expect(rules(p)).not.toContain('UndefinedVar');
  });

  test('ARG defaults expand with earlier variables', () => {
    const p = P('FROM scratch\nENV BASE=/opt\nARG DIR=$BASE/app\nWORKDIR $DIR\n');
    expect(stepOf(p, 'workdir').path).toBe('/opt/app');
  });

  test('an unused --build-arg is a warning; proxy args are never unused', () => {
    const p = P('FROM scratch\nARG USED\n', { buildArgs: { USED: '1', NOPE: '2', HTTP_PROXY: 'http://p' } });
    expect(p.unusedBuildArgs).toEqual(['NOPE']);
    expect(p.warnings).toContainEqual({ rule: 'UnusedBuildArg', message: 'One or more build-args [NOPE] were not consumed' });
  });

  test('proxy build args reach RUN without a declaration, outside the cache state', () => {
    const p = P('FROM scratch\nRUN x\n', { buildArgs: { https_proxy: 'http://p:3128' } });
    const run = stepOf(p, 'run');
    expect(run.proxyEnv).toEqual(['HTTPS_PROXY=http://p:3128', 'https_proxy=http://p:3128']);
    expect(run.runEnv.some((e) => e.includes('proxy'))).toBe(false);
  });

  test('predefined platform ARGs: in FROM without declaration, in a stage after ARG', () => {
    const p = P('FROM --platform=$BUILDPLATFORM golang AS b\nARG TARGETARCH TARGETOS TARGETVARIANT\nRUN x\nFROM img-$TARGETARCH\n', {
      platform: 'linux/arm64',
      target: 'b',
    });
    expect(p.stages[0]?.platform).toBe('linux/amd64');
    expect(stepOf(p, 'arg').args).toEqual([
      { name: 'TARGETARCH', value: 'arm64', source: 'predefined' },
      { name: 'TARGETOS', value: 'linux', source: 'predefined' },
      { name: 'TARGETVARIANT', value: '', source: 'predefined' },
    ]);
    const all = P('FROM img-$TARGETARCH\n', { platform: 'linux/arm/v7' });
    expect(all.images).toEqual(['img-arm']);
    expect(all.platform).toBe('linux/arm/v7');
  });

  test('an ARG declared without a value and not given stays unset', () => {
    const p = P('FROM scratch\nARG NOVAL\nRUN x\n');
    expect(stepOf(p, 'arg').args).toEqual([{ name: 'NOVAL', source: 'unset' }]);
    expect(stepOf(p, 'run').runEnv).toEqual([`PATH=${DEFAULT_PATH}`]);
  });
});

describe('stages', () => {
  const multi = [
    'FROM alpine AS base',
    'RUN echo base',
    'FROM busybox AS tools',
    'FROM scratch AS assets',
    'FROM base AS build',
    'COPY --from=tools /bin/tool /bin/',
    'RUN --mount=type=bind,from=assets,target=/a make',
    'FROM busybox AS unused',
    'RUN echo never',
    'FROM scratch',
    'COPY --from=build /out /out',
    'COPY --from=0 /etc/os-release /',
    'COPY --from=nginx:1.25 /etc/nginx /etc/nginx',
  ].join('\n');

  test('only the stages the target needs are planned, dependencies first', () => {
    const p = P(multi);
    expect(p.stages.map((s) => s.name ?? s.index)).toEqual(['base', 'tools', 'assets', 'build', 5]);
    expect(p.skippedStages).toEqual([{ index: 4, name: 'unused' }]);
    expect(p.target.index).toBe(5);
    expect(p.images.sort()).toEqual(['alpine', 'busybox', 'nginx:1.25']);
    expect(p.stages.find((s) => s.name === 'build')?.dependsOn.sort()).toEqual([0, 1, 2]);
  });

  test('FROM <stage>, COPY --from by name, index and image, RUN --mount from=', () => {
    const p = P(multi);
    const build = p.stages.find((s) => s.name === 'build');
    expect(build?.base).toEqual({ type: 'stage', stage: 0 });
    const copies = steps(p).filter((s): s is Extract<Step, { op: 'copy' }> => s.op === 'copy');
    expect(copies.map((c) => c.source)).toEqual([
      { type: 'stage', stage: 1 },
      { type: 'stage', stage: 3 },
      { type: 'stage', stage: 0 },
      { type: 'image', ref: 'nginx:1.25' },
    ]);
    expect(stepOf(p, 'run', 1).mounts[0]).toMatchObject({ from: '2', target: '/a' });
  });

  test('--target picks a stage by name (case-insensitive) and prunes the rest', () => {
    const p = P(multi, { target: 'TOOLS' });
    expect(p.stages.map((s) => s.name)).toEqual(['tools']);
    expect(p.skippedStages.map((s) => s.index)).toEqual([0, 2, 3, 4, 5]);
  });

  test('an unknown target is an option error listing the stages', () => {
    expect(() => P(multi, { target: 'nope' })).toThrow(OptionError);
    expect(() => P(multi, { target: 'nope' })).toThrow(
      'target stage "nope" could not be found in Dockerfile (stages: base, tools, assets, build, unused)',
    );
  });

  test('a stage FROM a stage that has no steps starts from that stage\'s base: its env, workdir, shell', () => {
    const p = P('FROM golang AS base\nFROM base\nWORKDIR $GOPATH/src\nRUN true\n', { baseImages: { golang: { env: ['GOPATH=/go', 'PATH=/go/bin:/usr/bin'], workingDir: '/go' } } });
    expect(stepOf(p, 'workdir').path).toBe('/go/src');
    expect(stepOf(p, 'run').state.env).toContain('GOPATH=/go');
    expect(rules(p)).not.toContain('UndefinedVar');
    // A Windows stage's cmd shell passes through one with no steps too.
    const w = P('FROM scratch AS w\nFROM w\nENTRYPOINT foo\n', { platform: 'windows/amd64' });
    const entrypoint = steps(w).find((st) => st.op === 'entrypoint');
    expect(entrypoint?.state.shell).toEqual(['cmd', '/S', '/C']);
    expect(entrypoint?.state.env).toEqual([]);
  });

  test('steps are numbered in build order, stage positions counted as BuildKit 28.5 counts them (seen there)', () => {
    // FROM an image is 1, then RUN, COPY, ADD, WORKDIR; FROM scratch or a stage counts nothing.
    const p = P('FROM img AS base\nRUN echo a\nWORKDIR /w\nENV A=1\nFROM base\nENV X=1\nRUN echo b\nCOPY foo /f\n', { baseImages: { img: {} } });
    expect(steps(p).filter((s) => s.op !== 'env').map((s) => [s.op, s.position])).toEqual([
      ['run', '[base 2/3]'],
      ['workdir', '[base 3/3]'],
      ['run', '[stage-1 1/2]'],
      ['copy', '[stage-1 2/2]'],
    ]);
    // One stage: no stage name; numbers padded to the total's width.
    const one = P(`FROM img AS named\n${Array.from({ length: 10 }, (_, i) => `RUN echo ${i}`).join('\n')}\n`, { baseImages: { img: {} } });
    expect(steps(one).map((s) => s.position).slice(0, 2)).toEqual(['[ 2/11]', '[ 3/11]']);
    expect(steps(one).at(-1)?.position).toBe('[11/11]');
  });

  test('COPY --from and RUN --mount from= a stage defined later are errors, as in Docker 28.5', () => {
    expect(dockerfileError(() => P('FROM img AS first\nCOPY --from=later /x /y\nFROM img AS later\nFROM first\n', { baseImages: { img: {} } })).detail).toBe(
      'cannot copy from stage "later", it needs to be defined before current stage "first"',
    );
    expect(dockerfileError(() => P('FROM img AS base\nRUN --mount=from=later,target=/m true\nFROM img AS later\nFROM base\n', { baseImages: { img: {} } })).detail).toBe(
      'cannot mount from stage "later" to "/m", stage needs to be defined before current command',
    );
  });

  test('COPY --from=$ARG is an error, as in BuildKit 28 (a stage named through a global ARG in FROM is the way)', () => {
    for (const from of ['$SRC', '${SRC}', 'x$SRC']) {
      expect(dockerfileError(() => P(`FROM scratch AS one\nFROM scratch\nARG SRC=one\nCOPY --from=${from} / /\n`)).detail).toBe(
        'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
      );
    }
    // A literal name, a $ that starts no variable: as written.
    expect(stepOf(P('FROM scratch AS one\nFROM scratch\nCOPY --from=one / /\n'), 'copy').source).toEqual({ type: 'stage', stage: 0 });
  });

  test('FROM matches only earlier stages; a later name is an image', () => {
    const p = P('FROM later\nRUN x\nFROM scratch AS later\nCOPY --from=0 / /\n');
    expect(p.stages.map((s) => s.base)).toEqual([{ type: 'image', ref: 'later' }, { type: 'scratch' }]);
  });

  test('a cycle between stages is an error naming the stage', () => {
    const err = dockerfileError(() => P('FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n'));
    expect(err.code).toBe('DOCKERFILE_CYCLE');
    expect(err.detail).toBe('circular dependency detected on stage: a'); // as Docker 28.5 names it
  });

  test('duplicate and reserved stage names are warnings (BuildKit)', () => {
    expect(P('FROM scratch AS a\nFROM scratch AS A\n').warnings.map((w) => [w.rule, w.message, w.location?.line])).toContainEqual([
      'DuplicateStageName',
      'Duplicate stage name "a", stage names should be unique',
      2,
    ]);
    expect(rules(P('FROM scratch AS scratch\nFROM scratch AS context\n'))).toEqual(['ReservedStageName', 'ReservedStageName']);
  });

  test('stage errors', () => {
    expect(dockerfileError(() => P('FROM scratch\nCOPY --from=7 / /\n')).detail).toBe(
      'invalid stage index 7: the Dockerfile has 1 stage(s)',
    );
    expect(dockerfileError(() => P('FROM scratch AS a\nCOPY --from=a / /\n')).detail).toBe(
      'stage "a" cannot refer to itself',
    );
    expect(dockerfileError(() => P('RUN x\nFROM scratch\n')).message).toBe(
      'Dockerfile:1:1: RUN: no build stage in current context: RUN must come after a FROM (only ARG may come before the first FROM)',
    );
    expect(dockerfileError(() => P('ARG A=1\n')).detail).toBe('the Dockerfile has no FROM instruction');
  });
});

describe('resolved instructions', () => {
  test('WORKDIR resolves against the previous one', () => {
    const p = P('FROM scratch\nWORKDIR /a\nWORKDIR b/../c\nWORKDIR /x//y/\n');
    expect(steps(p).map((s) => (s.op === 'workdir' ? s.path : ''))).toEqual(['/a', '/a/c', '/x/y']);
  });

  test('a relative first WORKDIR warns', () => {
    expect(rules(P('FROM scratch\nWORKDIR app\n'))).toContain('WorkdirRelativePath');
  });

  test('EXPOSE is expanded and normalised; ranges expand', () => {
    const p = P('FROM scratch\nARG P=8080\nEXPOSE $P 53/udp 7000-7002 9000/TCP\n');
    expect(stepOf(p, 'expose').ports).toEqual(['8080/tcp', '53/udp', '7000/tcp', '7001/tcp', '7002/tcp', '9000/tcp']);
    expect(rules(p)).toContain('ExposeProtoCasing');
  });

  test.each([
    ['EXPOSE abc', 'invalid containerPort: abc'],
    ['EXPOSE 80/xyz', 'invalid proto: xyz'],
    ['EXPOSE 90-80', 'invalid port range: 90-80'],
    ['STOPSIGNAL not a signal', 'invalid signal: not a signal'],
    ['ENV A=${B', `failed to process "\${B": syntax error: missing '}'`],
  ])('%s → error', (line, detail) => {
    const err = dockerfileError(() => P(`FROM scratch\n${line}\n`));
    expect(err.detail).toBe(detail);
    expect(err.location.line).toBe(2);
  });

  test('LABEL, USER, VOLUME, STOPSIGNAL, COPY fields are expanded', () => {
    const p = P(
      'FROM scratch\nARG V=1.0 U=app D=/data S=SIGINT O=1000\nLABEL version=$V "k$V"=x\nUSER $U\nVOLUME $D ["${D}2"]\nSTOPSIGNAL $S\nCOPY --chown=$O:$O --chmod=0644 --exclude=*.$V src-$V /dst/$V\n',
    );
    expect(stepOf(p, 'label').pairs).toEqual([
      { key: 'version', value: '1.0' },
      { key: 'k1.0', value: 'x' },
    ]);
    expect(stepOf(p, 'user').user).toBe('app');
    // Mixed text is not JSON: the shell form applies and quotes are removed.
    expect(stepOf(p, 'volume').volumes).toEqual(['/data', '[/data2]']);
    expect(stepOf(p, 'stopsignal').signal).toBe('SIGINT');
    expect(stepOf(p, 'copy')).toMatchObject({ chown: '1000:1000', chmod: '0644', exclude: ['*.1.0'], sources: ['src-1.0'], dest: '/dst/1.0' });
  });

  test('RUN, CMD, ENTRYPOINT and HEALTHCHECK are not expanded by the planner', () => {
    const p = P('FROM scratch\nARG X=1\nRUN echo $X\nCMD echo $X\n');
    expect(stepOf(p, 'run').command.args).toEqual(['echo $X']);
    const cmd = steps(p).find((s) => s.op === 'cmd');
    expect(cmd?.op === 'cmd' && cmd.command.args).toEqual(['echo $X']);
  });

  test('RUN --mount values are expanded and checked again', () => {
    const p = P('FROM scratch\nARG C=/root/.cache\nRUN --mount=type=cache,target=$C make\n');
    expect(stepOf(p, 'run').mounts[0]).toMatchObject({ target: '/root/.cache', id: '/root/.cache' });
    const err = dockerfileError(() => P('FROM scratch\nARG T=nfs\nRUN --mount=type=$T,target=/x make\n'));
    expect(err.detail).toBe('--mount=type=nfs,target=/x: unsupported mount type "nfs"');
  });

  test('the state before each step carries workdir, user, shell, env and args', () => {
    const p = P('FROM scratch\nWORKDIR /w\nUSER 1000\nSHELL ["/bin/bash","-c"]\nARG A=1\nENV E=2\nRUN x\n');
    expect(stepOf(p, 'run').state).toEqual({
      env: [`PATH=${DEFAULT_PATH}`, 'E=2'],
      args: ['A=1'],
      workdir: '/w',
      user: '1000',
      shell: ['/bin/bash', '-c'],
    });
  });

  test('COPY heredocs: expanded unless the delimiter is quoted, chomped with <<-', () => {
    const p = P('FROM scratch\nARG N=world\nCOPY <<A <<"B" <<-C /dst/\nhello $N\nA\nhello $N\nB\n\t\ttabbed $N\n\tC\n');
    expect(stepOf(p, 'copy').inline).toEqual([
      { name: 'A', content: 'hello world\n' },
      { name: 'B', content: 'hello $N\n' },
      { name: 'C', content: 'tabbed world\n' },
    ]);
    expect(stepOf(p, 'copy').sources).toEqual(['<<A', '<<"B"', '<<-C']);
  });

  test('base image config: env, workdir and ONBUILD triggers (which run first)', () => {
    const p = P('FROM node:20\nRUN npm ci\n', {
      baseImages: { 'node:20': { env: ['PATH=/usr/local/bin:/usr/bin', 'NODE_VERSION=20'], workingDir: '/app', onBuild: ['COPY . /app', 'RUN echo $NODE_VERSION'] } },
    });
    expect(steps(p).map((s) => [s.op, s.onbuild ?? false])).toEqual([
      ['copy', true],
      ['run', true],
      ['run', false],
    ]);
    expect(stepOf(p, 'run').state).toMatchObject({ workdir: '/app', env: ['PATH=/usr/local/bin:/usr/bin', 'NODE_VERSION=20'] });
  });

  test('FROM an earlier stage runs the ONBUILD instructions it declared, first', () => {
    const p = P('FROM scratch AS base\nONBUILD COPY a /a\nFROM base\nRUN x\n');
    expect(p.stages[1]?.steps.map((s) => [s.op, s.onbuild ?? false])).toEqual([
      ['copy', true],
      ['run', false],
    ]);
  });

  test('a base image without PATH gets the default PATH', () => {
    expect(stepOf(P('FROM scratch\nRUN x\n'), 'run').state.env).toEqual([`PATH=${DEFAULT_PATH}`]);
    const unknown = P('FROM someimage\nRUN x\n');
    expect(stepOf(unknown, 'run').state.env).toEqual([]);
    expect(unknown.stages[0]?.baseEnvKnown).toBe(false);
  });
});

describe('warnings', () => {
  test('UndefinedVar where the environment is known', () => {
    const p = P('FROM scratch\nENV A=$NOPE\n');
    expect(p.warnings).toContainEqual({
      rule: 'UndefinedVar',
      message: "Usage of undefined variable '$NOPE'",
      location: { file: 'Dockerfile', line: 2, column: 1, endLine: 2 },
    });
    expect(rules(P('FROM someimage\nENV A=$MAYBE_FROM_IMAGE\n'))).not.toContain('UndefinedVar');
  });

  test('UndefinedArgInFrom', () => {
    expect(rules(P('FROM img:$TAG\n'))).toContain('UndefinedArgInFrom');
    expect(rules(P('ARG TAG\nFROM img:$TAG\n', { buildArgs: { TAG: '1' } }))).not.toContain('UndefinedArgInFrom');
  });

  test('MultipleInstructionsDisallowed and syntax directive', () => {
    const p = P('# syntax=docker/dockerfile:1\nFROM scratch\nCMD ["a"]\nCMD ["b"]\n');
    expect(p.warnings.map((w) => [w.rule, w.location?.line])).toEqual([
      ['SyntaxDirectiveIgnored', 1],
      ['MultipleInstructionsDisallowed', 3],
    ]);
    // Only for the stages built (BuildKit 28.5 checks it when it builds a stage).
    expect(rules(P('FROM scratch AS a\nCMD ["a"]\nCMD ["b"]\nFROM scratch AS b\n'))).toEqual([]);
  });

  test('check directive: skip rules, skip all, error=true', () => {
    const text = 'FROM scratch\nMAINTAINER x\nCMD a\n';
    expect(rules(P(text))).toEqual(['MaintainerDeprecated', 'JSONArgsRecommended']);
    expect(rules(P('# check=skip=MaintainerDeprecated\n' + text))).toEqual(['JSONArgsRecommended']);
    expect(rules(P('# check=skip=all\n' + text))).toEqual([]);
    const err = dockerfileError(() => P('# check=error=true\n' + text));
    expect(err.code).toBe('DOCKERFILE_CHECK_FAILED');
    expect(err.location.line).toBe(3);
    expect(err.detail).toBe('lint violation found for rules: MaintainerDeprecated, JSONArgsRecommended');
    expect(dockerfileError(() => P('# check=bogus\n' + text)).detail).toBe('invalid check directive "bogus" (use skip=..., experimental=... or error=true)');
  });
});

describe('build checks', () => {
  const found = (p: BuildPlan): [string, string, number | undefined][] => p.warnings.map((w) => [w.rule, w.message, w.location?.line]);

  test('check=experimental= turns on InvalidDefinitionDescription, even with skip=all', () => {
    const text = '# bad\nARG a=1\n# base the base\nFROM scratch AS base\n';
    expect(rules(P(text))).toEqual([]);
    expect(found(P('# check=skip=all;experimental=InvalidDefinitionDescription\n' + text))).toEqual([
      ['InvalidDefinitionDescription', 'Comment for ARG should follow the format: `# a <description>`', 3],
    ]);
  });

  test('a check= comment above an instruction is only a comment (Docker 28.5)', () => {
    expect(rules(P('FROM scratch\n# check=skip=JSONArgsRecommended\nCMD a\n'))).toEqual(['JSONArgsRecommended']);
  });

  test('BUILDKIT_DOCKERFILE_CHECK replaces the directive; error=true fails with the warnings', () => {
    expect(rules(P('# check=skip=all\nFROM scratch\nCMD a\n'))).toEqual([]);
    const err = dockerfileError(() => P('# check=skip=all\nFROM scratch\nCMD a\n', { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'error=true' } }));
    expect(err.detail).toBe('lint violation found for rules: JSONArgsRecommended');
    expect((err as unknown as { warnings: unknown[] }).warnings).toHaveLength(1);
    expect(P('# check=error=true\nFROM scratch\nCMD a\n', { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' } }).unusedBuildArgs).toEqual([]);
  });

  test('an error carries the warnings before it', () => {
    const err = dockerfileError(() => P('FROM scratch AS Bad\nMAINTAINER x\nBADCMD\n'));
    expect((err as unknown as { warnings: { rule: string }[] }).warnings.map((w) => w.rule)).toEqual(['StageNameCasing', 'MaintainerDeprecated']);
  });

  test('ConsistentInstructionCasing against the majority; FromAsCasing only for a FROM in one case', () => {
    expect(found(P('From scratch AS a\nFROM scratch\n'))).toEqual([
      ['ConsistentInstructionCasing', "Command 'From' should match the case of the command majority (uppercase)", 1],
    ]);
    expect(rules(P('from scratch\ncopy a b\nCOPY a b\n'))).toEqual(['ConsistentInstructionCasing']);
  });

  test('JSONArgsRecommended only with the default shell', () => {
    expect(rules(P('FROM scratch\nCMD a\n'))).toEqual(['JSONArgsRecommended']);
    expect(rules(P('FROM scratch AS a\nSHELL ["/bin/bash", "-c"]\nFROM a\nCMD a\n'))).toEqual([]);
    expect(rules(P('FROM img\nCMD a\n', { baseImages: { img: { shell: ['/bin/ash', '-c'] } } }))).toEqual([]);
    // Any SHELL, even the default one, as BuildKit looks at whether the image config has one.
    expect(rules(P('FROM scratch\nSHELL ["/bin/sh", "-c"]\nCMD a\n'))).toEqual([]);
  });

  test('SecretsUsedInArgOrEnv', () => {
    expect(found(P('FROM scratch\nARG GITHUB_TOKEN PUBLIC_KEY\nENV db_password=x password_file=y sunflower=z\n'))).toEqual([
      ['SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ARG "GITHUB_TOKEN")', 2],
      ['SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "db_password")', 3],
      ['SecretsUsedInArgOrEnv', 'Do not use ARG or ENV instructions for sensitive data (ENV "password_file")', 3],
    ]);
  });

  test('FROM --platform checks', () => {
    expect(rules(P('FROM --platform=$TARGETPLATFORM scratch\n'))).toEqual(['RedundantTargetPlatform']);
    expect(rules(P('FROM --platform=$BUILDPLATFORM scratch\n'))).toEqual([]);
    expect(found(P('FROM --platform=linux/arm64 scratch\n'))).toEqual([
      ['FromPlatformFlagConstDisallowed', 'FROM --platform flag should not use constant value "linux/arm64"', 1],
    ]);
    expect(rules(P('FROM --platform=linux/arm64 scratch AS build-arm64\n'))).toEqual([]);
  });

  test('InvalidDefaultArgInFrom: the defaults alone make no valid image name', () => {
    expect(found(P('ARG V\nFROM busybox:$V\n', { buildArgs: { V: '1' } }))).toEqual([
      ['InvalidDefaultArgInFrom', 'Default value for ARG busybox:$V results in empty or invalid base image name', 2],
    ]);
    expect(rules(P('ARG V=1\nFROM busybox:$V\n'))).toEqual([]);
  });

  test('EXPOSE with an address or a host port: ExposeInvalidFormat, the container port kept', () => {
    const p = P('FROM scratch\nEXPOSE 127.0.0.1:80:81 [::1]:8080:8080/udp 5000:5000 8000\n');
    expect(stepOf(p, 'expose').ports).toEqual(['81/tcp', '8080/udp', '5000/tcp', '8000/tcp']);
    expect(rules(p)).toEqual(['ExposeInvalidFormat', 'ExposeInvalidFormat', 'ExposeInvalidFormat']);
    expect(dockerfileError(() => P('FROM scratch\nEXPOSE 1.2.3:80:80\n')).detail).toBe('invalid IP address: 1.2.3');
  });

  test('UndefinedVar: an ARG without a value is declared; a near name is suggested', () => {
    expect(rules(P('FROM scratch\nARG foo\nCOPY a${foo} /\n'))).toEqual([]);
    expect(found(P('FROM scratch\nENV PATH=$PAHT:/x\n'))).toEqual([
      ['UndefinedVar', "Usage of undefined variable '$PAHT' (did you mean $PATH?)", 2],
    ]);
  });

  test('LegacyKeyValueFormat only for the stages built', () => {
    const text = 'FROM scratch AS a\nFROM a AS b\nENV k v\nFROM a AS c\n';
    expect(rules(P(text))).toEqual([]);
    expect(rules(P(text, { target: 'b' }))).toEqual(['LegacyKeyValueFormat']);
  });
});

describe('purity', () => {
  test('the same input gives the same plan', () => {
    const text = 'ARG A=1\nFROM scratch AS x\nRUN a\nFROM x\nCOPY --from=x / /\n';
    expect(JSON.stringify(P(text))).toBe(JSON.stringify(P(text)));
  });

  test('planning leaves the parsed model as it was: a build plans twice from one parse', () => {
    const text = 'ARG A=1\nFROM base AS x\nARG A\nENV B=$A\nRUN a\nONBUILD RUN b\nFROM x\nCOPY --from=x / /\nUSER u$A\n';
    const model = parseDockerfile(text, { file: 'Dockerfile' });
    const before = structuredClone(model);
    const once = planModel(model, { buildArgs: { A: '2' } });
    planModel(model, { baseImages: { base: { env: ['C=3'], onBuild: ['RUN from-base', 'ENV D=4'], workingDir: '/w', user: 'u' } } });
    expect(model).toEqual(before);
    expect(JSON.stringify(planModel(model, { buildArgs: { A: '2' } }))).toBe(JSON.stringify(once));
  });
});

describe('more error paths, each with its location', () => {
  test.each([
    ['FROM --platform=linux/amd64/v2/x scratch\n', 1, 'failed to parse platform linux/amd64/v2/x: invalid platform "linux/amd64/v2/x": expected os/arch[/variant], e.g. linux/amd64'],
    ['ARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} scratch\n', 2, 'failed to parse platform linux/${MYARCH}: "" is an invalid component of "linux/": platform specifier component must match "^[A-Za-z0-9_.-]+$": invalid argument (did you mean MY_ARCH?)'],
    ['FROM --platform=$BULIDPLATFORM scratch\n', 1, 'empty platform value from expression $BULIDPLATFORM (did you mean BUILDPLATFORM?)'],
    ['ARG IMG=""\nFROM $IMG\n', 2, 'invalid base image reference "" (from "$IMG")'],
    ['FROM scratch\nARG U=""\nUSER $U\n', 3, 'USER cannot be empty'],
    ['FROM scratch\nARG W=""\nWORKDIR $W\n', 3, 'WORKDIR cannot be empty'],
    ['FROM scratch\nARG V\nVOLUME ["$V"]\n', 3, 'VOLUME specified can not be an empty string'],
    ['FROM scratch\nLABEL a=${b:?required}\n', 2, 'failed to process "${b:?required}": b: required'],
  ])('%j', (text, line, detail) => {
    const err = dockerfileError(() => P(text));
    expect(err.detail).toBe(detail);
    expect(err.location.line).toBe(line);
  });

  test('a bad ONBUILD trigger in a base image names the FROM line', () => {
    const err = dockerfileError(() =>
      P('FROM scratch\nFROM base\n', { baseImages: { base: { onBuild: ['FROM x'] } } }),
    );
    expect(err.detail).toBe("FROM isn't allowed as an ONBUILD trigger");
    expect(err.location.line).toBe(2);
  });

  test('a --platform error is an OptionError', () => {
    expect(() => P('FROM scratch\n', { platform: 'not a platform' })).toThrow(OptionError);
  });
});

describe('build args as Docker 28.5 has them (each seen there, 2026-12-04)', () => {
  test('a proxy build arg in either spelling gives RUN both spellings; the lower-case one wins; a declared ARG keeps its own', () => {
    const p = P('FROM img AS named\nRUN env\nARG no_proxy\nRUN env\n', { buildArgs: { http_proxy: 'a', HTTP_PROXY: 'b', no_proxy: 'n' }, baseImages: { img: {} } });
    expect(stepOf(p, 'run', 0).proxyEnv).toEqual(['HTTP_PROXY=a', 'http_proxy=a', 'NO_PROXY=n', 'no_proxy=n']);
    // Once declared, no_proxy is an ARG of the RUN (in its key and history); NO_PROXY still comes from the proxy family.
    expect(stepOf(p, 'run', 1).proxyEnv).toEqual(['HTTP_PROXY=a', 'http_proxy=a', 'NO_PROXY=n']);
    expect(stepOf(p, 'run', 1).runEnv).toContain('no_proxy=n');
    expect(p.unusedBuildArgs).toEqual([]);
  });

  test('an ARG given by --build-arg does not expand its default (which may name what is unset)', () => {
    const p = P('FROM img\nARG FOO=${missing:?}\nRUN echo $FOO\n', { buildArgs: { FOO: 'x' }, baseImages: { img: {} } });
    expect(stepOf(p, 'arg').args).toEqual([{ name: 'FOO', value: 'x', source: 'build-arg' }]);
    expect(() => P('FROM img\nARG FOO=${missing:?}\n', { baseImages: { img: {} } })).toThrow(/missing/);
  });

  test('TARGETSTAGE: the --target, else the last stage\'s name, else "default"', () => {
    const value = (text: string, target?: string) => stepOf(P(text, { ...(target ? { target } : {}), baseImages: { img: {} } }), 'arg').args[0]?.value;
    expect(value('FROM img AS named\nARG TARGETSTAGE\n')).toBe('named');
    expect(value('FROM img AS Named\nARG TARGETSTAGE\n')).toBe('named');
    expect(value('FROM img\nARG TARGETSTAGE\n')).toBe('default');
    expect(value('FROM img AS a\nARG TARGETSTAGE\nFROM img AS b\n', 'a')).toBe('a');
  });
});

describe('refused as Docker 28.5 refuses them (each seen there, 2026-12-04)', () => {
  const err = (text: string, options: PlanOptions = {}) => {
    try {
      P(text, { baseImages: { img: {} }, ...options });
    } catch (e) {
      return (e as Error).message;
    }
    return 'no error';
  };
  test('ADD --checksum of a local file, or of several sources', () => {
    const sum = `sha256:${'0'.repeat(64)}`;
    expect(err(`FROM img\nADD --checksum=${sum} foo /x\n`)).toBe('Dockerfile:2:1: ADD: checksum requires HTTP(S) or Git sources');
    expect(err(`FROM img\nADD --checksum=${sum} https://a.invalid/x https://a.invalid/y /d/\n`)).toBe("Dockerfile:2:1: ADD: checksum can't be specified for multiple sources");
    expect(err(`FROM img\nADD --checksum=${sum} https://a.invalid/x /d/\n`)).toBe('no error');
  });
  test('RUN --mount=from=$VAR', () => {
    expect(err('FROM img\nARG V=img\nRUN --mount=from=$V,target=/m true\n', { buildArgs: { V: 'img' } })).toBe("Dockerfile:3:1: RUN: 'from' doesn't support variable expansion, define alias stage instead");
    expect(err('FROM img AS a\nFROM img\nRUN --mount=from=a,target=/m true\n')).toBe('no error');
  });
});

describe('named contexts (--build-context)', () => {
  test('looked up by the familiar name without :latest, as BuildKit', () => {
    expect(contextKey('docker.io/library/alpine:latest')).toBe('alpine');
    expect(contextKey('alpine')).toBe('alpine');
    expect(contextKey('alpine:3.20')).toBe('alpine:3.20');
    expect(contextKey('ghcr.io/org/app:1')).toBe('ghcr.io/org/app:1');
    expect(contextKey('base')).toBe('base');
    expect(contextKey('Base')).toBe('base');
  });

  test('an image takes the place of an image, of a stage (whose instructions are not planned), and of COPY --from', () => {
    const text = 'FROM golang:1.22 AS build\nRUN make\nFROM alpine\nCOPY --from=build /a /a\nCOPY --from=tools /t /t\n';
    const p = plan(text, { namedContexts: { build: { type: 'image', ref: 'reg/prebuilt:1' }, alpine: { type: 'image', ref: 'reg/alpine:9' }, tools: { type: 'dir' } } });
    const [build, last] = p.stages as [PlannedStage, PlannedStage];
    expect(build.base).toEqual({ type: 'image', ref: 'reg/prebuilt:1' });
    expect(build.steps).toEqual([]);
    expect(last.base).toEqual({ type: 'image', ref: 'reg/alpine:9' });
    const copies = last.steps.filter((s) => s.op === 'copy');
    expect(copies.map((s) => (s.op === 'copy' ? s.source : undefined))).toEqual([{ type: 'stage', stage: 0 }, { type: 'context', name: 'tools' }]);
    expect(p.images.sort()).toEqual(['reg/alpine:9', 'reg/prebuilt:1']);
  });
});
