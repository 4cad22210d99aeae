import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { platformList } from '../../src/builder/platforms.js';
import { indexOf, platformOf } from '../../src/image/image.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { emulationFor } from '../../src/sandbox/emulation.js';
import type { Image } from '../../src/image/image.js';
import { tempDirs } from '../helpers/temp.js';

const tmp = tempDirs('gantry-multi-platform-');

describe('platformList (--platform)', () => {
  test('a comma-separated list, normalised, each platform once; none given is none', () => {
    expect(platformList('linux/amd64, linux/arm64,linux/amd64')).toEqual(['linux/amd64', 'linux/arm64']);
    expect(platformList('arm64,linux/aarch64,linux/arm/v7')).toEqual(['linux/arm64', 'linux/arm/v7']);
    expect(platformList('linux/amd64,')).toEqual(['linux/amd64']);
    expect(platformList(undefined)).toEqual([]);
  });

  test('a bad entry is refused, named', () => {
    expect(() => platformList('linux/amd64,linux/arm64/v8/x')).toThrow(/invalid platform "linux\/arm64\/v8\/x"/);
  });
});

describe('indexOf', () => {
  test('lists each image with its platform, in order; the digest is the index\'s bytes', () => {
    const image = (architecture: string, variant?: string): Image => {
      const rawManifest = Buffer.from(`{"schemaVersion":2,"arch":"${architecture}"}`);
      return { digest: digestOf(rawManifest), mediaType: MediaType.ociManifest, rawManifest, config: { architecture, os: 'linux', ...(variant ? { variant } : {}) } } as unknown as Image;
    };
    const ix = indexOf([image('amd64'), image('arm', 'v7')], { 'org.opencontainers.image.title': 'x' });
    expect(ix.index.manifests.map((d) => d.platform)).toEqual([{ architecture: 'amd64', os: 'linux' }, { architecture: 'arm', os: 'linux', variant: 'v7' }]);
    expect(ix.index.annotations).toEqual({ 'org.opencontainers.image.title': 'x' });
    expect(ix.mediaType).toBe(MediaType.ociIndex);
    expect(ix.digest).toBe(digestOf(ix.rawIndex));
    expect(JSON.parse(ix.rawIndex.toString())).toEqual(ix.index);
    expect(platformOf(image('arm64'))).toEqual({ architecture: 'arm64', os: 'linux' });
  });
});

/** A binfmt_misc directory as /proc shows one: `register`, `status`, and a handler file each. */
function binfmt(handlers: Record<string, { enabled?: boolean; flags?: string; magic: string; mask?: string }>, mounted = true): string {
  const dir = tmp();
  mkdirSync(dir, { recursive: true });
  if (mounted) {
    writeFileSync(path.join(dir, 'register'), '');
    writeFileSync(path.join(dir, 'status'), 'enabled\n');
  }
  for (const [name, h] of Object.entries(handlers)) {
    const lines = [h.enabled === false ? 'disabled' : 'enabled', `interpreter /usr/libexec/qemu-binfmt/${name}`, `flags: ${h.flags ?? 'PF'}`, 'offset 0', `magic ${h.magic}`, ...(h.mask ? [`mask ${h.mask}`] : [])];
    writeFileSync(path.join(dir, name), `${lines.join('\n')}\n`);
  }
  return dir;
}

// Debian's qemu-user-static registration for aarch64, as /proc shows it.
const AARCH64 = { magic: '7f454c460201010000000000000000000200b700', mask: 'ffffffffffffff00fffffffffffffffffeffffff' };

describe('emulationFor (RUN for another architecture)', () => {
  test('the host\'s own architecture, and 386 on amd64, run natively', () => {
    const dir = binfmt({});
    expect(emulationFor('linux/amd64', 'amd64', dir)).toEqual({ type: 'native' });
    expect(emulationFor('linux/386', 'amd64', dir)).toEqual({ type: 'native' });
  });

  test('arm64 through a handler registered with F, matched by its magic whatever its name', () => {
    expect(emulationFor('linux/arm64', 'amd64', binfmt({ 'my-arm64': AARCH64 }))).toEqual({ type: 'emulated', handler: 'my-arm64', interpreter: '/usr/libexec/qemu-binfmt/my-arm64' });
    // A handler for other binaries (armhf) does not run arm64's.
    expect(() => emulationFor('linux/arm64', 'amd64', binfmt({ 'qemu-arm': { magic: '7f454c4601010100000000000000000002002800', mask: 'ffffffffffffff00fffffffffffffffffeffffff' } }))).toThrow(/no binfmt_misc handler for arm64 binaries is registered/);
  });

  test('no handler, a disabled handler, one without F: refused, saying how to register one', () => {
    const setup = /apt-get install qemu-user-static.*update-binfmts --enable qemu-aarch64/;
    expect(() => emulationFor('linux/arm64', 'amd64', binfmt({}))).toThrow(setup);
    expect(() => emulationFor('linux/arm64', 'amd64', binfmt({ 'qemu-aarch64': { ...AARCH64, enabled: false } }))).toThrow(/handler qemu-aarch64 is disabled/);
    expect(() => emulationFor('linux/arm64', 'amd64', binfmt({ 'qemu-aarch64': { ...AARCH64, flags: 'P' } }))).toThrow(/registered without the F flag/);
    expect.assertions(5);
    try {
      emulationFor('linux/arm64', 'amd64', binfmt({}));
    } catch (err) {
      expect((err as { code?: string }).code).toBe('SANDBOX_EMULATOR');
      expect((err as Error).message).toMatch(/^RUN for linux\/arm64 needs an emulator on this amd64 host/);
    }
  });

  test('where binfmt_misc cannot be seen (a container), or arm on arm64, the RUN is tried, with the hint for an exec format error', () => {
    const unseen = emulationFor('linux/arm64', 'amd64', binfmt({}, false));
    expect(unseen).toEqual({ type: 'unseen', hint: expect.stringMatching(/binfmt_misc is not mounted at .*update-binfmts --enable qemu-aarch64/) });
    expect(emulationFor('linux/arm/v7', 'arm64', binfmt({}))).toEqual({ type: 'unseen', hint: expect.stringMatching(/does not run 32-bit arm binaries itself/) });
  });

  test('an architecture gantry knows no binaries of is refused', () => {
    expect(() => emulationFor('linux/sparc64', 'amd64', binfmt({}))).toThrow(/knows no emulator for sparc64/);
  });
});
