import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { kernel, KernelCallError, MNT_DETACH } from '../../src/rootfs/kernel.js';
import { readXattrs } from '../../src/rootfs/xattr.js';
import { projectRoot } from '../helpers/conformance.js';
import { haveTool } from '../helpers/tools.js';

// The kernel helper (src/rootfs/kernel.ts): mount, umount2 and lgetxattr made by one perl
// process instead of a mount, umount or getfattr started per call. Checked against the kernel's
// own view (/proc/self/mountinfo) and against getfattr.

const isRoot = process.getuid?.() === 0;
const work = mkdtempSync(path.join(tmpdir(), 'gantry-kernel-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const mounted = (dir: string): boolean =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((l) => l.split(' ')[4] === dir);

/** The helper's pid: the perl child of this process. */
function helperPid(): number | undefined {
  for (const task of readdirSync(`/proc/${process.pid}/task`)) {
    for (const pid of readFileSync(`/proc/${process.pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (cmd.startsWith('/usr/bin/perl\0-e\0') || cmd.startsWith('/bin/perl\0-e\0')) return Number(pid);
    }
  }
  return undefined;
}

describe('kernel helper', () => {
  test('runs on this machine (perl, a listed architecture)', () => {
    expect(haveTool('perl')).toBe(true);
    expect(['x64', 'arm64']).toContain(process.arch);
    expect(kernel()).toBeDefined();
  });

  test.runIf(isRoot)('mounts an overlay whose lower directories are relative to cwd, and unmounts it', async () => {
    const k = kernel()!;
    const dir = path.join(work, 'ov');
    for (const d of ['lower1', 'lower2', 'upper', 'work', 'merged']) mkdirSync(path.join(dir, d), { recursive: true });
    writeFileSync(path.join(dir, 'lower1', 'a'), 'top');
    writeFileSync(path.join(dir, 'lower2', 'a'), 'bottom');
    writeFileSync(path.join(dir, 'lower2', 'b'), 'b');
    const merged = path.join(dir, 'merged');
    await k.mount('overlay', merged, 'overlay', `lowerdir=lower1:lower2,upperdir=${dir}/upper,workdir=${dir}/work`, dir);
    expect(mounted(merged)).toBe(true);
    expect(readFileSync(path.join(merged, 'a'), 'utf8')).toBe('top');
    expect(readFileSync(path.join(merged, 'b'), 'utf8')).toBe('b');
    writeFileSync(path.join(merged, 'c'), 'new');
    await k.umount(merged);
    expect(mounted(merged)).toBe(false);
    expect(readFileSync(path.join(dir, 'upper', 'c'), 'utf8')).toBe('new');
  });

  test.runIf(isRoot)('a failed call says what failed and the kernel error; the helper goes on', async () => {
    const k = kernel()!;
    const merged = path.join(work, 'bad');
    mkdirSync(merged, { recursive: true });
    const err = await k.mount('overlay', merged, 'overlay', 'lowerdir=/nonexistent-lower', '/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelCallError);
    expect((err as KernelCallError).message).toMatch(new RegExp(`^mount of overlay at ${merged}: No such file or directory`));
    expect((err as KernelCallError).errno).toBe(2);
    const notMounted = await k.umount(merged).catch((e: unknown) => e);
    expect((notMounted as KernelCallError).errno).toBe(22); // EINVAL: not a mount point
    expect((await k.mount('overlay', merged, 'overlay', 'x', path.join(work, 'missing-cwd')).catch((e: unknown) => e)) as KernelCallError).toMatchObject({ errno: 2 });
    // and then works
    await k.mount('tmpfs', merged, 'tmpfs', 'size=1m');
    expect(mounted(merged)).toBe(true);
    await k.umount(merged, MNT_DETACH);
    expect(mounted(merged)).toBe(false);
  });

  test.runIf(isRoot)('a busy mount is detached by unmount()', async () => {
    const { unmount } = await import('../../src/rootfs/overlay.js');
    const k = kernel()!;
    const dir = path.join(work, 'busy');
    mkdirSync(dir, { recursive: true });
    await k.mount('tmpfs', dir, 'tmpfs', 'size=1m');
    writeFileSync(path.join(dir, 'f'), 'x');
    // a process with its working directory inside keeps the mount busy
    const holder = execFile('/bin/sleep', ['1000'], { cwd: dir });
    await new Promise((r) => holder.once('spawn', r));
    expect(await k.umount(dir).catch((e: unknown) => (e as KernelCallError).errno)).toBe(16); // EBUSY
    await unmount(dir);
    expect(mounted(dir)).toBe(false);
    holder.kill('SIGKILL');
  });

  test('reads security.capability as getfattr does: no symlink followed, any path', async () => {
    const dir = path.join(work, 'x');
    mkdirSync(dir, { recursive: true });
    const names = ['capped', 'plain', 'with space', 'new\nline', 'ünï'];
    for (const n of names) writeFileSync(path.join(dir, n), n);
    const cap = '0x0100000200200000000000000000000000000000';
    if (isRoot) {
      expect(haveTool('setfattr')).toBe(true);
      for (const n of ['capped', 'with space', 'new\nline', 'ünï']) execFileSync('setfattr', ['-h', '-n', 'security.capability', '-v', cap, path.join(dir, n)]);
    }
    symlinkSync('capped', path.join(dir, 'link'));
    const paths = [...names, 'link', 'missing'].map((n) => path.join(dir, n));
    const found = await kernel()!.getxattr('security.capability', paths);
    if (!isRoot) {
      expect(found.size).toBe(0);
      return;
    }
    expect([...found.keys()].sort()).toEqual([0, 2, 3, 4]);
    for (const v of found.values()) expect(`0x${v.toString('hex')}`).toBe(cap);
    // the walk of the helper finds the same, by relative path, into directories, following no link
    mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
    writeFileSync(path.join(dir, 'sub', 'deeper', 'tool'), 't');
    execFileSync('setfattr', ['-h', '-n', 'security.capability', '-v', cap, path.join(dir, 'sub', 'deeper', 'tool')]);
    symlinkSync('sub', path.join(dir, 'dirlink'));
    const tree = await kernel()!.getxattrTree('security.capability', dir);
    expect([...tree.keys()].sort()).toEqual(['capped', 'new\nline', 'sub/deeper/tool', 'with space', 'ünï']);
    for (const v of tree.values()) expect(`0x${v.toString('hex')}`).toBe(cap);
    // readXattrs goes through the helper and says the same as getfattr, path by path
    const read = await readXattrs(paths);
    for (const p of paths) {
      let dump = '';
      try {
        dump = execFileSync('getfattr', ['--absolute-names', '-h', '-n', 'security.capability', '-e', 'hex', p], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      } catch {
        // no such attribute, no such file
      }
      expect(read.get(p)?.get('security.capability')?.toString('hex'), p).toBe(/security\.capability=0x([0-9a-f]+)/.exec(dump)?.[1]);
    }
  });

  test('a helper that dies fails its pending call and the next call starts a new one', async () => {
    const k = kernel()!;
    await k.getxattr('security.capability', ['/']);
    const pid = helperPid();
    expect(pid).toBeDefined();
    const pending = k.getxattr('security.capability', Array.from({ length: 50_000 }, (_, i) => `/nonexistent/${i}`));
    process.kill(pid as number, 'SIGKILL');
    const outcome = await pending.then(
      () => 'answered before the kill',
      (e: unknown) => (e as Error).message,
    );
    expect(['answered before the kill', 'the kernel helper (perl) ended']).toContain(outcome);
    const again = kernel()!;
    expect((await again.getxattr('security.capability', ['/'])).size).toBe(0);
    expect(helperPid()).not.toBe(pid);
  });

  test('an idle helper keeps no program alive', async () => {
    // A program that makes one call and then has nothing left to do ends by itself.
    const script = `import(${JSON.stringify(path.join(projectRoot, 'dist', 'rootfs', 'kernel.js'))}).then(async (m) => {
      const k = m.kernel();
      if (!k) throw new Error('no helper');
      await k.getxattr('security.capability', ['/']);
      console.log('called');
    });`;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    expect(out.trim()).toBe('called');
  });
});
