import { defineConfig } from 'vitest/config';

/**
 * Two projects: every test as root (as CI runs), and the build suites again with gantry run as a
 * non-root user with a subordinate range (`rootless`: test/helpers/gantry.ts makes the user), so
 * that what a build must do is checked for a rootless build too (issue 19).
 */
const BUILD_SUITES = ['test/e2e/build.test.ts', 'test/e2e/build-debian.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    // Tests contact loopback addresses only; the registry client enforces it (and the CLI processes the tests start inherit it).
    env: { GANTRY_LOOPBACK_ONLY: '1' },
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'root', include: ['test/**/*.test.ts', 'src/**/*.test.ts'] } },
      { extends: true, test: { name: 'rootless', include: BUILD_SUITES, env: { GANTRY_TEST_USER: 'gantry-rootless' } } },
    ],
  },
});
