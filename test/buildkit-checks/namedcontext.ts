import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CheckFile } from './types.js';

const file = 'dockerfile_namedcontext_test.go';

const noBuildContext = 'needs --build-context (named contexts), which gantry lacks (issue 21)';

export default {
  file,
  checks: [
    {
      name: 'testNamedLocalContext',
      file,
      dockerfile: '',
      // The stage `base` replaced by a local directory (with its own .dockerignore), given as
      // docker build --build-context base=DIR.
      gap: 'no --build-context (issue 21): the option is refused',
      async custom(h) {
        const dir2 = mkdtempSync(path.join(tmpdir(), 'bk-named-'));
        try {
          mkdirSync(dir2, { recursive: true });
          writeFileSync(path.join(dir2, 'out'), 'dummy-result', { mode: 0o600 });
          writeFileSync(path.join(dir2, 'out2'), 'dummy-result', { mode: 0o600 });
          writeFileSync(path.join(dir2, '.dockerignore'), 'out2\n', { mode: 0o600 });
          const r = await h.build({
            dockerfile: '\nFROM busybox AS base\nRUN cat /etc/alpine-release > /out\nFROM scratch\nCOPY --from=base /o* /\n',
            args: ['--build-context', `base=${dir2}`],
          });
          await h.expectImage(r, { files: { out: /./ }, absent: ['out2'] });
        } finally {
          rmSync(dir2, { recursive: true, force: true });
        }
      },
    },
  ],
  notPorted: [
    { name: 'testNamedImageContext', file, reason: noBuildContext },
    { name: 'testNamedImageContextPlatform', file, reason: `${noBuildContext}; also a second platform (issue 25)` },
    { name: 'testNamedImageContextTimestamps', file, reason: noBuildContext },
    { name: 'testNamedImageContextScratch', file, reason: noBuildContext },
    { name: 'testNamedOCILayoutContext', file, reason: `${noBuildContext} (an oci-layout:// context)` },
    { name: 'testNamedOCILayoutContextExport', file, reason: `${noBuildContext} (an oci-layout:// context)` },
    { name: 'testNamedInputContext', file, reason: `${noBuildContext}; it passes a frontend input (an LLB definition) through the gateway API` },
    { name: 'testNamedMultiplatformInputContext', file, reason: `${noBuildContext}; gateway inputs and a second platform (issue 25)` },
    { name: 'testNamedFilteredContext', file, reason: `${noBuildContext}; it asserts which files BuildKit's filesync transfers` },
    { name: 'testSourcePolicyWithNamedContext', file, reason: `${noBuildContext}; also BuildKit source policies, which gantry lacks` },
    { name: 'testEagerNamedContextLookup', file, reason: `${noBuildContext}; it asserts BuildKit's lookup of named contexts through the gateway` },
  ],
} satisfies CheckFile;
