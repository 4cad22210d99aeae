import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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


export default {
  file,
  checks: [
    {
      name: 'testTarExporterBasic',
      file,
      dockerfile: '\nFROM scratch\nCOPY foo foo\n',
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
      async custom(h) {
        const df = '\nFROM scratch AS stage-linux\nCOPY foo forlinux\nFROM scratch AS stage-darwin\nCOPY bar fordarwin\nFROM stage-$TARGETOS\n';
        expect(await tarExport(h, df, { foo: 'data', bar: 'data2' }, 'forlinux')).toBe('data');
      },
    },
    {
      name: 'testTarContext',
      file,
      dockerfile: '',
      // docker build - < context.tar: the Dockerfile and foo in a tar on standard input.
      async custom(h) {
        const dir = mkdtempSync(path.join(tmpdir(), 'bk-tarctx-'));
        try {
          writeFileSync(path.join(dir, 'Dockerfile'), '\nFROM scratch\nCOPY foo /');
          writeFileSync(path.join(dir, 'foo'), 'contents');
          const tar = execFileSync('tar', ['-c', '-C', dir, 'Dockerfile', 'foo']);
          const r = await h.gantry(['build', '--progress', 'plain', '-t', 'bktar/ctx:1', '-'], tar);
          expect(r.exitCode, r.output).toBe(0);
          expect((await h.files('bktar/ctx:1')).get('foo')?.content).toBe('contents');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    },
  ],
  notPorted: [
    { name: 'testExportMultiPlatform', file, reason: 'needs a second platform (a multi-platform build and its index; issue 25)' },
    {
      name: 'testTarContextExternalDockerfile',
      file,
      reason: "BuildKit's contextsubdir attribute (a subdirectory of a tar context as the context), which docker build has no option for",
    },
  ],
} satisfies CheckFile;
