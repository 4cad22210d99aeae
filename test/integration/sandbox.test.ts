import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runInSandbox, type Isolation } from '../../src/sandbox/run.js';
import { snapshot } from '../../src/snapshot/diff.js';
import { makeBusyboxRootfs } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';
import { waitForNoProcesses } from '../helpers/faults.js';

const base = mkdtempSync(path.join(tmpdir(), 'gantry-sandbox-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

async function run(rootfs: string, argv: string[], opts: { isolation?: Isolation; uid?: number; gid?: number; network?: 'none' | 'default'; env?: string[]; cwd?: string } = {}) {
  let out = '';
  let err = '';
  const r = await runInSandbox({
    rootfs,
    argv,
    env: opts.env ?? ['PATH=/bin'],
    cwd: opts.cwd ?? '/',
    uid: opts.uid ?? 0,
    gid: opts.gid ?? 0,
    ...(opts.network ? { network: opts.network } : {}),
    ...(opts.isolation ? { isolation: opts.isolation } : {}),
    onStdout: (d) => (out += d.toString()),
    onStderr: (d) => (err += d.toString()),
  });
  return { ...r, out, err };
}

describe.each(['oci', 'chroot'] as const)('sandbox: %s', (isolation) => {
  test('runs in the rootfs with its env and cwd (and a fresh /proc in a container); exit codes come back', async () => {
    if (isolation === 'oci') haveTool('runc');
    if (!isRoot && isolation === 'chroot') return;
    const rootfs = makeBusyboxRootfs(path.join(base, `r-${isolation}`));
    const r = await run(rootfs, ['sh', '-c', 'echo "$GREETING from $(pwd)"; ls /proc/self >/dev/null && echo proc-ok; echo data > /tmp/out; exit 3'], {
      isolation,
      env: ['PATH=/bin', 'GREETING=hello'],
      cwd: '/work/dir',
    });
    expect(r.isolation).toBe(isolation);
    // The chroot isolation mounts nothing: no /proc.
    expect(r.out).toBe(isolation === 'oci' ? 'hello from /work/dir\nproc-ok\n' : 'hello from /work/dir\n');
    expect(r.exitCode).toBe(3);
    expect(readFileSync(path.join(rootfs, 'tmp/out'), 'utf8')).toBe('data\n');
  });

  test('an abort at any moment of the start-up, or later, leaves no process of the RUN behind', async () => {
    if (isolation === 'oci') haveTool('runc');
    if (!isRoot && isolation === 'chroot') return;
    const rootfs = makeBusyboxRootfs(path.join(base, `k-${isolation}`));
    // A number no other process has on its command line marks this test's sleeps.
    const mark = String(700_000_000 + Math.floor(Math.random() * 99_999_999));
    const survivors: string[] = [];
    // Aborts from before the launcher starts to after the command runs, in small steps: some
    // land while bwrap or unshare is forking the sandbox's first process.
    for (let delay = 0; delay <= 60; delay += 2) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), delay);
      const r = runInSandbox({ rootfs, argv: ['busybox', 'sleep', mark], env: ['PATH=/bin'], cwd: '/', uid: 0, gid: 0, isolation, signal: controller.signal });
      // A process left behind keeps the output pipes open, and the run would never end.
      const outcome = await Promise.race([
        r.then(
          (x) => `resolved with exit code ${x.exitCode}`,
          (err: Error) => err.message,
        ),
        new Promise<string>((resolve) => setTimeout(() => resolve('still running 10 s after the abort'), 10_000)),
      ]);
      clearTimeout(timer);
      const left = await waitForNoProcesses(mark, 1000);
      survivors.push(...left.map((p) => `after ${delay} ms: ${p}`));
      for (const p of left) process.kill(Number(p.split(':')[0]), 'SIGKILL'); // not left for the next test
      expect(outcome, `abort after ${delay} ms`).toMatch(/aborted/);
      if (left.length > 0) break;
    }
    expect(survivors).toEqual([]);
  }, 120_000);

  test('resolv.conf and friends are mounted, then gone; what stays is the empty /proc, /dev and /sys a base without them gets (as in BuildKit 28)', async () => {
    if (isolation === 'oci') haveTool('runc');
    if (!isRoot && isolation === 'chroot') return;
    const rootfs = makeBusyboxRootfs(path.join(base, `s-${isolation}`));
    const before = await snapshot(rootfs);
    const r = await run(rootfs, ['sh', '-c', 'cat /etc/hosts >/dev/null && echo ok'], { isolation });
    expect(r.out).toBe('ok\n');
    expect(existsSync(path.join(rootfs, 'etc/resolv.conf'))).toBe(false);
    const after = await snapshot(rootfs);
    expect([...after.keys()].sort()).toEqual([...before.keys(), 'dev', 'proc', 'sys'].sort());
    for (const d of ['dev', 'proc', 'sys']) expect(readdirSync(path.join(rootfs, d)), d).toEqual([]);
  });

});

test('oci: --network=none has only loopback', async () => {
  haveTool('runc');
  const rootfs = makeBusyboxRootfs(path.join(base, 'n-oci'));
  const r = await run(rootfs, ['sh', '-c', 'cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "'], { isolation: 'oci', network: 'none' });
  expect(r.out.trim()).toBe('lo');
});

describe('users', () => {
  test('a non-root USER runs with its uid and gid, and what it writes belongs to it', async () => {
    if (!isRoot) return;
    const rootfs = makeBusyboxRootfs(path.join(base, 'u'));
    writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
    const { chmodSync } = await import('node:fs');
    chmodSync(path.join(rootfs, 'tmp'), 0o1777);
    const r = await run(rootfs, ['sh', '-c', 'id -u; id -g; echo x > /tmp/mine'], { uid: 1000, gid: 1000 });
    expect(r.isolation).toBe('oci');
    expect(r.out).toBe('1000\n1000\n');
    expect(statSync(path.join(rootfs, 'tmp/mine')).uid).toBe(1000);
  });
});
