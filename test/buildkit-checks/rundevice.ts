import type { CheckFile } from './types.js';

const file = 'dockerfile_rundevice_test.go';

export default {
  file,
  checks: [],
  notPorted: [
    {
      name: 'testDeviceRunEnv',
      file,
      reason: 'needs CDI devices (a CDI spec given to the daemon, RUN --device=vendor/class=name), which gantry lacks; BuildKit builds the test only with the dfrundevice tag',
    },
  ],
} satisfies CheckFile;
