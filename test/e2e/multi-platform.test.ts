import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import tar from 'tar-stream';
import { projectRoot } from '../helpers/conformance.js';
import { debianBaseTarball, DEBIAN_PATH } from '../helpers/debian.js';
import { containerdOracleEnv } from '../helpers/oracle.js';
import { registryIndex, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { haveTool } from '../helpers/tools.js';

// Issue 25: one build for linux/amd64 and linux/arm64. The bases are Debian for each
// architecture, made offline (debootstrap; arm64's second stage through qemu-user-static),
// pushed to a local registry as one two-platform index. The Dockerfile has a stage on
// $BUILDPLATFORM (run natively, "cross-compiling") and an emulated RUN uname -m. Docker 28.5
// (its containerd image store) builds the same Dockerfile from the same registry, to compare.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-multi-platform-'));
let reg: TestRegistry;
const PLATFORMS = 'linux/amd64,linux/arm64';

/** Whether this host runs arm64 binaries through a registered qemu (the F flag: inside any root). An error under CI when not. */
function emulatorRegistered(): boolean {
  const entry = '/proc/sys/fs/binfmt_misc/qemu-aarch64';
  const ok = existsSync(entry) && /^enabled/.test(readFileSync(entry, 'utf8')) && /flags: \w*F/.test(readFileSync(entry, 'utf8'));
  if (!ok && process.env.CI === 'true') throw new Error('qemu-user-static is not registered with binfmt_misc for arm64 (.ci/run registers it)');
  return ok;
}

const ready = haveTool('debootstrap') && haveTool('docker-registry') && haveTool('skopeo') && emulatorRegistered();

const gantry = (root: string, args: string[]) => execa(bin, ['--root', root, ...args], { reject: false, env: { GANTRY_LOOPBACK_ONLY: '1' } });

async function ok(root: string, args: string[]): Promise<string> {
  const r = await gantry(root, args);
  expect(r.exitCode, `gantry ${args.join(' ')}\n${r.stderr}`).toBe(0);
  return r.stdout;
}

const APP = `ARG REGISTRY
FROM --platform=$BUILDPLATFORM \${REGISTRY}/lib/debian:bookworm AS build
ARG TARGETPLATFORM BUILDPLATFORM TARGETOS TARGETARCH TARGETVARIANT
RUN echo "$BUILDPLATFORM $TARGETPLATFORM $TARGETOS $TARGETARCH [$TARGETVARIANT] $(uname -m)" > /cross
FROM \${REGISTRY}/lib/debian:bookworm
ARG TARGETARCH
COPY --from=build /cross /cross
RUN uname -m > /arch && dpkg --print-architecture >> /arch && echo "$TARGETARCH" >> /arch
CMD ["cat", "/arch"]
`;

function appContext(): string {
  const dir = mkdtempSync(path.join(work, 'app-'));
  writeFileSync(path.join(dir, 'Dockerfile'), APP);
  return dir;
}

beforeAll(async () => {
  if (!ready) return;
  const started = await startRegistry();
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  const amd64 = debianBaseTarball() as string;
  // The arm64 base: debootstrap --arch arm64 (its second stage runs under qemu), cached as the amd64 one is.
  const arm64 = execFileSync(path.join(projectRoot, 'scripts', 'debian-base.sh'), { encoding: 'utf8', env: { ...process.env, GANTRY_DEBIAN_ARCH: 'arm64' }, stdio: ['ignore', 'pipe', 'inherit'], timeout: 20 * 60_000 }).trim();
  const seed = path.join(work, 'seed');
  await ok(seed, ['import', amd64, 'deb:amd64', '--platform', 'linux/amd64', '-c', `ENV ${DEBIAN_PATH}`]);
  await ok(seed, ['import', arm64, 'deb:arm64', '--platform', 'linux/arm64', '-c', `ENV ${DEBIAN_PATH}`]);
  // The two-platform base index, pushed: each platform's FROM deb:<its arch>.
  const base = mkdtempSync(path.join(work, 'base-'));
  writeFileSync(path.join(base, 'Dockerfile'), 'ARG TARGETARCH\nFROM deb:${TARGETARCH}\n');
  await ok(seed, ['build', '--progress', 'quiet', '--platform', PLATFORMS, '-t', `${reg.host}/lib/debian:bookworm`, '--push', base]);
  // A base with amd64 and 386 only (386's files are amd64's: enough to be listed).
  await ok(seed, ['import', amd64, 'deb:386', '--platform', 'linux/386']);
  await ok(seed, ['build', '--progress', 'quiet', '--platform', 'linux/amd64,linux/386', '-t', `${reg.host}/lib/x86only:1`, '--push', base]);
}, 30 * 60_000);

afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

interface PlatformImage {
  platform: string;
  config: { architecture: string; os: string; variant?: string; config: Record<string, unknown>; history: { created_by?: string; empty_layer?: boolean }[] };
  /** The files of the layers after the base's: name → [mode, uid, gid, content]. */
  files: Record<string, [number, number, number, string]>;
}

async function tarFiles(data: Buffer): Promise<PlatformImage['files']> {
  const files: PlatformImage['files'] = {};
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c) => chunks.push(c as Buffer));
      stream.on('end', () => {
        files[h.name] = [h.mode ?? 0, h.uid ?? 0, h.gid ?? 0, Buffer.concat(chunks).toString()];
        next();
      });
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(data);
  await done;
  return files;
}

/** A pushed multi-platform image: the index's media type, and each platform's image (attestations left out). */
async function pulledIndex(repo: string, tag: string): Promise<{ mediaType: string; annotations: unknown; images: PlatformImage[] }> {
  const { mediaType, index, images } = await registryIndex(reg.host, repo, tag);
  const out: PlatformImage[] = [];
  for (const im of images) {
    const files: PlatformImage['files'] = {};
    for (const l of im.layers.slice(1)) Object.assign(files, await tarFiles(gunzipSync(l)));
    out.push({ platform: im.platform, config: im.config as unknown as PlatformImage['config'], files });
  }
  return { mediaType, annotations: index.annotations, images: out };
}

/** What must be the same as Docker's: the platform, the config's fields, the history's steps, the files the build made. */
function comparable(im: PlatformImage): unknown {
  const { architecture, os, variant, config } = im.config;
  return {
    platform: im.platform,
    architecture,
    os,
    variant,
    config,
    history: im.config.history.slice(1).map((h) => [h.created_by, h.empty_layer === true]),
    files: im.files,
  };
}

describe.skipIf(!ready)('multi-platform builds (linux/amd64 and linux/arm64)', () => {
  const root = path.join(work, 'store-a');

  test('one build pushes an index of both; each image has its architecture\'s files; the $BUILDPLATFORM stage ran natively', async () => {
    const r = await gantry(root, ['build', '--progress', 'json', '--platform', PLATFORMS, '--build-arg', `REGISTRY=${reg.host}`, '--annotation', 'index:org.opencontainers.image.description=both', '-t', `${reg.host}/app:gantry`, '--push', appContext()]);
    expect(r.exitCode, r.stderr).toBe(0);
    // Steps are shown with their platform, as BuildKit shows them.
    const steps = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; status?: string }).filter((e) => e.type === 'step' && e.status === 'done');
    expect(steps.some((e) => e.name?.startsWith('[linux/arm64 stage-1 3/3] RUN uname -m'))).toBe(true);
    expect(steps.some((e) => e.name?.startsWith('[linux/amd64 stage-1 3/3] RUN uname -m'))).toBe(true);
    const pushed = await pulledIndex('app', 'gantry');
    expect(pushed.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(pushed.annotations).toEqual({ 'org.opencontainers.image.description': 'both' });
    expect(pushed.images.map((im) => im.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const [amd64, arm64] = pushed.images as [PlatformImage, PlatformImage];
    expect([amd64.config.architecture, arm64.config.architecture]).toEqual(['amd64', 'arm64']);
    expect(amd64.files.arch?.[3]).toBe('x86_64\namd64\namd64\n');
    expect(arm64.files.arch?.[3]).toBe('aarch64\narm64\narm64\n');
    // The build stage is on the build platform: it ran on this amd64 host for both targets.
    expect(amd64.files.cross?.[3]).toBe('linux/amd64 linux/amd64 linux amd64 [] x86_64\n');
    expect(arm64.files.cross?.[3]).toBe('linux/amd64 linux/arm64 linux arm64 [] x86_64\n');
    // The store names the index; images and inspect show its platforms.
    const rows = (await ok(root, ['images', '--format', '{{.Repository}} {{.Platforms}}'])).split('\n');
    expect(rows).toContain(`${reg.host}/app linux/amd64,linux/arm64`);
    const [inspected] = JSON.parse(await ok(root, ['inspect', `${reg.host}/app:gantry`])) as { Id: string; Architecture: string; Manifests: { Descriptor: { platform: { architecture: string } }; Available: boolean }[] }[];
    expect(inspected?.Architecture).toBe('amd64');
    expect(inspected?.Manifests.map((m) => [m.Descriptor.platform.architecture, m.Available])).toEqual([['amd64', true], ['arm64', true]]);
  }, 15 * 60_000);

  test('Docker 28.5 (containerd image store) builds the same Dockerfile to the same images', async () => {
    const env = containerdOracleEnv();
    // RUN on the host's network: the containerd engine's bridge does not work in its chroot.
    const r = await execa('docker', ['buildx', 'build', '--progress', 'plain', '--network', 'host', '--platform', PLATFORMS, '--build-arg', `REGISTRY=${reg.host}`, '-t', `${reg.host}/app:docker`, '--push', appContext()], { env, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const docker = await pulledIndex('app', 'docker');
    const ours = await pulledIndex('app', 'gantry');
    expect(docker.mediaType).toBe(ours.mediaType);
    expect(ours.images.map(comparable)).toEqual(docker.images.map(comparable));

    // Archives both ways: Docker's save of its multi-platform image loads here as one (its
    // attestations left out), and gantry's save (laid out as Docker's: the index in index.json,
    // manifest.json naming this host's platform's image) loads into Docker as the same index.
    const theirs = path.join(work, 'docker-saved.tar');
    await execa('docker', ['save', '-o', theirs, `${reg.host}/app:docker`], { env });
    const dockerManifest = JSON.parse(execFileSync('tar', ['-xOf', theirs, 'manifest.json'], { encoding: 'utf8' })) as { Config: string; RepoTags: string[] }[];
    const loaded = path.join(work, 'store-from-docker');
    await ok(loaded, ['load', '-i', theirs]);
    expect(await ok(loaded, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.Platforms}}'])).toBe(`${reg.host}/app:docker linux/amd64,linux/arm64`);
    const mine = path.join(work, 'gantry-saved.tar');
    await ok(path.join(work, 'store-a'), ['save', '-o', mine, `${reg.host}/app:gantry`]);
    const ourManifest = JSON.parse(execFileSync('tar', ['-xOf', mine, 'manifest.json'], { encoding: 'utf8' })) as { Config: string; RepoTags: string[] }[];
    expect(ourManifest.map((m) => m.RepoTags)).toEqual(dockerManifest.map((m) => m.RepoTags.map((t) => t.replace(':docker', ':gantry'))));
    const topOf = (file: string) => (JSON.parse(execFileSync('tar', ['-xOf', file, 'index.json'], { encoding: 'utf8' })) as { manifests: { mediaType: string; annotations: Record<string, string> }[] }).manifests.map((d) => [d.mediaType, Object.keys(d.annotations).sort()]);
    expect(topOf(mine)).toEqual(topOf(theirs));
    await execa('docker', ['rmi', `${reg.host}/app:gantry`], { env, reject: false });
    await execa('docker', ['load', '-i', mine], { env });
    const id = (await execa('docker', ['image', 'inspect', '--format', '{{.Id}}', `${reg.host}/app:gantry`], { env })).stdout.trim();
    expect(id).toBe(JSON.parse(await ok(path.join(work, 'store-a'), ['inspect', `${reg.host}/app:gantry`]))[0].Id);
  }, 15 * 60_000);

  test('save and load keep the index; -o oci, docker, local and tar write every platform', async () => {
    const archive = path.join(work, 'app.tar');
    await ok(root, ['save', `${reg.host}/app:gantry`, '-o', archive]);
    const other = path.join(work, 'store-loaded');
    await ok(other, ['load', '-i', archive]);
    expect(await ok(other, ['images', '--format', '{{.Platforms}}'])).toBe('linux/amd64,linux/arm64');
    // The archive's manifest.json names this host's platform's image, as Docker 28 saves one.
    const manifestJson = JSON.parse(execFileSync('tar', ['-xOf', archive, 'manifest.json'], { encoding: 'utf8' })) as { RepoTags: string[] }[];
    expect(manifestJson.map((m) => m.RepoTags)).toEqual([[`${reg.host}/app:gantry`]]);

    const oci = path.join(work, 'app-oci.tar');
    const dockerTar = path.join(work, 'app-docker.tar');
    const local = path.join(work, 'app-local');
    await ok(root, ['build', '--progress', 'quiet', '--platform', PLATFORMS, '--build-arg', `REGISTRY=${reg.host}`, '-o', `type=oci,dest=${oci}`, '-o', `type=docker,dest=${dockerTar}`, '-o', `type=local,dest=${local}`, appContext()]);
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${oci}`], { encoding: 'utf8' })) as { manifests: { platform: { architecture: string } }[] };
    expect(raw.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const armConfig = JSON.parse(execFileSync('skopeo', ['inspect', '--override-arch', 'arm64', '--config', `oci-archive:${oci}`], { encoding: 'utf8' })) as { architecture: string };
    expect(armConfig.architecture).toBe('arm64');
    await ok(path.join(work, 'store-docker-tar'), ['load', '-i', dockerTar]);
    expect(readFileSync(path.join(local, 'linux_amd64', 'arch'), 'utf8')).toBe('x86_64\namd64\namd64\n');
    expect(readFileSync(path.join(local, 'linux_arm64', 'arch'), 'utf8')).toBe('aarch64\narm64\narm64\n');
    // One tar: each platform's files under its directory, as BuildKit's tar exporter writes them.
    const files = path.join(work, 'app-files.tar');
    await ok(root, ['build', '--progress', 'quiet', '--platform', PLATFORMS, '--build-arg', `REGISTRY=${reg.host}`, '-o', `type=tar,dest=${files}`, appContext()]);
    expect(execFileSync('tar', ['-xOf', files, 'linux_arm64/arch'], { encoding: 'utf8' })).toBe('aarch64\narm64\narm64\n');
    expect(execFileSync('tar', ['-xOf', files, 'linux_amd64/arch'], { encoding: 'utf8' })).toBe('x86_64\namd64\namd64\n');
    expect(execFileSync('tar', ['-tf', files], { encoding: 'utf8' }).split('\n').filter(Boolean).every((n) => /^linux_(amd64|arm64)\//.test(n))).toBe(true);
  }, 15 * 60_000);

  test('a registry cache carries both platforms\' steps: a second, empty host runs none and pushes the same index', async () => {
    const cache = `${reg.host}/cache/app:mp`;
    const first = await gantry(path.join(work, 'host-a'), ['build', '--progress', 'quiet', '--platform', PLATFORMS, '--build-arg', `REGISTRY=${reg.host}`, '--cache-to', `type=registry,ref=${cache},mode=max`, '-t', `${reg.host}/app:host-a`, '--push', appContext()]);
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await gantry(path.join(work, 'host-b'), ['build', '--progress', 'json', '--platform', PLATFORMS, '--build-arg', `REGISTRY=${reg.host}`, '--cache-from', `type=registry,ref=${cache}`, '-t', `${reg.host}/app:host-b`, '--push', appContext()]);
    expect(second.exitCode, second.stderr).toBe(0);
    const events = second.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; status?: string }).filter((e) => e.type === 'step');
    expect(events.filter((e) => e.status === 'done' && / (RUN|COPY) /.test(e.name ?? ''))).toEqual([]);
    expect(events.filter((e) => e.status === 'cached').map((e) => e.name?.split(']')[0])).toEqual(expect.arrayContaining(['[linux/amd64 stage-1 3/3', '[linux/arm64 stage-1 3/3']));
    // The store keeps A's layers uncompressed and B's as the cache had them: the indexes pushed (gzip both) are the same.
    const digestOf = async (tag: string) => (await fetch(`http://${reg.host}/v2/app/manifests/${tag}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.index.v1+json' } })).headers.get('docker-content-digest');
    const a = await digestOf('host-a');
    expect(a).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await digestOf('host-b')).toBe(a);
  }, 15 * 60_000);

  test('a platform the base index lacks is an error naming the platforms it has', async () => {
    const dir = mkdtempSync(path.join(work, 'lacks-'));
    writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${reg.host}/lib/x86only:1\nRUN true\n`);
    const r = await gantry(path.join(work, 'store-lacks'), ['build', '--progress', 'plain', '--platform', PLATFORMS, dir]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('Dockerfile:1');
    expect(r.stderr).toMatch(/has no image for linux\/arm64 \(it has: linux\/amd64, linux\/386\)/);
  }, 5 * 60_000);
});

// What needs neither a registry nor an emulator: FROM scratch, COPY only.
describe('multi-platform builds FROM scratch', () => {
  const scratchContext = (dockerfile: string): string => {
    const dir = mkdtempSync(path.join(work, 'scratch-'));
    writeFileSync(path.join(dir, 'Dockerfile'), dockerfile);
    writeFileSync(path.join(dir, 'a'), 'a\n');
    return dir;
  };

  test('a platform given twice, or a trailing comma, is one platform: an image, not an index', async () => {
    const root = path.join(work, 'store-one');
    const ctx = scratchContext('FROM scratch\nARG TARGETARCH\nCOPY a /a-$TARGETARCH\n');
    for (const platform of [['--platform', 'linux/arm64,linux/arm64'], ['--platform', 'linux/arm64', '--platform', 'arm64'], ['--platform', 'linux/arm64,']]) {
      const r = await gantry(root, ['build', '--progress', 'quiet', ...platform, '-t', 'one:1', ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      const [inspected] = JSON.parse(await ok(root, ['inspect', 'one:1'])) as { Architecture: string; Manifests?: unknown; RootFS: { Layers: string[] } }[];
      expect(inspected?.Architecture).toBe('arm64');
      expect(inspected?.Manifests).toBeUndefined();
    }
    const plan = await gantry(root, ['build', '--dry-run', '--platform', 'linux/arm64,', ctx]);
    expect(plan.exitCode, plan.stderr).toBe(0);
    expect(plan.stdout).toContain('platform: linux/arm64');
  });

  test('--no-cache runs a $BUILDPLATFORM stage once for both platforms, and the next build takes every step from the cache', async () => {
    const root = path.join(work, 'store-nocache');
    const ctx = scratchContext('FROM --platform=$BUILDPLATFORM scratch AS build\nCOPY a /a\nFROM scratch\nCOPY --from=build /a /b\n');
    const steps = async (extra: string[]) => {
      const r = await gantry(root, ['build', '--progress', 'json', '--platform', 'linux/amd64,linux/arm64', ...extra, ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      return r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; status?: string }).filter((e) => e.type === 'step' && e.status !== 'start').map((e) => `${e.name} ${e.status}`);
    };
    expect(await steps(['--no-cache'])).toEqual([
      '[linux/amd64 build 1/1] COPY a /a done',
      '[linux/amd64 stage-1 1/1] COPY --from=build /a /b done',
      '[linux/amd64 build 1/1] COPY a /a cached',
      '[linux/arm64 stage-1 1/1] COPY --from=build /a /b done',
    ]);
    expect((await steps([])).every((s) => s.endsWith(' cached'))).toBe(true);
  });

  test('a mode=min cache keeps the stages each platform leaves the build with (FROM base-$TARGETARCH)', async () => {
    const ctx = scratchContext('FROM scratch AS base-amd64\nCOPY a /from-amd64\nFROM scratch AS base-arm64\nCOPY a /from-arm64\nFROM base-$TARGETARCH\nCOPY a /final\n');
    const cache = path.join(work, 'min-cache');
    const a = await gantry(path.join(work, 'store-min-a'), ['build', '--progress', 'quiet', '--platform', 'linux/amd64,linux/arm64', '--cache-to', `type=local,dest=${cache},mode=min`, ctx]);
    expect(a.exitCode, a.stderr).toBe(0);
    const b = await gantry(path.join(work, 'store-min-b'), ['build', '--progress', 'json', '--platform', 'linux/amd64,linux/arm64', '--cache-from', `type=local,src=${cache}`, ctx]);
    expect(b.exitCode, b.stderr).toBe(0);
    const steps = b.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; name?: string; status?: string }).filter((e) => e.type === 'step' && / COPY /.test(e.name ?? ''));
    // Both platforms' base stage COPYs and final COPYs come from the cache; none runs.
    expect(steps.filter((e) => e.status === 'done')).toEqual([]);
    expect(steps.filter((e) => e.status === 'cached').map((e) => e.name?.split(']')[0]).sort()).toEqual(['[linux/amd64 base-amd64 1/1', '[linux/amd64 stage-2 1/1', '[linux/arm64 base-arm64 1/1', '[linux/arm64 stage-2 1/1']);
  });
});
