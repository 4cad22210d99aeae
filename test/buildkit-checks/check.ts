import { expect } from 'vitest';
import type { Check, CheckFile, Harness } from './types.js';

const file = 'dockerfile_check_test.go';

/**
 * BuildKit's checkLinterWarnings, for gantry: the build (BuildKit's progress stream: the
 * warnings of the stages built, with their lines) and `gantry lint --format json` (BuildKit's
 * frontend.lint subrequest: every stage; rule and text compared, not lines, as BuildKit's
 * checkLintWarning compares them). BuildKit's warnings also carry a description and a URL,
 * which gantry does not print; the rule, the line and the text (BuildKit's "Short" form) are
 * checked. gantry's own rules (UnusedBuildArg, SyntaxDirectiveIgnored) are left out.
 */
type W = [rule: string, line: number, detail: string];

interface LintCase {
  dockerfile: string;
  dockerignore?: string;
  /** The build's warnings. */
  warnings?: W[];
  /** The lint's, when they differ from the build's (stages the build does not reach). */
  unmarshal?: W[];
  /** The build and the lint fail with this (BuildErr). */
  error?: RegExp;
  /** Only the build fails with this (StreamBuildErrRegexp). */
  buildError?: RegExp;
  buildArgs?: Record<string, string>;
}

const GANTRY_ONLY = new Set(['UnusedBuildArg', 'SyntaxDirectiveIgnored']);

function buildWarnings(output: string): W[] {
  const found: W[] = [];
  for (const m of output.matchAll(/^(?:\S*?:(\d+)(?::\d+)?: )?warning: (\w+): (.*)$/gm)) {
    if (!GANTRY_ONLY.has(m[2]!)) found.push([m[2]!, Number(m[1] ?? 0), m[3]!]);
  }
  return found;
}

const byLine = (a: W, b: W): number => a[1] - b[1] || (a[2] < b[2] ? -1 : a[2] > b[2] ? 1 : 0);
const short = (w: W): string => `${w[0]}: ${w[2]} (line ${w[1]})`;

async function runLint(h: Harness, c: LintCase): Promise<void> {
  const r = await h.build({
    dockerfile: c.dockerfile,
    ...(c.dockerignore !== undefined ? { context: { '.dockerignore': c.dockerignore } } : {}),
    ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}),
  });
  const fails = c.error ?? c.buildError;
  if (fails) {
    expect(r.exitCode, r.output).not.toBe(0);
    expect(r.output).toMatch(fails);
  } else {
    expect(r.exitCode, r.output).toBe(0);
  }
  const want = [...(c.warnings ?? [])].sort(byLine).map(short);
  const got = buildWarnings(r.output).sort(byLine).map(short);
  expect(got, r.output).toEqual(want);

  const l = await h.gantry(['lint', '--format', 'json', ...Object.entries(c.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]), r.ctx]);
  const json = JSON.parse(l.stdout) as { warnings: { rule: string; message: string }[]; error?: { message: string } };
  if (c.error) expect(json.error?.message ?? '', l.output).toMatch(c.error);
  else expect(json.error, l.output).toBeUndefined();
  const lintWant = (c.unmarshal ?? c.warnings ?? []).map((w) => `${w[0]}: ${w[2]}`).sort();
  const lintGot = json.warnings.filter((w) => !GANTRY_ONLY.has(w.rule)).map((w) => `${w.rule}: ${w.message}`).sort();
  expect(lintGot, l.output).toEqual(lintWant);
}

/** One of checkLinterWarnings' calls in BuildKit's test `name`. */
function lint(name: string, c: LintCase, gap?: string): Check {
  return { name, file, dockerfile: c.dockerfile, ...(gap ? { gap } : {}), custom: (h) => runLint(h, c) };
}

/** BuildKit: `lint violation found for rules: A, B`; gantry: `lint violations found (check=error=true): A: …`. */
const violation = (rule: string): RegExp => new RegExp(`lint violations? found (for rules: |\\(check=error=true\\): )${rule}`);

const copyMissing = /"\/?Dockerfile"[^\n]*not found|not found[^\n]*Dockerfile|Dockerfile[^\n]*(no such file|does not exist)/;
const secret = (what: string): string => `Do not use ARG or ENV instructions for sensitive data (${what})`;
const multiple = (i: string, line: number): W => ['MultipleInstructionsDisallowed', line, `Multiple ${i} instructions should not be used in the same stage because only the last one will be used`];
const casing = (cmd: string, majority: string): W => ['ConsistentInstructionCasing', 4, `Command '${cmd}' should match the case of the command majority (${majority})`];
const legacy = (i: string, line: number): W => ['LegacyKeyValueFormat', line, `"${i} key=value" should be used instead of legacy "${i} key value" format`];
const invalidDefault = (from: string): W => ['InvalidDefaultArgInFrom', 3, `Default value for ARG ${from} results in empty or invalid base image name`];
const jsonArgs = (i: string, line: number): W => ['JSONArgsRecommended', line, `JSON arguments recommended for ${i} to prevent unintended behavior related to OS signals`];
const exposeFormat = (found: string): W => ['ExposeInvalidFormat', 3, `EXPOSE instruction should not define an IP address or host-port mapping, found '${found}'`];

export default {
  file,
  checks: [
    // testDefinitionDescription: the experimental rule InvalidDefinitionDescription.
    lint(
      'testDefinitionDescription',
      {
        dockerfile: `# check=skip=all;experimental=InvalidDefinitionDescription
# foo this is the foo
ARG foo=bar

# base this is the base image
FROM scratch AS base

# version this is the version number
ARG version=latest

# baz this is the baz
ARG foo=baz bar=qux baz=quux
#
ARG bit=bat

# comment for something other than ARG or FROM
COPY Dockerfile .
`,
      },
    ),
    lint(
      'testDefinitionDescription',
      {
        dockerfile: `# check=experimental=InvalidDefinitionDescription
# bar this is the bar
ARG foo=bar
# BasE this is the BasE image
FROM scratch AS base
# definitely a bad comment
ARG version=latest
# definitely a bad comment
ARG foo=baz bar=qux baz=quux
`,
        warnings: [
          ['InvalidDefinitionDescription', 3, 'Comment for ARG should follow the format: `# foo <description>`'],
          ['InvalidDefinitionDescription', 5, 'Comment for FROM should follow the format: `# base <description>`'],
          ['InvalidDefinitionDescription', 7, 'Comment for ARG should follow the format: `# version <description>`'],
          ['InvalidDefinitionDescription', 9, 'Comment for ARG should follow the format: `# <arg_key> <description>`'],
        ],
      },
    ),

    // testCopyIgnoredFiles: the build fails (the Dockerfile is not in the context), the lint does not.
    // Docker 28.5 differs from the test (checked with `docker build` and `docker build --check`):
    // its engine's frontend gets no .dockerignore patterns (the context is not a local source
    // there), so CopyIgnoredFile is never reported; BuildKit's test expects it at lines 3 and 4.
    lint('testCopyIgnoredFiles', { dockerfile: '\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n', dockerignore: '\nDockerfile\n', buildError: copyMissing }),
    lint('testCopyIgnoredFiles', { dockerfile: '# check=skip=CopyIgnoredFile\n\nFROM scratch\nCOPY Dockerfile .\nADD Dockerfile /windy\n', dockerignore: '\nDockerfile\n', buildError: copyMissing }),
    lint('testCopyIgnoredFiles', {
      dockerfile: '\nFROM scratch AS base\nCOPY Dockerfile /foobar\nADD Dockerfile /windy\n\nFROM base\nCOPY --from=base /foobar /Dockerfile\n',
      dockerignore: '\nfoobar\n',
    }),
    lint('testCopyIgnoredFiles', { dockerfile: '\nFROM scratch\nCOPY ./Dockerfile .\n', dockerignore: '\n**\n!Dockerfile\n' }),
    // No warnings should occur if we copy the directory.
    lint('testCopyIgnoredFiles', { dockerfile: '\nFROM scratch\nCOPY . .\n\t', dockerignore: '\n**\n!Dockerfile\n' }),

    lint('testCopyIgnoredFileContextRoot', { dockerfile: '\nFROM scratch\nCOPY . .\n', dockerignore: '\n.*\n' }),
    // Docker 28.5: no CopyIgnoredFile (see above); BuildKit's test expects it for ".".
    lint('testCopyIgnoredFileContextRoot', { dockerfile: '\nFROM scratch\nCOPY . .\n', dockerignore: '\n*\n' }),

    lint(
      'testSecretsUsedInArgOrEnv',
      {
        dockerfile: `# check=skip=InvalidDefinitionDescription

FROM scratch
ARG SECRET_PASSPHRASE
ENV SUPER_Secret=foo
ENV password=bar secret=baz
ARG super_duper_secret_token=foo auth=bar
ENV apikey=bar sunflower=foo
ENV git_key=
ENV PUBLIC_KEY=
ARG public_token
ARG SECRET_PASSPHRASE_FILE
ENV password_file=bar secret_File=baz
ARG AUTH_MODULE_VERSION
# check=skip=SecretsUsedInArgOrEnv // allow secret in environment
ENV password=bar
# check=skip=SecretsUsedInArgOrEnv // allow secret in arg
ARG password
# check=skip=all // is local to only this instruction
ENV alternate_password=bar
# check=skip=all // is local to only this instruction
ARG alternate_password
`,
        warnings: [
          ['SecretsUsedInArgOrEnv', 4, secret('ARG "SECRET_PASSPHRASE"')],
          ['SecretsUsedInArgOrEnv', 5, secret('ENV "SUPER_Secret"')],
          ['SecretsUsedInArgOrEnv', 6, secret('ENV "password"')],
          ['SecretsUsedInArgOrEnv', 6, secret('ENV "secret"')],
          ['SecretsUsedInArgOrEnv', 7, secret('ARG "auth"')],
          ['SecretsUsedInArgOrEnv', 7, secret('ARG "super_duper_secret_token"')],
          ['SecretsUsedInArgOrEnv', 8, secret('ENV "apikey"')],
          ['SecretsUsedInArgOrEnv', 9, secret('ENV "git_key"')],
          // Docker 28.5 (BuildKit 0.25) differs from the test, which is newer: only `public` makes a
          // name no secret (not `file`, `version`), and a `# check=skip=` comment above an
          // instruction is only a comment (checked with `docker build --check`).
          ['SecretsUsedInArgOrEnv', 12, secret('ARG "SECRET_PASSPHRASE_FILE"')],
          ['SecretsUsedInArgOrEnv', 13, secret('ENV "password_file"')],
          ['SecretsUsedInArgOrEnv', 13, secret('ENV "secret_File"')],
          ['SecretsUsedInArgOrEnv', 14, secret('ARG "AUTH_MODULE_VERSION"')],
          ['SecretsUsedInArgOrEnv', 16, secret('ENV "password"')],
          ['SecretsUsedInArgOrEnv', 18, secret('ARG "password"')],
          ['SecretsUsedInArgOrEnv', 20, secret('ENV "alternate_password"')],
          ['SecretsUsedInArgOrEnv', 22, secret('ARG "alternate_password"')],
        ],
      },
    ),

    lint('testAllTargetUnmarshal', {
      dockerfile: '\nFROM scratch AS first\nCOPY $foo .\n\nFROM scratch AS second\nCOPY $bar .\n',
      warnings: [['UndefinedVar', 6, "Usage of undefined variable '$bar'"]],
      unmarshal: [
        ['UndefinedVar', 3, "Usage of undefined variable '$foo'"],
        ['UndefinedVar', 6, "Usage of undefined variable '$bar'"],
      ],
    }),

    lint('testRuleCheckOption', { dockerfile: '#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n' }),
    lint('testRuleCheckOption', { dockerfile: '#check=skip=all;error=true\nFROM scratch as base\ncopy Dockerfile .\n' }),
    lint('testRuleCheckOption', { dockerfile: '#check=skip=ConsistentInstructionCasing,FromAsCasing\nFROM scratch as base\ncopy Dockerfile .\n' }),
    lint('testRuleCheckOption', { dockerfile: '#check=skip=ConsistentInstructionCasing,FromAsCasing;error=true\nFROM scratch as base\ncopy Dockerfile .\n' }),
    lint('testRuleCheckOption', {
      dockerfile: '#check=skip=ConsistentInstructionCasing\nFROM scratch as base\ncopy Dockerfile .\n',
      warnings: [['FromAsCasing', 2, "'as' and 'FROM' keywords' casing do not match"]],
    }),
    lint(
      'testRuleCheckOption',
      {
        dockerfile: '#check=skip=ConsistentInstructionCasing;error=true\nFROM scratch as base\ncopy Dockerfile .\n',
        warnings: [['FromAsCasing', 2, "'as' and 'FROM' keywords' casing do not match"]],
        error: violation('FromAsCasing'),
      },
    ),
    // The build argument BUILDKIT_DOCKERFILE_CHECK overrides the directive.
    lint(
      'testRuleCheckOption',
      {
        dockerfile: '#check=skip=all\nFROM scratch as base\ncopy Dockerfile .\n',
        warnings: [['FromAsCasing', 2, "'as' and 'FROM' keywords' casing do not match"]],
        error: violation('FromAsCasing'),
        buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=ConsistentInstructionCasing;error=true' },
      },
    ),
    lint(
      'testRuleCheckOption',
      { dockerfile: '#check=error=true\nFROM scratch as base\ncopy Dockerfile .\n', buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' } },
    ),

    lint('testStageName', {
      dockerfile: `
# warning: stage name should be lowercase
#
FROM scratch AS BadStageName

# warning: 'as' should match 'FROM' cmd casing.
#
FROM scratch as base2

FROM scratch AS base3
`,
      warnings: [
        ['StageNameCasing', 4, "Stage name 'BadStageName' should be lowercase"],
        ['FromAsCasing', 8, "'as' and 'FROM' keywords' casing do not match"],
      ],
    }),
    lint('testStageName', {
      dockerfile: `
# warning: 'AS' should match 'from' cmd casing.
#
from scratch AS base

from scratch as base2
`,
      warnings: [['FromAsCasing', 4, "'AS' and 'from' keywords' casing do not match"]],
    }),

    lint('testNoEmptyContinuation', {
      dockerfile: '\nFROM scratch\n# warning: empty continuation line\nCOPY Dockerfile \\\n\n.\nCOPY Dockerfile \\\n.\n',
      warnings: [['NoEmptyContinuation', 6, 'Empty continuation line']],
    }),

    lint('testConsistentInstructionCasing', { dockerfile: "\n# warning: 'FROM' should be either lowercased or uppercased\n#\nFrom scratch as base\nFROM scratch AS base2\n", warnings: [casing('From', 'uppercase')] }),
    lint('testConsistentInstructionCasing', { dockerfile: "\nFROM scratch\n# warning: 'copy' should match command majority's casing (uppercase)\ncopy Dockerfile /foo\nCOPY Dockerfile /bar\n", warnings: [casing('copy', 'uppercase')] }),
    lint('testConsistentInstructionCasing', { dockerfile: "\n# warning: 'frOM' should be either lowercased or uppercased\n#\nfrOM scratch as base\nfrom scratch as base2\n", warnings: [casing('frOM', 'lowercase')] }),
    lint('testConsistentInstructionCasing', { dockerfile: "\nfrom scratch\n# warning: 'COPY' should match command majority's casing (lowercase)\nCOPY Dockerfile /foo\ncopy Dockerfile /bar\n", warnings: [casing('COPY', 'lowercase')] }),
    lint('testConsistentInstructionCasing', { dockerfile: "\n# warning: 'from' should match command majority's casing (uppercase)\n#\nfrom scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\nCOPY Dockerfile /baz\n", warnings: [casing('from', 'uppercase')] }),
    lint('testConsistentInstructionCasing', { dockerfile: "\n# warning: 'FROM' should match command majority's casing (lowercase)\n#\nFROM scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\ncopy Dockerfile /baz\n", warnings: [casing('FROM', 'lowercase')] }),
    lint('testConsistentInstructionCasing', { dockerfile: '\nfrom scratch\ncopy Dockerfile /foo\ncopy Dockerfile /bar\n' }),
    lint('testConsistentInstructionCasing', { dockerfile: '\nFROM scratch\nCOPY Dockerfile /foo\nCOPY Dockerfile /bar\n' }),
    // alpine → busybox.
    lint('testConsistentInstructionCasing', { dockerfile: "\nFROM busybox\nRUN <<'EOT'\nenv\nEOT\n" }),

    lint(
      'testDuplicateStageName',
      { dockerfile: '\nFROM scratch AS b\nFROM scratch AS b\n', warnings: [['DuplicateStageName', 3, 'Duplicate stage name "b", stage names should be unique']] },
    ),
    lint('testDuplicateStageName', { dockerfile: '\nFROM scratch AS b1\nFROM scratch AS b2\n' }),

    lint(
      'testReservedStageName',
      {
        dockerfile: '\nFROM scratch AS scratch\nFROM scratch AS context\n',
        warnings: [
          ['ReservedStageName', 2, 'Stage name should not use the same name as reserved stage "scratch"'],
          ['ReservedStageName', 3, 'Stage name should not use the same name as reserved stage "context"'],
        ],
      },
    ),
    lint('testReservedStageName', { dockerfile: '\nFROM scratch\nFROM scratch AS a\n' }),

    lint('testJSONArgsRecommended', { dockerfile: '\nFROM scratch\nCMD mycommand\n', warnings: [jsonArgs('CMD', 3)] }),
    lint('testJSONArgsRecommended', { dockerfile: '\nFROM scratch\nENTRYPOINT mycommand\n', warnings: [jsonArgs('ENTRYPOINT', 3)] }),
    lint('testJSONArgsRecommended', { dockerfile: '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nCMD mycommand\n' }),
    lint('testJSONArgsRecommended', { dockerfile: '\nFROM scratch\nSHELL ["/usr/bin/customshell"]\nENTRYPOINT mycommand\n' }),
    lint('testJSONArgsRecommended', { dockerfile: '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nCMD mycommand\n' }),
    lint('testJSONArgsRecommended', { dockerfile: '\nFROM scratch AS base\nSHELL ["/usr/bin/customshell"]\n\nFROM base\nENTRYPOINT mycommand\n' }),

    lint('testMaintainerDeprecated', { dockerfile: '\nFROM scratch\nMAINTAINER me@example.org\n', warnings: [['MaintainerDeprecated', 3, 'Maintainer instruction is deprecated in favor of using label']] }),
    lint('testMaintainerDeprecated', { dockerfile: '\nFROM scratch\nLABEL org.opencontainers.image.authors="me@example.org"\n' }),
    // Docker 28.5 (BuildKit 0.25) differs from these tests, which are newer: a `# check=skip=`
    // comment above an instruction is only a comment, the warning stays (checked with `docker build`).
    lint('testMaintainerDeprecated', { dockerfile: '\nFROM scratch\n# check=skip=JSONArgsRecommended\nCMD mycommand\n', warnings: [jsonArgs('CMD', 4)] }),
    lint('testMaintainerDeprecated', { dockerfile: '\nFROM scratch\n# check=skip=JSONArgsRecommended\nENTRYPOINT mycommand\n', warnings: [jsonArgs('ENTRYPOINT', 4)] }),
    lint('testMaintainerDeprecated', { dockerfile: '\nFROM scratch\n# check=skip=MaintainerDeprecated\nMAINTAINER me@example.org\n', warnings: [['MaintainerDeprecated', 4, 'Maintainer instruction is deprecated in favor of using label']] }),

    lint(
      'testWarningsBeforeError',
      {
        dockerfile: '\nFROM scratch AS BadStageName\nMAINTAINER me@example.org\nBADCMD\n',
        warnings: [
          ['StageNameCasing', 2, "Stage name 'BadStageName' should be lowercase"],
          ['MaintainerDeprecated', 3, 'Maintainer instruction is deprecated in favor of using label'],
        ],
        error: /unknown instruction: BADCMD/,
      },
    ),

    lint('testUndeclaredArg', { dockerfile: '\nARG base=scratch\nFROM $base\nCOPY Dockerfile .\n' }),
    lint('testUndeclaredArg', { dockerfile: '\nARG BUILDPLATFORM=linux/amd64\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n' }),
    lint('testUndeclaredArg', { dockerfile: '\nFROM --platform=$BUILDPLATFORM scratch\nCOPY Dockerfile .\n' }),
    lint('testUndeclaredArg', { dockerfile: '\nARG DEBUG\nFROM scratch${DEBUG}\nCOPY Dockerfile .\n' }),
    lint('testUndeclaredArg', { dockerfile: '\nARG DEBUG\nFROM scra${DEBUG:-tch}\nCOPY Dockerfile .\n' }),
    lint('testUndeclaredArg', { dockerfile: '\nARG DEBUG=""\nFROM scratch${DEBUG-@bogus}\nCOPY Dockerfile .\n' }),
    lint('testUndeclaredArg', {
      dockerfile: '\nFROM --platform=$BULIDPLATFORM scratch\nCOPY Dockerfile .\n',
      warnings: [['UndefinedArgInFrom', 2, "FROM argument 'BULIDPLATFORM' is not declared (did you mean BUILDPLATFORM?)"]],
      error: /empty platform value from expression \$BULIDPLATFORM \(did you mean BUILDPLATFORM\?\)/,
    }),
    lint('testUndeclaredArg', {
      dockerfile: '\nARG MY_OS=linux\nARG MY_ARCH=amd64\nFROM --platform=linux/${MYARCH} busybox\nCOPY Dockerfile .\n\t',
      warnings: [['UndefinedArgInFrom', 4, "FROM argument 'MYARCH' is not declared (did you mean MY_ARCH?)"]],
      error: /failed to parse platform linux\/\$\{MYARCH\}: "" is an invalid component of "linux\/": platform specifier component must match "\^\[A-Za-z0-9_.-\]\+\$": invalid argument \(did you mean MY_ARCH\?\)/,
    }),
    lint('testUndeclaredArg', {
      dockerfile: '\nARG tag=latest\nFROM busybox:${tag}${version} AS b\nCOPY Dockerfile .\n',
      warnings: [['UndefinedArgInFrom', 3, "FROM argument 'version' is not declared"]],
    }),

    lint('testWorkdirRelativePath', { dockerfile: '\nFROM scratch\nWORKDIR app/\n', warnings: [['WorkdirRelativePath', 3, 'Relative workdir "app/" can have unexpected results if the base image changes']] }),
    lint('testWorkdirRelativePath', { dockerfile: '\nFROM scratch AS a\nWORKDIR /app\n\nFROM a AS b\nWORKDIR subdir/\n' }),
    // Docker 28.5: the `# check=skip=` comment is only a comment (see testMaintainerDeprecated).
    lint('testWorkdirRelativePath', { dockerfile: '\nFROM scratch\n# check=skip=WorkdirRelativePath\nWORKDIR app/\n', warnings: [['WorkdirRelativePath', 4, 'Relative workdir "app/" can have unexpected results if the base image changes']] }),

    // alpine → busybox.
    lint('testUnmatchedVars', { dockerfile: '\nFROM scratch\nARG foo\nCOPY Dockerfile${foo} .\n' }),
    lint('testUnmatchedVars', { dockerfile: '\nFROM busybox AS base\nARG foo=Dockerfile\n\nFROM base\nCOPY $foo .\n' }),
    lint('testUnmatchedVars', { dockerfile: '\nFROM busybox\nRUN echo $PATH\n' }),
    lint(
      'testUnmatchedVars',
      { dockerfile: '\nFROM busybox\nCOPY $foo .\nARG foo=bar\nRUN echo $foo\n', warnings: [['UndefinedVar', 3, "Usage of undefined variable '$foo'"]] },
      'UndefinedVar is reported only where the whole environment is known, not in a stage FROM an image (docs/dockerfile.md)',
    ),
    lint(
      'testUnmatchedVars',
      {
        dockerfile: '\nFROM busybox\nARG DIR_BINARIES=binaries/\nARG DIR_ASSETS=assets/\nARG DIR_CONFIG=config/\nCOPY $DIR_ASSET .\n\t',
        warnings: [['UndefinedVar', 6, "Usage of undefined variable '$DIR_ASSET' (did you mean $DIR_ASSETS?)"]],
      },
      'UndefinedVar is reported only where the whole environment is known, not in a stage FROM an image (docs/dockerfile.md)',
    ),
    lint(
      'testUnmatchedVars',
      { dockerfile: '\nFROM busybox\nENV PATH=$PAHT:/tmp/bin\n\t\t', warnings: [['UndefinedVar', 3, "Usage of undefined variable '$PAHT' (did you mean $PATH?)"]] },
      'UndefinedVar is reported only where the whole environment is known, not in a stage FROM an image (docs/dockerfile.md)',
    ),

    lint('testMultipleInstructionsDisallowed', {
      dockerfile: '\nFROM scratch\nENTRYPOINT ["/myapp"]\nENTRYPOINT ["/myotherapp"]\nCMD ["/myapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
      warnings: [multiple('ENTRYPOINT', 3), multiple('CMD', 5), multiple('HEALTHCHECK', 7)],
    }),
    // Still a warning when broken up with another command.
    lint('testMultipleInstructionsDisallowed', {
      dockerfile: '\nFROM scratch\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\nCOPY <<EOF /a.txt\nHello, World!\nEOF\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
      warnings: [multiple('ENTRYPOINT', 3), multiple('CMD', 4), multiple('HEALTHCHECK', 5)],
    }),
    lint('testMultipleInstructionsDisallowed', {
      dockerfile: '\nFROM scratch AS a\nENTRYPOINT ["/myapp"]\nCMD ["/myapp"]\nHEALTHCHECK CMD ["/myapp"]\n\nFROM a AS b\nENTRYPOINT ["/myotherapp"]\nCMD ["/myotherapp"]\nHEALTHCHECK CMD ["/myotherapp"]\n',
    }),

    lint('testLegacyKeyValueFormat', { dockerfile: '\nFROM scratch\nENV testkey value\nLABEL key value\n', warnings: [legacy('ENV', 3), legacy('LABEL', 4)] }),
    lint('testLegacyKeyValueFormat', { dockerfile: '\nFROM scratch\nENV testkey=value\nLABEL key=value\n' }),
    // Only the lint sees a stage the build does not reach.
    lint('testLegacyKeyValueFormat', {
      dockerfile: '\nFROM scratch AS a\n\nFROM a AS b\nENV testkey value\nLABEL key value\n\nFROM a AS c\n',
      unmarshal: [legacy('ENV', 3), legacy('LABEL', 4)],
    }),
    // Docker 28.5: the `# check=skip=` comments are only comments (see testMaintainerDeprecated).
    lint('testLegacyKeyValueFormat', { dockerfile: '\nFROM scratch\n# check=skip=LegacyKeyValueFormat\nENV testkey value\n# check=skip=LegacyKeyValueFormat\nLABEL key value\n', warnings: [legacy('ENV', 4), legacy('LABEL', 6)] }),

    lint(
      'testRedundantTargetPlatform',
      { dockerfile: '\nFROM --platform=$TARGETPLATFORM scratch\n', warnings: [['RedundantTargetPlatform', 2, 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior']] },
    ),
    lint(
      'testRedundantTargetPlatform',
      { dockerfile: '\nFROM --platform=${TARGETPLATFORM} scratch\n', warnings: [['RedundantTargetPlatform', 2, 'Setting platform to predefined ${TARGETPLATFORM} in FROM is redundant as this is the default behavior']] },
    ),
    // Docker 28.5 differs from the test: the blank first line ends the parser directives, so the
    // `# check=` line is a comment above FROM, and such comments skip nothing in 28.5 (checked with
    // `docker build --check`); newer BuildKit skips the rule for that instruction.
    lint('testRedundantTargetPlatform', {
      dockerfile: '\n# check=skip=RedundantTargetPlatform\nFROM --platform=$TARGETPLATFORM scratch\n',
      warnings: [['RedundantTargetPlatform', 3, 'Setting platform to predefined $TARGETPLATFORM in FROM is redundant as this is the default behavior']],
    }),

    lint('testInvalidDefaultArgInFrom', { dockerfile: '\nARG VERSION\nFROM busybox:$VERSION\n', buildArgs: { VERSION: 'latest' }, warnings: [invalidDefault('busybox:$VERSION')] }),
    lint('testInvalidDefaultArgInFrom', { dockerfile: '\nARG IMAGE\nFROM $IMAGE\n', buildArgs: { IMAGE: 'busybox:latest' }, warnings: [invalidDefault('$IMAGE')] }),
    lint('testInvalidDefaultArgInFrom', { dockerfile: '\nARG SFX="box:"\nFROM busy${SFX}\n', buildArgs: { SFX: 'box:latest' }, warnings: [invalidDefault('busy${SFX}')] }),
    lint('testInvalidDefaultArgInFrom', { dockerfile: '\nARG VERSION="latest"\nFROM busybox:${VERSION}\n', buildArgs: { VERSION: 'latest' } }),
    // busybox:stable-musl is busybox:latest under another name here (see below).
    {
      name: 'testInvalidDefaultArgInFrom',
      file,
      dockerfile: '\nARG BUSYBOX_VARIANT=""\nFROM busybox:stable${BUSYBOX_VARIANT}\n',
      async custom(h) {
        expect((await h.gantry(['tag', 'busybox:latest', 'busybox:stable-musl'])).exitCode).toBe(0);
        await runLint(h, { dockerfile: '\nARG BUSYBOX_VARIANT=""\nFROM busybox:stable${BUSYBOX_VARIANT}\n', buildArgs: { BUSYBOX_VARIANT: '-musl' } });
        await runLint(h, { dockerfile: '\n\tARG BUSYBOX_VARIANT\n\tFROM busybox:stable${BUSYBOX_VARIANT}\n\t', buildArgs: { BUSYBOX_VARIANT: '-musl' } });
      },
    },

    lint(
      'testFromPlatformFlagConstDisallowed',
      { dockerfile: '\nFROM --platform=linux/amd64 scratch\n', warnings: [['FromPlatformFlagConstDisallowed', 2, 'FROM --platform flag should not use constant value "linux/amd64"']] },
    ),
    lint('testFromPlatformFlagConstDisallowed', { dockerfile: '\nFROM --platform=linux/amd64 scratch AS my_amd64_stage\n' }),
    lint('testFromPlatformFlagConstDisallowed', { dockerfile: '\nFROM --platform=linux/amd64 scratch AS linux\n' }),

    lint('testExposeProtoCasing', {
      dockerfile: '\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n',
      warnings: [
        ['ExposeProtoCasing', 3, "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase"],
        ['ExposeProtoCasing', 3, "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase"],
      ],
    }),

    lint(
      'testExposeInvalidFormat',
      {
        dockerfile: '\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n',
        warnings: [exposeFormat('127.0.0.1:80:80'), exposeFormat('[::1]:8080:8080'), exposeFormat('5000:5000')],
      },
    ),

    {
      name: 'testBaseImagePlatformMismatch',
      file,
      dockerfile: '',
      gap: 'a base image the store has only for another platform is not used: gantry asks the registry for the build\'s platform (here refused, loopback only) instead of building FROM it with an InvalidBaseImagePlatform warning',
      // BuildKit pushes an image built for the other architecture and builds FROM it for the
      // host's; here the image is in the store.
      async custom(h) {
        const other = process.arch === 'arm64' ? 'linux/amd64' : 'linux/arm64';
        const host = process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64';
        const target = 'bkcheck/testbaseimageplatform:latest';
        const r = await h.build({ dockerfile: '\nFROM scratch\nCOPY foo /foo\n', context: { foo: 'test' }, args: ['--platform', other] }, { tag: target });
        await h.expectImage(r, {});
        await runLint(h, {
          dockerfile: `\nFROM ${target}\nENV foo=bar\n\t`,
          warnings: [['InvalidBaseImagePlatform', 2, `Base image ${target} was pulled with platform "${other}", expected "${host}" for current build`]],
        });
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
