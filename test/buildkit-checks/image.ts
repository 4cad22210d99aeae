import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_image_test.go';

interface Index {
  manifests: { digest: string; size: number; mediaType: string; platform?: unknown; annotations?: Record<string, string> }[];
}

function validateIdx(idx: Index): void {
  expect(idx.manifests.length).toBe(2);
  const [a, b] = idx.manifests as [Index['manifests'][0], Index['manifests'][0]];
  expect(a.digest).toBe(b.digest);
  expect(a.platform).toEqual(b.platform);
  expect(a.mediaType).toBe(b.mediaType);
  expect(a.size).toBe(b.size);
  expect(a.annotations?.['io.containerd.image.name']).toBe('docker.io/org/repo:tag1');
  expect(b.annotations?.['io.containerd.image.name']).toBe('docker.io/org/repo:tag2');
  expect(a.annotations?.['org.opencontainers.image.ref.name']).toBe('tag1');
  expect(b.annotations?.['org.opencontainers.image.ref.name']).toBe('tag2');
}

const multiname = '\nFROM scratch\nCOPY <<EOF /foo\nhello\nEOF\n';

/** moby/buildkit#5572: one image under two names in an OCI layout, as a directory and as a tar; `name` is the -o field naming both. */
async function ociMultiname(h: Harness, name: string): Promise<void> {
  const r = await h.build({ dockerfile: multiname, args: ['-o', `type=oci,dest={work}/layout,tar=false,${name}`] });
  await h.expectImage(r, {});
  validateIdx(JSON.parse(readFileSync(path.join(r.dir, 'layout', 'index.json'), 'utf8')) as Index);
  const t = await h.build({ dockerfile: multiname, args: ['-o', `type=oci,dest={work}/layout.tar,${name}`] });
  await h.expectImage(t, {});
  validateIdx(JSON.parse(execFileSync('tar', ['-xOf', path.join(t.dir, 'layout.tar'), 'index.json'], { encoding: 'utf8' })) as Index);
}

export default {
  file,
  checks: [
    {
      name: 'testPullScratch',
      file,
      dockerfile: '',
      // BuildKit reads the images from containerd; here from the store. Its last part (raw LLB
      // mounting the image read-write at /empty and exporting the mount) has no Dockerfile form
      // and is not ported.
      async custom(h) {
        const a = await h.build({ dockerfile: '\nFROM scratch\nLABEL foo=bar\n' }, { tag: 'bkimage/testpullscratch:latest' });
        await h.expectImage(a, {});
        const b = await h.build({ dockerfile: `\nFROM ${a.tag}\nLABEL bar=baz\nCOPY foo .\n`, context: { foo: 'foo-contents' } });
        await h.expectImage(b, { files: { foo: 'foo-contents' } });
        const i = await h.inspect(b.tag);
        const rootfs = i.RootFS as { Type: string; Layers: string[] };
        expect(rootfs.Type).toBe('layers');
        expect(rootfs.Layers.length).toBe(1);
        const labels = i.Config.Labels as Record<string, string>;
        expect(labels.foo).toBe('bar');
        expect(labels.bar).toBe('baz');
      },
    },
    {
      name: 'testDockerfileScratchConfig',
      file,
      dockerfile: '',
      async custom(h) {
        const r = await h.build({ dockerfile: '\nFROM scratch\nENV foo=bar\n' });
        await h.expectImage(r, {});
        const i = await h.inspect(r.tag);
        expect(i.Os).toBeTruthy();
        expect(i.Architecture).toBeTruthy();
        expect(i.Config.WorkingDir ?? '').not.toBe('');
        const rootfs = i.RootFS as { Type: string; Layers?: string[] };
        expect(rootfs.Type).toBe('layers');
        expect(rootfs.Layers ?? []).toHaveLength(0);
        const history = i.History as { created_by?: string; empty_layer?: boolean }[];
        expect(history).toHaveLength(1);
        expect(history[0]!.created_by).toContain('ENV foo=bar');
        expect(history[0]!.empty_layer).toBe(true);
        const env = i.Config.Env as string[];
        expect(env).toContain('foo=bar');
        expect(env.some((e) => e.startsWith('PATH='))).toBe(true);
      },
    },
    {
      name: 'testOCILayoutMultiname',
      file,
      dockerfile: multiname,
      // The two names as docker's -o reads them: a CSV field in quotes.
      custom: (h) => ociMultiname(h, '"name=org/repo:tag1,org/repo:tag2"'),
    },
    {
      name: 'testOCILayoutMultiname',
      file,
      dockerfile: multiname,
      // The two names as gantry also takes them (a newline between).
      custom: (h) => ociMultiname(h, 'name=org/repo:tag1\norg/repo:tag2'),
    },
    {
      name: 'testMultiNilRefsOCIExporter',
      file,
      dockerfile: 'FROM scratch',
      // Two platforms of nothing: index.json names one index, of two images.
      async custom(h) {
        const r = await h.build({ dockerfile: 'FROM scratch', args: ['--platform', 'linux/arm64,linux/amd64', '-o', 'type=oci,dest={work}/out.tar'] });
        expect(r.exitCode, r.output).toBe(0);
        const tarFile = path.join(r.dir, 'out.tar');
        const top = JSON.parse(execFileSync('tar', ['-xOf', tarFile, 'index.json'], { encoding: 'utf8' })) as Index;
        expect(top.manifests).toHaveLength(1);
        const index = JSON.parse(execFileSync('tar', ['-xOf', tarFile, `blobs/sha256/${(top.manifests[0] as { digest: string }).digest.slice(7)}`], { encoding: 'utf8' })) as Index;
        expect(index.manifests).toHaveLength(2);
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
