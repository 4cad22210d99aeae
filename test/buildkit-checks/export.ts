import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_export_test.go';

/** Builds with BuildKit's tar exporter (docker build -o type=tar,dest=FILE) and returns the tar's file `name`. */
async function tarExport(h: Harness, dockerfile: string, context: Record<string, string>, name: string): Promise<string> {
  const r = await h.build({ dockerfile, context, args: ['-o', 'type=tar,dest={work}/out.tar'] });
  expect(r.exitCode, r.output).toBe(0);
  return execFileSync('tar', ['-xOf', path.join(r.dir, 'out.tar'), name], { encoding: 'utf8' });
}

const noTar = 'no -o type=tar (the root filesystem as a tar): the output type is refused';

export default {
  file,
  checks: [
    {
      name: 'testTarExporterBasic',
      file,
      dockerfile: '\nFROM scratch\nCOPY foo foo\n',
      gap: noTar,
      async custom(h) {
        expect(await tarExport(h, '\nFROM scratch\nCOPY foo foo\n', { foo: 'data' }, 'foo')).toBe('data');
      },
    },
    {
      name: 'testTarExporterMulti',
      file,
      // The single-platform half; the second build (linux/amd64,darwin/amd64 at once) needs a
      // second platform (issue 25).
      dockerfile: '\nFROM scratch AS stage-linux\nCOPY foo forlinux\nFROM scratch AS stage-darwin\nCOPY bar fordarwin\nFROM stage-$TARGETOS\n',
      gap: noTar,
      async custom(h) {
        const df = '\nFROM scratch AS stage-linux\nCOPY foo forlinux\nFROM scratch AS stage-darwin\nCOPY bar fordarwin\nFROM stage-$TARGETOS\n';
        expect(await tarExport(h, df, { foo: 'data', bar: 'data2' }, 'forlinux')).toBe('data');
      },
    },
  ],
  notPorted: [
    { name: 'testExportMultiPlatform', file, reason: 'needs a second platform (a multi-platform build and its index; issue 25)' },
    { name: 'testTarContext', file, reason: 'needs a tar archive as the build context (docker build - < context.tar), which gantry lacks: its context is a directory' },
    { name: 'testTarContextExternalDockerfile', file, reason: 'needs a tar archive as the build context with the Dockerfile given apart, which gantry lacks: its context is a directory' },
  ],
} satisfies CheckFile;
