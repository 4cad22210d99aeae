import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_targets_test.go';

// BuildKit's tests ask the frontend's subrequests (what `docker build --call targets` and
// `--call subrequests.describe` print). gantry has no such call; the checks use docker's
// command line for it, and are kept as known differences.

const listed = `
# build defines stage for compiling the binary
FROM busybox AS build
RUN true

FROM busybox as second
RUN false

FROM busybox
RUN false

# binary returns the compiled binary
FROM second AS binary
`;

interface Target {
  name?: string;
  default?: boolean;
  description?: string;
  base?: string;
  location?: { sourceIndex?: number; ranges: { start: { line: number } }[] };
}

export default {
  file,
  checks: [
    {
      name: 'testTargetsList',
      file,
      // alpine → busybox (both bases are busybox here).
      dockerfile: listed,
      gap: 'no frontend.targets subrequest (docker build --call targets): gantry build has no --call option',
      async custom(h) {
        const r = await h.build({ dockerfile: listed, args: ['--call', 'targets,format=json'] });
        expect(r.exitCode, r.output).toBe(0);
        const list = JSON.parse(r.output.slice(r.output.indexOf('{'))) as { targets: Target[]; sources: string[] };
        expect(list.sources.length).toBe(1);
        expect(Buffer.from(list.sources[0]!, 'base64').toString()).toBe(listed);
        const want = [
          { name: 'build', base: 'busybox', description: 'defines stage for compiling the binary', line: 3 },
          { name: 'second', base: 'busybox', description: '', line: 6 },
          { name: '', base: 'busybox', description: '', line: 9 },
          { name: 'binary', base: '', description: 'returns the compiled binary', line: 13, default: true },
        ];
        expect(list.targets.length).toBe(4);
        list.targets.forEach((t, i) => {
          const w = want[i]!;
          expect(t.name ?? '').toBe(w.name);
          expect(t.description ?? '').toBe(w.description);
          if (w.base) expect(t.base).toBe(w.base);
          expect(t.default ?? false).toBe(w.default ?? false);
          expect(t.location?.sourceIndex ?? 0).toBe(0);
          expect(t.location?.ranges[0]?.start.line).toBe(w.line);
        });
      },
    },
    {
      name: 'testTargetsDescribeDefinition',
      file,
      dockerfile: '\nFROM scratch\nCOPY Dockerfile Dockerfile\n',
      gap: 'no subrequests.describe (docker build --call subrequests.describe): gantry build has no --call option',
      async custom(h) {
        const r = await h.build({ dockerfile: '\nFROM scratch\nCOPY Dockerfile Dockerfile\n', args: ['--call', 'subrequests.describe,format=json'] });
        expect(r.exitCode, r.output).toBe(0);
        const reqs = JSON.parse(r.output.slice(r.output.indexOf('['))) as { name: string; type: string; version: string }[];
        const targets = reqs.filter((q) => q.name === 'frontend.targets');
        expect(targets.length).toBeGreaterThan(0);
        for (const q of targets) {
          expect(q.type).toBe('rpc');
          expect(q.version).not.toBe('');
        }
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
