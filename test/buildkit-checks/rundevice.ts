import type { CheckFile } from './types.js';

const file = 'dockerfile_rundevice_test.go';

export default {
  file,
  checks: [
    {
      name: 'testDeviceRunEnv',
      file,
      // BuildKit's daemon is given a CDI spec (vendor1.com/device=foo, env FOO=injected, auto-allowed);
      // the optional vendor2.com/device=bar does not exist and is skipped. gantry has no CDI
      // devices at all, so this is kept as a known difference. (BuildKit builds the test only
      // with the dfrundevice tag.)
      dockerfile: `
FROM busybox AS base
RUN --device=vendor1.com/device=foo,required \\
    --device=vendor2.com/device=bar \\
    env|sort | tee foo.env
FROM scratch
COPY --from=base /foo.env /
`,
      files: { 'foo.env': /FOO=injected/ },
      gap: 'RUN --device (CDI devices) is not supported: the Dockerfile is refused with "unknown flag: device"',
    },
  ],
  notPorted: [],
} satisfies CheckFile;
