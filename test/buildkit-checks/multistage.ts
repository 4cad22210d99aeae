import type { CheckFile } from './types.js';

const file = 'dockerfile_multistage_test.go';

const outOfOrder = (src: string): string => `
FROM busybox AS target
COPY --from=build ${src} /out
FROM busybox AS build
COPY /Dockerfile /d2
FROM target
`;

export default {
  file,
  checks: [
    {
      name: 'testMultiStageImplicitFrom',
      file,
      // COPY --from an image that no stage names.
      dockerfile: '\nFROM scratch\nCOPY --from=busybox /etc/passwd test\n',
      files: { test: /root/ },
    },
    {
      name: 'testMultiStageImplicitFrom',
      file,
      // A stage named like an image (golang) masks the image.
      dockerfile: '\nFROM busybox AS golang\nRUN mkdir -p /usr/bin && echo -n foo > /usr/bin/go\n\nFROM scratch\nCOPY --from=golang /usr/bin/go go\n',
      files: { go: /foo/ },
    },
    {
      name: 'testMultiStageCaseInsensitive',
      file,
      dockerfile: '\nFROM scratch AS STAge0\nCOPY foo bar\nFROM scratch AS staGE1\nCOPY --from=staGE0 bar baz\nFROM scratch\nCOPY --from=stage1 baz bax\n',
      context: { foo: 'foo-contents' },
      target: 'Stage1',
      files: { baz: /foo-contents/ },
    },
    // alpine → busybox; the source both as the stage's root and as a file.
    {
      name: 'testOutOfOrderStage',
      file,
      dockerfile: outOfOrder('/'),
      error: /cannot copy from stage[^]*needs to be defined before current stage/,
    },
    {
      name: 'testOutOfOrderStage',
      file,
      dockerfile: outOfOrder('/d2'),
      error: /cannot copy from stage[^]*needs to be defined before current stage/,
    },
    {
      name: 'testEmptyStages',
      file,
      dockerfile: 'ARG foo=bar',
      // BuildKit: "dockerfile contains no stages to build"; gantry words it its own way.
      error: /dockerfile contains no stages to build|the Dockerfile has no FROM instruction/,
    },
  ],
  notPorted: [],
} satisfies CheckFile;
