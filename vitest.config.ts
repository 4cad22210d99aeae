import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    // Tests contact loopback addresses only; the registry client enforces it (and the CLI processes the tests start inherit it).
    env: { GANTRY_LOOPBACK_ONLY: '1' },
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
