import type { Check, CheckFile } from './types.js';

const file = 'dockerfile_args_test.go';

// FROM alpine in BuildKit's test: the base does not matter.
const targetStage = `
FROM busybox AS base
WORKDIR /out
RUN echo -n "value:$TARGETSTAGE" > /out/first
ARG TARGETSTAGE
RUN echo -n "value:$TARGETSTAGE" > /out/second

FROM scratch AS foo
COPY --from=base /out/ /

FROM scratch
COPY --from=base /out/ /
`;

/** testDefaultEnvWithArgs, one check per subtest (nil, empty, override). */
const defaultEnvWithArgs = (buildArgs: Record<string, string> | undefined, expected: string): Check => ({
  name: 'testDefaultEnvWithArgs',
  file,
  dockerfile: `
ARG image=idlebox
FROM busy\${image#idle} AS build
ARG my_arg
ENV my_arg "my_arg=\${my_arg:-def_val}"
ENV my_trimmed_arg "\${my_arg%%e*}"
COPY myscript.sh myscript.sh
RUN ./myscript.sh $my_arg $my_trimmed_arg
FROM scratch
COPY --from=build /out /out
`,
  context: { 'myscript.sh': { content: '\n#!/usr/bin/env sh\necho -n $my_arg $* > /out\n', mode: 0o700 } },
  ...(buildArgs ? { buildArgs } : {}),
  files: { out: expected },
});

export default {
  file,
  checks: [
    {
      name: 'testGlobalArg',
      file,
      dockerfile: '\nARG tag=nosuchtag\nFROM busybox:${tag}\n',
      buildArgs: { tag: 'latest' },
      present: ['bin/busybox'],
    },
    {
      name: 'testGlobalArgErrors',
      file,
      dockerfile: '\nARG FOO=${FOO:?"custom error"}\nFROM busybox\n',
      error: /FOO: custom error/,
      then: [{ buildArgs: { FOO: 'bar' }, present: ['bin/busybox'] }],
    },
    {
      name: 'testArgDefaultExpansion',
      file,
      dockerfile: '\nFROM scratch\nARG FOO\nARG BAR=${FOO:?"foo missing"}\n',
      error: /FOO: foo missing/,
      then: [{ buildArgs: { FOO: '123' } }, { buildArgs: { BAR: '123' } }],
    },
    {
      name: 'testMultiArgs',
      file,
      dockerfile: '\nARG a1="foo bar" a2=box\nARG a3="$a2-foo"\nFROM busy$a2 AS build\nARG a3 a4="123 456" a1\nRUN echo -n "$a1:$a3:$a4" > /out\nFROM scratch\nCOPY --from=build /out .\n',
      files: { out: 'foo bar:box-foo:123 456' },
    },
    {
      name: 'testQuotedMetaArgs',
      file,
      dockerfile: '\nARG a1="box"\nARG a2="$a1-foo"\nFROM busy$a1 AS build\nARG a2\nARG a3="bar-$a2"\nRUN echo -n $a3 > /out\nFROM scratch\nCOPY --from=build /out .\n',
      files: { out: 'bar-box-foo' },
    },
    {
      name: 'testTargetStageNameArg',
      file,
      dockerfile: targetStage,
      target: 'foo',
      files: { first: 'value:', second: 'value:foo' },
      then: [{ target: '', files: { first: 'value:', second: 'value:default' } }],
    },
    {
      name: 'testTargetStageNameArg',
      file,
      // The same Dockerfile with a named last stage, built without a target.
      dockerfile: targetStage + '\n\n\tFROM scratch AS final\n\tCOPY --from=base /out/ /\n\t',
      files: { first: 'value:', second: 'value:final' },
    },
    {
      name: 'testBuiltinArgs',
      file,
      // Proxy variables are not part of the cache key: the second build (other http_proxy, no
      // NO_PROXY) reuses the first's RUN; a changed FOO runs it again.
      dockerfile: '\nFROM busybox AS build\nARG FOO\nARG BAR\nARG BAZ=bazcontent\nRUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAR::$BAZ > /out\nFROM scratch\nCOPY --from=build /out /\n\n',
      buildArgs: { FOO: 'foocontents', http_proxy: 'hpvalue', NO_PROXY: 'npvalue' },
      files: { out: 'hpvalue::npvalue::foocontents::::bazcontent' },
      then: [
        { buildArgs: { FOO: 'foocontents', http_proxy: 'hpvalue2' }, files: { out: 'hpvalue::npvalue::foocontents::::bazcontent' } },
        { buildArgs: { FOO: 'foocontents2', http_proxy: 'hpvalue2' }, files: { out: 'hpvalue2::::foocontents2::::bazcontent' } },
      ],
    },
    defaultEnvWithArgs(undefined, 'my_arg=def_val my_arg=def_val my_arg=d'),
    defaultEnvWithArgs({ my_arg: '' }, 'my_arg=def_val my_arg=def_val my_arg=d'),
    defaultEnvWithArgs({ my_arg: 'override' }, 'my_arg=override my_arg=override my_arg=ov'),
    {
      name: 'testEmptyStringArgInEnv',
      file,
      dockerfile: '\nFROM busybox AS build\nARG FOO\nARG BAR=\nRUN env > env.txt\n\nFROM scratch\nCOPY --from=build env.txt .\n',
      // Contains "BAR=" and not "FOO=".
      files: { 'env.txt': /^(?![\s\S]*FOO=)[\s\S]*BAR=/ },
    },
    {
      name: 'testEnvEmptyFormatting',
      file,
      dockerfile: "\nFROM busybox AS build\nENV myenv foo%sbar\nRUN [ \"$myenv\" = 'foo%sbar' ]\n",
    },
  ],
  notPorted: [],
} satisfies CheckFile;
