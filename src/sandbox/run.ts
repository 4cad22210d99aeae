/**
 * Run a command inside a root filesystem directory.
 *
 * - `bwrap` (bubblewrap): the rootfs bind-mounted as `/`, a fresh `/proc`, a minimal
 *   `/dev`, new pid/ipc/uts (and net, for `--network=none`) namespaces, the environment
 *   cleared and set, the process killed with its parent.
 * - `chroot`: `unshare` for the namespaces and coreutils `chroot --userspec` for the user,
 *   as root. Used for non-root USERs (bwrap can only change the uid inside a user
 *   namespace, which would make files the command creates belong to the wrong owner) and
 *   where bwrap is missing.
 *
 * The host's resolv.conf, hosts and hostname are bind-mounted read-only over files that
 * are created for the run and removed after it, so they never enter a layer. Only stdin,
 * stdout and stderr reach the process.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { childProcess, crashPoint, SandboxError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';

export type Isolation = 'auto' | 'bwrap' | 'chroot';

export type SandboxMount =
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'tmpfs'; target: string; size?: number };

export interface RunSpec {
  rootfs: string;
  /** Extra mounts (RUN --mount), targets absolute inside the rootfs; directories made for them stay, as in BuildKit. */
  mounts?: SandboxMount[];
  argv: string[];
  env: string[];
  /** Working directory inside the rootfs (created when missing). */
  cwd: string;
  /** Numeric user and group to run as. */
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups?: number[];
  network?: 'default' | 'none' | 'host';
  isolation?: Isolation;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface RunResult {
  exitCode: number;
  /** The sandbox that ran the command. */
  isolation: 'bwrap' | 'chroot';
}

const HOST_FILES = ['/etc/resolv.conf', '/etc/hosts', '/etc/hostname'];
const BWRAP = ['/usr/bin/bwrap', '/bin/bwrap'];

export function findBwrap(): string | undefined {
  return BWRAP.find((p) => existsSync(p));
}

/** Files and directories the sandbox mounts over; the snapshot must not look at them. */
export const SANDBOX_PATHS: ReadonlySet<string> = new Set(['proc', 'dev', 'sys', 'etc/resolv.conf', 'etc/hosts', 'etc/hostname']);

/** Create what the mounts need inside the rootfs; returns what was created, to remove after the run. */
async function prepareMountPoints(rootfs: string, wantHostFiles: string[]): Promise<string[]> {
  const created: string[] = [];
  for (const dir of ['proc', 'dev']) {
    const p = path.join(rootfs, dir);
    if (!(await lstat(p).catch(() => undefined))) {
      await mkdir(p, { mode: 0o755 });
      created.push(p);
    }
  }
  for (const f of wantHostFiles) {
    const target = path.join(rootfs, f);
    const st = await lstat(target).catch(() => undefined);
    if (st && !st.isFile()) continue; // a symlink or something else: leave it alone, do not mount over it
    if (!st) {
      const dir = path.dirname(target);
      const dst = await lstat(dir).catch(() => undefined);
      if (!dst) {
        await mkdir(dir, { recursive: true, mode: 0o755 });
        created.push(dir);
      } else if (!dst.isDirectory()) continue;
      await writeFile(target, '', { flag: 'wx', mode: 0o644 });
      created.push(target);
    }
  }
  return created;
}

/**
 * Make the mount point of an extra mount (a directory, or a file for a file bind). As in
 * BuildKit, directories made for a mount target stay in the rootfs (and so in the layer: runc
 * leaves them and BuildKit keeps them); an empty file made for a file bind is removed again.
 * Returns what to remove after the run.
 */
async function prepareTarget(rootfs: string, m: SandboxMount): Promise<string[]> {
  const parts = m.target.split('/').filter((p) => p && p !== '.');
  if (parts.includes('..')) throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} climbs out of the root`);
  let cur = rootfs;
  const fileTarget = m.type === 'bind' && (await lstat(m.source)).isFile();
  for (const [i, part] of parts.entries()) {
    cur = path.join(cur, part);
    const st = await lstat(cur).catch(() => undefined);
    if (st?.isSymbolicLink()) throw new SandboxError('SANDBOX_MOUNT', `mount target ${m.target} goes through a symbolic link`);
    if (st) continue;
    if (i === parts.length - 1 && fileTarget) {
      await writeFile(cur, '', { flag: 'wx' });
      return [cur];
    }
    await mkdir(cur);
    await chmod(cur, 0o755); // whatever the umask: runc makes them 0755
  }
  return [];
}

/**
 * Descriptors above stderr that this process inherited without close-on-exec (Node opens
 * its own with it): they would pass through bwrap or unshare into the command.
 */
export function inheritedFds(): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const n of names) {
    const fd = Number(n);
    if (!(fd > 2)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (Number.parseInt(flags, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      // closed in between (the directory listing's own descriptor): nothing to pass on
    }
  }
  return out.sort((a, b) => a - b);
}

const O_CLOEXEC = 0o2000000;
const HOST_BASH = ['/usr/bin/bash', '/bin/bash'];
const SETPRIV = '/usr/bin/setpriv';

function spawnAndWait(cmd: string, args: string[], spec: RunSpec, env: NodeJS.ProcessEnv): Promise<number> {
  // Node cannot close a descriptor in the child only, so the host's bash (never the rootfs's)
  // closes the inherited ones and then becomes the sandbox launcher.
  const leaked = inheritedFds();
  const bash = HOST_BASH.find((b) => existsSync(b));
  if (leaked.length > 0 && bash) {
    args = ['-c', `exec "$@" ${leaked.map((fd) => `${fd}>&-`).join(' ')}`, 'gantry-sandbox', cmd, ...args];
    cmd = bash;
  }
  // The launcher dies with gantry, however gantry ends (bwrap's --die-with-parent and
  // unshare's --kill-child then take the command down with it): a killed build leaves no
  // RUN behind writing into its rootfs.
  if (existsSync(SETPRIV)) {
    args = ['--pdeathsig', 'KILL', '--', cmd, ...args];
    cmd = SETPRIV;
  }
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, detached: false });
    let started = false;
    const output = (d: Buffer, to: ((d: Buffer) => void) | undefined): void => {
      to?.(d);
      if (!started) crashPoint('run-started');
      started = true;
    };
    child.stdout.on('data', (d: Buffer) => output(d, spec.onStdout));
    child.stderr.on('data', (d: Buffer) => output(d, spec.onStderr));
    const abort = () => {
      if (child.pid !== undefined) killTree(child.pid);
    };
    spec.signal?.addEventListener('abort', abort, { once: true });
    if (spec.signal?.aborted) abort(); // aborted before the listener was there: no event comes
    child.on('error', (err) => reject(new SandboxError('SANDBOX_SPAWN', `cannot start ${cmd}: ${err.message}`, { cause: err })));
    child.on('close', (code, sig) => {
      spec.signal?.removeEventListener('abort', abort);
      if (spec.signal?.aborted) reject(new SandboxError('SANDBOX_ABORTED', 'the build was aborted'));
      else resolve(code ?? 128 + (sig ? 9 : 0));
    });
  });
}

/**
 * Kill a launcher and every process below it. Killing the launcher alone can miss the
 * command: bwrap (or unshare) forks the sandbox's first process, which arms its parent-death
 * signal a moment later; a launcher killed in between leaves that process, and the RUN, to
 * run on. So the launcher is stopped first (a stopped process forks nothing more), its
 * descendants are found through /proc and killed (the first process of the sandbox's PID
 * namespace among them: its death takes every process of the namespace down), then the
 * launcher itself.
 */
export function killTree(pid: number): void {
  const signal = (p: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(p, sig);
    } catch {
      // already gone
    }
  };
  signal(pid, 'SIGSTOP');
  // kill() returns once the signal is queued; on another CPU the launcher may still be
  // forking. Its children are counted only when it has really stopped (or is gone).
  for (const until = Date.now() + 1000; Date.now() < until && !stoppedOrGone(pid); );
  for (const p of descendants(pid)) signal(p, 'SIGKILL');
  signal(pid, 'SIGKILL');
}

/**
 * The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or undefined when
 * the process is gone. The name may hold spaces and parentheses, so they start after the last ')'.
 */
function procStat(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process is stopped (T), traced (t) or dead (Z, X), or it is gone. */
function stoppedOrGone(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state === undefined || /^[TtZX]$/.test(state);
}

/** Every process below `pid`, from the parent pids in /proc/<pid>/stat. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const fields = procStat(n);
    if (!fields) continue; // gone meanwhile
    const ppid = Number(fields[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(n));
    else children.set(ppid, [Number(n)]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

export async function runInSandbox(spec: RunSpec): Promise<RunResult> {
  const wanted = spec.isolation ?? 'auto';
  const bwrap = findBwrap();
  let mode: 'bwrap' | 'chroot';
  const nonRoot = spec.uid !== 0 || spec.gid !== 0;
  if (wanted === 'bwrap') {
    if (!bwrap) throw new SandboxError('SANDBOX_MISSING', 'bubblewrap (bwrap) is not installed; use --isolation chroot as root');
    // bwrap changes users only inside a user namespace, where what the command writes would
    // belong to the caller: a non-root USER step runs in the chroot sandbox instead.
    mode = nonRoot ? 'chroot' : 'bwrap';
  } else if (wanted === 'chroot') mode = 'chroot';
  else mode = bwrap && !nonRoot ? 'bwrap' : 'chroot';
  if (mode === 'chroot' && process.getuid?.() !== 0) {
    throw new SandboxError('SANDBOX_PRIVILEGE', 'the chroot sandbox needs root (bubblewrap runs as root only for USER root)');
  }
  const hostFiles = HOST_FILES.filter((f) => existsSync(f));
  const created = await prepareMountPoints(spec.rootfs, hostFiles.map((f) => f.slice(1)));
  for (const m of spec.mounts ?? []) created.push(...(await prepareTarget(spec.rootfs, m)));
  const cwd = path.posix.resolve('/', spec.cwd || '/');
  await makeWorkdir(spec.rootfs, cwd);
  try {
    const exitCode = mode === 'bwrap' ? await runBwrap(bwrap as string, spec, cwd, hostFiles) : await runChroot(spec, cwd, hostFiles);
    return { exitCode, isolation: mode };
  } finally {
    for (const p of created.reverse()) await rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function runBwrap(bwrap: string, spec: RunSpec, cwd: string, hostFiles: string[]): Promise<number> {
  const args = [
    '--bind', spec.rootfs, '/',
    '--proc', '/proc',
    '--dev', '/dev',
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    ...(spec.network === 'none' ? ['--unshare-net'] : []),
    '--die-with-parent', '--new-session',
    '--hostname', 'gantry',
    '--clearenv',
  ];
  for (const f of hostFiles) args.push('--ro-bind', f, f);
  for (const m of spec.mounts ?? []) {
    if (m.type === 'tmpfs') args.push(...(m.size ? ['--size', String(m.size)] : []), '--tmpfs', m.target);
    else args.push(m.readOnly ? '--ro-bind' : '--bind', m.source, m.target);
  }
  for (const kv of spec.env) {
    const eq = kv.indexOf('=');
    args.push('--setenv', eq < 0 ? kv : kv.slice(0, eq), eq < 0 ? '' : kv.slice(eq + 1));
  }
  args.push('--chdir', cwd, '--', ...spec.argv);
  return spawnAndWait(bwrap, args, spec, {});
}

/**
 * Make the working directory when it is missing, resolved inside the rootfs: a link in the
 * image (`/work -> /home/someone`) must lead to the rootfs's /home/someone, never the host's.
 */
async function makeWorkdir(rootfs: string, cwd: string): Promise<void> {
  const resolved = await resolveInRoot(rootfs, cwd).catch(() => undefined);
  if (resolved) await mkdir(resolved.host, { recursive: true }).catch(() => undefined);
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function runChroot(spec: RunSpec, cwd: string, hostFiles: string[]): Promise<number> {
  const root = spec.rootfs;
  const q = (p: string) => shellQuote(path.join(root, p));
  // Runs in the new mount namespace with the host's tools (absolute paths), then enters the
  // root with util-linux unshare (chroot, chdir, setgid, setuid, exec with the image's PATH).
  const setup = [
    'set -e',
    '/usr/bin/mount --make-rprivate /',
    `/usr/bin/mount -t proc proc ${q('proc')}`,
    `/usr/bin/mount -t tmpfs -o mode=755,nosuid dev ${q('dev')}`,
    ...['null', 'zero', 'full', 'random', 'urandom', 'tty'].map((d) => `/usr/bin/touch ${q(`dev/${d}`)} && /usr/bin/mount --bind /dev/${d} ${q(`dev/${d}`)}`),
    `/usr/bin/ln -s /proc/self/fd ${q('dev/fd')}`,
    ...hostFiles.map((f) => `if [ -f ${q(f)} ] && [ ! -L ${q(f)} ]; then /usr/bin/mount --bind -o ro ${f} ${q(f)}; fi`),
    ...(spec.mounts ?? []).map((m) =>
      m.type === 'tmpfs'
        ? `/usr/bin/mount -t tmpfs${m.size ? ` -o size=${m.size}` : ''} tmpfs ${q(m.target.slice(1))}`
        : `/usr/bin/mount --bind ${shellQuote(m.source)} ${q(m.target.slice(1))}${m.readOnly ? ` && /usr/bin/mount -o remount,bind,ro ${q(m.target.slice(1))}` : ''}`,
    ),
    `exec /usr/bin/unshare --root=${shellQuote(root)} --wd=${shellQuote(cwd)} --setgid ${spec.gid} --setuid ${spec.uid} -- "$@"`,
  ].join('\n');
  const args = ['--mount', '--pid', '--fork', '--ipc', '--uts', ...(spec.network === 'none' ? ['--net'] : []), '--kill-child', '/bin/sh', '-c', setup, 'gantry-sandbox', ...spec.argv];
  const env: NodeJS.ProcessEnv = {};
  for (const kv of spec.env) {
    const eq = kv.indexOf('=');
    env[eq < 0 ? kv : kv.slice(0, eq)] = eq < 0 ? '' : kv.slice(eq + 1);
  }
  return spawnAndWait('/usr/bin/unshare', args, spec, env);
}
