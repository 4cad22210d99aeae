import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_outline_test.go';

const noOutline = "needs the frontend.outline subrequest (docker build --call outline: the build's args, secrets and ssh with their descriptions), which gantry lacks";

export default {
  file,
  checks: [
    {
      name: 'testOutlineDescribeDefinition',
      file,
      dockerfile: '\nFROM scratch\nCOPY Dockerfile Dockerfile\n',
      gap: 'no subrequests.describe (docker build --call subrequests.describe): gantry build has no --call option',
      async custom(h) {
        const r = await h.build({ dockerfile: '\nFROM scratch\nCOPY Dockerfile Dockerfile\n', args: ['--call', 'subrequests.describe,format=json'] });
        expect(r.exitCode, r.output).toBe(0);
        const reqs = JSON.parse(r.output.slice(r.output.indexOf('['))) as { name: string; type: string; version: string }[];
        const outline = reqs.filter((q) => q.name === 'frontend.outline');
        expect(outline.length).toBeGreaterThan(0);
        for (const q of outline) {
          expect(q.type).toBe('rpc');
          expect(q.version).not.toBe('');
        }
      },
    },
  ],
  notPorted: [
    { name: 'testOutlineArgs', file, reason: noOutline },
    { name: 'testOutlineSecrets', file, reason: noOutline },
    { name: 'testOutlineRecursiveArgs', file, reason: noOutline },
  ],
} satisfies CheckFile;
