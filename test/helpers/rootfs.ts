import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** Where Debian's busybox-static puts its binary. */
export const BUSYBOX = '/bin/busybox';

/** A minimal busybox root filesystem directory: /bin/busybox, applet links, /etc/passwd. */
export function makeBusyboxRootfs(dir = mkdtempSync(path.join(tmpdir(), 'gantry-rootfs-'))): string {
  for (const d of ['bin', 'etc', 'tmp', 'root']) mkdirSync(path.join(dir, d), { recursive: true });
  copyFileSync(BUSYBOX, path.join(dir, 'bin', 'busybox'));
  chmodSync(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'ls', 'id', 'env']) symlinkSync('busybox', path.join(dir, 'bin', applet));
  writeFileSync(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n');
  writeFileSync(path.join(dir, 'etc', 'group'), 'root:x:0:\nnogroup:x:65534:\n');
  chmodSync(path.join(dir, 'tmp'), 0o1777);
  return dir;
}

/** tar the directory's contents (names like ./bin/sh) with the given compression flag. */
export function tarDir(dir: string, out: string, compress: '' | 'z' | 'j' | 'J' = 'z'): string {
  execFileSync('tar', [`-c${compress}f`, out, '--numeric-owner', '--owner=0', '--group=0', '-C', dir, '.']);
  return out;
}
