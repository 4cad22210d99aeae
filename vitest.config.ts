import { defineConfig } from 'vitest/config';

/**
 * Three projects:
 * - `fast`: the pure tests, in-process, starting no process (test/unit, test/conformance and
 *   tests beside the code): `npm run test:fast` runs them alone, in seconds;
 * - `root`: the rest as root (as CI runs): test/integration (in-process, with processes, tools
 *   and root), test/e2e and test/hostile (the command end to end);
 * - `rootless`: the build suites again with gantry run as a non-root user with a subordinate range
 *   (test/helpers/gantry.ts makes the user), so that what a build must do is checked for a
 *   rootless build too (issue 19).
 */
const BUILD_SUITES = ['test/e2e/build.test.ts', 'test/e2e/build-debian.test.ts'];
const FAST = ['test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts', 'src/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    // Tests contact loopback addresses only; the registry client enforces it (and the CLI processes the tests start inherit it).
    env: { GANTRY_LOOPBACK_ONLY: '1' },
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'fast', include: FAST } },
      { extends: true, test: { name: 'root', include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts', 'test/hostile/**/*.test.ts'] } },
      { extends: true, test: { name: 'rootless', include: BUILD_SUITES, env: { GANTRY_TEST_USER: 'gantry-rootless' } } },
    ],
  },
});
