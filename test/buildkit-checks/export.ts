import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_export_test.go';

const exportMultiPlatform = '\nFROM scratch\nARG TARGETARCH\nARG TARGETPLATFORM\nLABEL target=$TARGETPLATFORM\nCOPY arch-$TARGETARCH whoami\n';

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
      dockerfile: '\nFROM scratch AS stage-linux\nCOPY foo forlinux\nFROM scratch AS stage-darwin\nCOPY bar fordarwin\nFROM stage-$TARGETOS\n',
      async custom(h) {
        const df = '\nFROM scratch AS stage-linux\nCOPY foo forlinux\nFROM scratch AS stage-darwin\nCOPY bar fordarwin\nFROM stage-$TARGETOS\n';
        expect(await tarExport(h, df, { foo: 'data', bar: 'data2' }, 'forlinux')).toBe('data');
        // Two platforms at once: each one's files under its directory of the one tar.
        const r = await h.build({ dockerfile: df, context: { foo: 'data', bar: 'data2' }, args: ['--platform', 'linux/amd64,darwin/amd64', '-o', 'type=tar,dest={work}/multi.tar'] });
        expect(r.exitCode, r.output).toBe(0);
        const tarFile = path.join(r.dir, 'multi.tar');
        expect(execFileSync('tar', ['-xOf', tarFile, 'linux_amd64/forlinux'], { encoding: 'utf8' })).toBe('data');
        expect(execFileSync('tar', ['-xOf', tarFile, 'darwin_amd64/fordarwin'], { encoding: 'utf8' })).toBe('data2');
      },
    },
    {
      name: 'testExportMultiPlatform',
      file,
      dockerfile: exportMultiPlatform,
      async custom(h) {
        const context = { 'arch-arm': 'i am arm', 'arch-amd64': 'i am amd64', 'arch-s390x': 'i am s390x', 'arch-ppc64le': 'i am ppc64le' };
        const local = await h.build({ dockerfile: exportMultiPlatform, context, args: ['--platform', 'windows/amd64,linux/arm,linux/s390x', '-o', 'type=local,dest={work}/out'] });
        expect(local.exitCode, local.output).toBe(0);
        expect(readFileSync(path.join(local.dir, 'out', 'windows_amd64', 'whoami'), 'utf8')).toBe('i am amd64');
        expect(readFileSync(path.join(local.dir, 'out', 'linux_arm_v7', 'whoami'), 'utf8')).toBe('i am arm');
        expect(readFileSync(path.join(local.dir, 'out', 'linux_s390x', 'whoami'), 'utf8')).toBe('i am s390x');
        // Again with the OCI exporter: index.json names the index, which names the three images in order.
        const oci = await h.build({ dockerfile: exportMultiPlatform, context, args: ['--platform', 'windows/amd64,linux/arm/v6,linux/ppc64le', '-o', 'type=oci,dest={work}/out.tar'] });
        expect(oci.exitCode, oci.output).toBe(0);
        const tarFile = path.join(oci.dir, 'out.tar');
        const member = (name: string): Buffer => execFileSync('tar', ['-xOf', tarFile, name]);
        const json = <T>(digest: string): T => JSON.parse(member(`blobs/sha256/${digest.slice(7)}`).toString()) as T;
        const top = JSON.parse(member('index.json').toString()) as { manifests: { digest: string }[] };
        const index = json<{ manifests: { digest: string; platform: { os: string; architecture: string; variant?: string } }[] }>((top.manifests[0] as { digest: string }).digest);
        expect(index.manifests).toHaveLength(3);
        const expected = [
          { p: 'windows/amd64', os: 'windows', arch: 'amd64', dt: 'i am amd64' },
          { p: 'linux/arm/v6', os: 'linux', arch: 'arm', dt: 'i am arm' },
          { p: 'linux/ppc64le', os: 'linux', arch: 'ppc64le', dt: 'i am ppc64le' },
        ];
        for (const [i, exp] of expected.entries()) {
          const d = index.manifests[i] as (typeof index.manifests)[number];
          expect([d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/')).toBe(exp.p);
          const manifest = json<{ layers: { digest: string }[]; config: { digest: string } }>(d.digest);
          expect(manifest.layers).toHaveLength(1);
          const layer = gunzipSync(member(`blobs/sha256/${(manifest.layers[0] as { digest: string }).digest.slice(7)}`));
          expect(execFileSync('tar', ['-xO', 'whoami'], { input: layer, encoding: 'utf8' })).toBe(exp.dt);
          const config = json<{ os: string; architecture: string; config: { Labels: Record<string, string> } }>(manifest.config.digest);
          expect([config.os, config.architecture, config.config.Labels.target]).toEqual([exp.os, exp.arch, exp.p]);
        }
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
    {
      name: 'testTarContextExternalDockerfile',
      file,
      reason: "BuildKit's contextsubdir attribute (a subdirectory of a tar context as the context), which docker build has no option for",
    },
  ],
} satisfies CheckFile;
