import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyLayer } from '../../src/rootfs/apply.js';
import tar from '../../src/tar/tar.js';
import { projectRoot } from '../helpers/conformance.js';
import { expectStoreConsistent, makeVictim } from '../helpers/hostile.js';
import { haveTool } from '../helpers/tools.js';

// Decompression bombs, truncated streams and the decompression helpers (issue 6, point 8):
// a few KiB of gzip, bzip2 or xz that expand to 64 MiB stop at a 16 MiB budget with a clear
// error; nothing half-made stays in the store; a truncated stream fails without hanging or
// leaving a helper process behind; the helpers are the host's, whatever PATH says.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-decompress-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const LIMIT = '16M';
const BOMB_SIZE = 64 * 1024 * 1024;

type Codec = 'gzip' | 'bzip2' | 'xz';
const codecs: Codec[] = ['gzip', 'bzip2', 'xz'];

async function tarOfZeros(size: number): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name: 'etc/hostname', mode: 0o644 }, 'bomb\n');
  pack.entry({ name: 'zeros', mode: 0o644, size }, Buffer.alloc(size));
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as unknown as Readable) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const compress = (codec: Codec, data: Buffer): Buffer =>
  codec === 'gzip' ? gzipSync(data, { level: 9 }) : execFileSync(codec, ['-c', '-9'], { input: data, maxBuffer: 1 << 30 });

const bombs = new Map<Codec, Buffer>();
let plain: Buffer;
beforeAll(async () => {
  for (const c of codecs) if (c !== 'gzip') haveTool(c);
  plain = await tarOfZeros(BOMB_SIZE);
  for (const c of codecs) bombs.set(c, compress(c, plain));
}, 120_000);

function sandbox(label: string) {
  const base = mkdtempSync(path.join(work, `${label}-`));
  return { base, victim: makeVictim(path.join(base, 'victim')), store: path.join(base, 'store') };
}

const gantry = (store: string, args: string[], env: Record<string, string> = {}) =>
  execa(bin, ['--root', store, ...args], { reject: false, env: { GANTRY_EXTRACT_LIMIT: LIMIT, ...env }, timeout: 120_000 });

/**
 * Helper processes (bzip2, xz, zstd) left behind: orphans (their parent gone, so adopted by
 * pid 1) or zombies nobody reaped. Helpers of other tests running at the same time have a
 * live parent and are not counted.
 */
const helpers = (): string[] =>
  execFileSync('ps', ['-eo', 'pid=,ppid=,stat=,comm='], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, stat, comm]) => /^(bzip2|xz|zstd)$/.test(comm ?? '') && (ppid === '1' || (stat ?? '').startsWith('Z')))
    .map(([pid, , stat, comm]) => `${pid} ${comm} ${stat}`);

/** After a failure: the temp area holds nothing of the command's (its lease is gone too). */
function expectNothingHalfMade(store: string): void {
  const tmp = path.join(store, 'tmp');
  expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
}

describe.each(codecs)('a %s bomb', (codec) => {
  test('the bomb is small and really expands past the budget', () => {
    expect(bombs.get(codec)!.length).toBeLessThan(BOMB_SIZE / 100);
  });

  test('gantry import stops at the budget; nothing is stored', async () => {
    const s = sandbox(`import-${codec}`);
    const file = path.join(s.base, `bomb.tar.${codec}`);
    writeFileSync(file, bombs.get(codec)!);
    const before = helpers();
    const r = await gantry(s.store, ['import', file, 'bomb:1']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/expands to more than 16 MiB, the extraction limit/);
    expect(r.stderr).toContain(file);
    expect(helpers()).toEqual(before);
    expectNothingHalfMade(s.store);
    expectStoreConsistent(s.store, s.victim.marker);
    expect(readdirSync(path.join(s.store, 'blobs', 'sha256'))).toEqual([]);
    s.victim.unchanged();
  });

  test('the helper killed at the budget is reaped before gantry exits, every time (no zombie left to init)', async () => {
    if (codec === 'gzip') return; // no helper: zlib in the process
    const s = sandbox(`reap-${codec}`);
    const file = path.join(s.base, `bomb.tar.${codec}`);
    writeFileSync(file, bombs.get(codec)!);
    const before = helpers();
    // The race is short (the helper is killed as gantry finishes): eight tries make it show.
    for (let i = 0; i < 8; i++) {
      const r = await gantry(s.store, ['import', file, `bomb:${i}`]);
      expect(r.exitCode).not.toBe(0);
      expect(helpers()).toEqual(before);
    }
  }, 60_000);

  test('gantry load stops at the budget; nothing is stored', async () => {
    const s = sandbox(`load-${codec}`);
    const file = path.join(s.base, `bomb.tar.${codec}`);
    writeFileSync(file, bombs.get(codec)!);
    const r = await gantry(s.store, ['load', '-i', file]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/extraction limit/);
    expectNothingHalfMade(s.store);
    expectStoreConsistent(s.store, s.victim.marker);
    s.victim.unchanged();
  });

  test('ADD of the bomb stops the build at the budget; the partial rootfs is removed', async () => {
    const s = sandbox(`add-${codec}`);
    const ctx = path.join(s.base, 'ctx');
    mkdirSync(ctx);
    writeFileSync(path.join(ctx, `bomb.tar.${codec}`), bombs.get(codec)!);
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM scratch\nADD bomb.tar.${codec} /\n`);
    const r = await gantry(s.store, ['build', '-t', 'bomb:1', ctx]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Dockerfile:2.*bomb\.tar\.\w+: expands to more than 16 MiB/s);
    expectNothingHalfMade(s.store);
    expectStoreConsistent(s.store, s.victim.marker);
    s.victim.unchanged();
  });
});

test('applyLayer stops at its limit too (a pulled layer that is a bomb)', async () => {
  const root = path.join(sandbox('apply').base, 'rootfs');
  mkdirSync(root);
  await expect(applyLayer(root, Readable.from([plain]), { what: 'layer sha256:x', limit: 16 * 1024 * 1024 })).rejects.toThrow(
    'layer sha256:x: expands to more than 16 MiB, the extraction limit',
  );
});

test('a bad GANTRY_EXTRACT_LIMIT is an error that names it', async () => {
  const s = sandbox('bad-limit');
  const file = path.join(s.base, 'small.tar.gz');
  writeFileSync(file, gzipSync(await tarOfZeros(10)));
  const r = await gantry(s.store, ['import', file, 'small:1'], { GANTRY_EXTRACT_LIMIT: 'lots' });
  expect(r.exitCode).not.toBe(0);
  expect(r.stderr).toContain('GANTRY_EXTRACT_LIMIT=lots');
  const ok = await gantry(s.store, ['import', file, 'small:1'], { GANTRY_EXTRACT_LIMIT: '1K' });
  expect(ok.stderr).toMatch(/1 KiB/);
  const fine = await gantry(s.store, ['import', file, 'small:1'], { GANTRY_EXTRACT_LIMIT: '1M' });
  expect(fine.exitCode, fine.stderr).toBe(0);
});

describe.each(codecs)('a truncated %s stream', (codec) => {
  test('fails cleanly: a clear error, no hang, no helper left running, nothing stored', async () => {
    const s = sandbox(`truncated-${codec}`);
    const whole = compress(codec, Buffer.concat([plain.subarray(0, 1 << 20), Buffer.alloc(1024)]));
    const file = path.join(s.base, `cut.tar.${codec}`);
    writeFileSync(file, whole.subarray(0, Math.floor(whole.length / 2)));
    const before = helpers();
    const r = await gantry(s.store, ['import', file, 'cut:1']);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/corrupt|truncated|unexpected end|not a valid tar/i);
    expect(r.stderr).toContain(file);
    expect(helpers()).toEqual(before);
    expectNothingHalfMade(s.store);
    expectStoreConsistent(s.store);
    s.victim.unchanged();
  });
});

test('decompression helpers come from the host, never from PATH', async () => {
  const s = sandbox('path');
  const fake = path.join(s.base, 'fakebin');
  mkdirSync(fake);
  const planted = path.join(s.base, 'planted-ran');
  for (const tool of ['xz', 'bzip2', 'zstd']) {
    writeFileSync(path.join(fake, tool), `#!/bin/sh\ntouch ${planted}\nexit 1\n`);
    chmodSync(path.join(fake, tool), 0o755);
  }
  for (const codec of ['xz', 'bzip2'] as const) {
    const file = path.join(s.base, `ok.tar.${codec}`);
    writeFileSync(file, compress(codec, await tarOfZeros(100)));
    const r = await gantry(s.store, ['import', file, `ok-${codec}:1`], { PATH: `${fake}:${process.env.PATH ?? ''}` });
    expect(r.exitCode, r.stderr).toBe(0);
  }
  expect(existsSync(planted)).toBe(false);
  expectStoreConsistent(s.store);
});
