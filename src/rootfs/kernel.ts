/**
 * The system calls Node has no binding for (mount, umount2, lgetxattr), made by one small
 * helper process that stays for the life of the gantry process.
 *
 * Why: each executed step unmounts its overlay, mounts the next one and reads the capabilities
 * of the files it added. Done with util-linux's mount and umount and attr's getfattr, that is
 * three process starts per step, and Node starts a process by forking itself (9 ms for a 45 MB
 * Node, over 20 ms once a build's Node holds 100 MB), where the calls themselves take under a
 * millisecond. The helper is Perl's `syscall` (perl-base is Essential in Debian, so it is
 * wherever Debian is): it reads requests on its standard input and answers each on a line.
 *
 * Where it cannot run (no perl, an architecture whose call numbers are not listed here,
 * `GANTRY_KERNEL_HELPER=0`), `kernel()` is undefined and callers start the tools as before.
 * The helper ends with gantry (its standard input closes), and never keeps a program that
 * called gantry's API alive while it has nothing to do.
 */
import { existsSync } from 'node:fs';
import type { ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { childProcess } from '../support/process.js';
import { settings } from '../support/settings.js';

/** The call numbers of mount, umount2 and lgetxattr, per Node's name for the architecture. */
const CALLS: Partial<Record<string, [number, number, number]>> = {
  x64: [165, 166, 192],
  arm64: [40, 39, 9],
};

const PERL = ['/usr/bin/perl', '/bin/perl'];

/** umount2's flag: detach now, free when no longer busy. */
export const MNT_DETACH = 2;

/**
 * A request is NUL-terminated fields: id, operation, argument count, arguments. The answer is
 * the line `id 0 [results]` or `id errno message`. `getxattr NAME PATH...` answers with
 * `index:hex` for each path that has the attribute (an attribute is at most 64 KiB);
 * `getxattrtree NAME DIR` walks DIR (following no symbolic link) and answers `path:hex` with
 * each path relative to DIR, in hex.
 */
const SCRIPT = String.raw`
use strict;
my ($MOUNT, $UMOUNT2, $LGETXATTR) = map { $_ + 0 } @ARGV;
$/ = "\0";
$| = 1;
sub field { my $f = <STDIN>; exit 0 unless defined $f; chomp $f; return $f; }
sub fail { my ($id) = @_; print "$id ", ($! + 0), " $!\n"; }
while (1) {
  my $id = field();
  my $op = field();
  my $n = field();
  my @a = map { field() } 1 .. $n;
  if ($op eq 'mount') {
    my ($cwd, $source, $target, $type, $data) = @a;
    if (!chdir($cwd)) { fail($id); next; }
    if (syscall($MOUNT, $source, $target, $type, 0, $data) == 0) { print "$id 0\n"; } else { fail($id); }
    chdir('/');
  } elsif ($op eq 'umount') {
    my ($target, $flags) = @a;
    if (syscall($UMOUNT2, $target, $flags + 0) == 0) { print "$id 0\n"; } else { fail($id); }
  } elsif ($op eq 'getxattr') {
    my $name = shift @a;
    my @found;
    for my $i (0 .. $#a) {
      my $buf = "\0" x 256;
      my $r = syscall($LGETXATTR, $a[$i], $name, $buf, 256);
      if ($r < 0 && $! + 0 == 34) { $buf = "\0" x 65536; $r = syscall($LGETXATTR, $a[$i], $name, $buf, 65536); }
      push @found, "$i:" . unpack('H*', substr($buf, 0, $r)) if $r >= 0;
    }
    print join(' ', "$id 0", @found), "\n";
  } elsif ($op eq 'getxattrtree') {
    my ($name, $root) = @a;
    my @found;
    my @dirs = ('');
    while (@dirs) {
      my $rel = pop @dirs;
      opendir(my $dh, $rel eq '' ? $root : "$root/$rel") or next;
      my @names = grep { $_ ne '.' && $_ ne '..' } readdir($dh);
      closedir($dh);
      for my $n (@names) {
        my $r = $rel eq '' ? $n : "$rel/$n";
        my $p = "$root/$r";
        my $buf = "\0" x 256;
        my $len = syscall($LGETXATTR, $p, $name, $buf, 256);
        if ($len < 0 && $! + 0 == 34) { $buf = "\0" x 65536; $len = syscall($LGETXATTR, $p, $name, $buf, 65536); }
        push @found, unpack('H*', $r) . ':' . unpack('H*', substr($buf, 0, $len)) if $len >= 0;
        push @dirs, $r if lstat($p) && -d _;
      }
    }
    print join(' ', "$id 0", @found), "\n";
  } else {
    print "$id 22 unknown operation\n";
  }
}
`;

/**
 * A call the kernel refused: `errno` is its error number. Any other error of a call (the
 * helper ended, could not start) says nothing of the call itself: callers then start the tool.
 */
export class KernelCallError extends Error {
  constructor(
    message: string,
    readonly errno: number,
  ) {
    super(message);
  }
}

interface Pending {
  what: string;
  resolve: (rest: string) => void;
  reject: (err: Error) => void;
}

class Helper {
  private readonly pending = new Map<number, Pending>();
  private next = 0;
  private buffered = '';
  private answered = false;
  dead = false;

  constructor(private readonly child: ChildProcessByStdio<Writable, Readable, null>) {
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (d: string) => this.onData(d));
    // One that cannot start, or ends before its first answer, is not tried again.
    child.on('close', () => {
      if (!this.answered) unavailable = true;
      this.fail(new Error('the kernel helper (perl) ended'));
    });
    child.on('error', (err) => {
      unavailable = true;
      this.fail(err);
    });
    child.stdin.on('error', () => undefined); // its end shows as 'close'
    this.idle();
  }

  call(what: string, op: string, args: readonly string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      if (this.dead) {
        reject(new Error('the kernel helper (perl) ended'));
        return;
      }
      if (args.some((a) => a.includes('\0'))) {
        reject(new KernelCallError(`${what}: a path holds a NUL byte`, 22));
        return;
      }
      const id = this.next++;
      calls++;
      if (this.pending.size === 0) this.busy();
      this.pending.set(id, { what, resolve, reject });
      this.child.stdin.write([String(id), op, String(args.length), ...args].join('\0') + '\0', 'utf8');
    });
  }

  private onData(d: string): void {
    this.buffered += d;
    let nl: number;
    while ((nl = this.buffered.indexOf('\n')) >= 0) {
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      const m = /^(\d+) (\d+) ?(.*)$/s.exec(line);
      const p = m ? this.pending.get(Number(m[1])) : undefined;
      if (!m || !p) continue;
      this.answered = true;
      this.pending.delete(Number(m[1]));
      if (this.pending.size === 0) this.idle();
      const errno = Number(m[2]);
      if (errno === 0) p.resolve(m[3] as string);
      else p.reject(new KernelCallError(`${p.what}: ${m[3] || `errno ${errno}`}`, errno));
    }
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  /** While calls are pending the helper keeps the event loop alive like any child process; idle, it does not. */
  private busy(): void {
    this.child.ref();
    (this.child.stdout as unknown as { ref(): void }).ref();
  }

  private idle(): void {
    this.child.unref();
    (this.child.stdout as unknown as { unref(): void }).unref();
    (this.child.stdin as unknown as { unref(): void }).unref();
  }
}

let helper: Helper | undefined;
let unavailable = false;
let calls = 0;

/** How many calls this process has made through the helper (for the tests that count them). */
export const kernelCalls = (): number => calls;

function started(): Helper | undefined {
  if (helper && !helper.dead) return helper;
  if (unavailable || !settings.kernelHelper) return undefined;
  const numbers = CALLS[process.arch];
  const perl = PERL.find((p) => existsSync(p));
  if (!numbers || !perl) {
    unavailable = true;
    return undefined;
  }
  const child = childProcess().spawn(perl, ['-e', SCRIPT, ...numbers.map(String)], { stdio: ['pipe', 'pipe', 'ignore'], env: {}, cwd: '/' });
  helper = new Helper(child);
  return helper;
}

/** The helper's calls; undefined where it cannot run (the caller starts mount, umount or getfattr instead). */
export interface Kernel {
  /** mount(2) with no flags; relative paths in `data` and `source` are resolved in `cwd`. */
  mount(source: string, target: string, fstype: string, data: string, cwd?: string): Promise<void>;
  umount(target: string, flags?: number): Promise<void>;
  /** lgetxattr(2) of `name` on each of `paths` (never following a last symlink): index in `paths` → value, for those that have it. */
  getxattr(name: string, paths: readonly string[]): Promise<Map<number, Buffer>>;
  /** lgetxattr(2) of `name` on everything under `dir` (no symbolic link followed): relative path → value, for those that have it. */
  getxattrTree(name: string, dir: string): Promise<Map<string, Buffer>>;
}

/** The `key:hex` items of an xattr answer: key, value. */
function* valuesOf(answer: string): Generator<[string, Buffer]> {
  for (const item of answer.split(' ')) {
    const colon = item.indexOf(':');
    if (colon > 0) yield [item.slice(0, colon), Buffer.from(item.slice(colon + 1), 'hex')];
  }
}

export const isKernelRefusal = (err: unknown): err is KernelCallError => err instanceof KernelCallError;

export function kernel(): Kernel | undefined {
  const h = started();
  if (!h) return undefined;
  return {
    mount: async (source, target, fstype, data, cwd = '/') => {
      await h.call(`mount of ${fstype} at ${target}`, 'mount', [cwd, source, target, fstype, data]);
    },
    umount: async (target, flags = 0) => {
      await h.call(`unmount of ${target}`, 'umount', [target, String(flags)]);
    },
    getxattr: async (name, paths) => {
      const out = new Map<number, Buffer>();
      // A request per 10,000 paths: an answer line stays a few hundred KiB.
      for (let i = 0; i < paths.length; i += 10_000) {
        const batch = paths.slice(i, i + 10_000);
        for (const [index, value] of valuesOf(await h.call(`reading ${name}`, 'getxattr', [name, ...batch]))) out.set(i + Number(index), value);
      }
      return out;
    },
    getxattrTree: async (name, dir) => {
      const out = new Map<string, Buffer>();
      for (const [rel, value] of valuesOf(await h.call(`reading ${name} under ${dir}`, 'getxattrtree', [name, dir]))) out.set(Buffer.from(rel, 'hex').toString('utf8'), value);
      return out;
    },
  };
}
