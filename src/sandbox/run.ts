/**
 * Run a command inside a root filesystem directory, as a RUN step.
 *
 * Two isolations:
 * - `oci`: an OCI container (oci.ts, spec.ts): its own mount, PID, IPC, UTS and network
 *   namespaces, Docker's default capabilities, a seccomp filter, masked and read-only /proc
 *   paths, the default devices only (device cgroup), read-only binds the RUN cannot remount.
 * - `chroot`: for where no namespace can be made (an unprivileged container, kaniko's case):
 *   chroot(2) as root with the capability bounding set cut to Docker's default; no mounts at
 *   all (resolv.conf and hosts are copied in and removed after, the default devices made with
 *   mknod). Weaker: the RUN shares the container's processes, network and /proc-less view.
 *
 * `auto` picks the strongest that works here (probed once per process).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { childProcess, trace } from '../support/process.js';
import { runChroot } from './chroot.js';
import { ensureSystemDirs, makeWorkdir, prepareEtcPoints, prepareTarget, removeStubs, writePipes } from './prepare.js';
import { attachWith } from './launch.js';
import { prewarmUserNetwork, runOci, takeUserNetwork } from './oci.js';
import { compiledSeccomp, findRuntime, maskNull, requireRuntime } from './runtime.js';
import { readSeccompProfile, translateSeccomp, type SeccompProfile } from './seccomp.js';
import { DEFAULT_CAPABILITIES, hostsFile, resolvConf, runtimeSpec, type SpecMount } from './spec.js';
import type { Isolation, ProgramPlace, RunResult, RunSpec } from './types.js';

export type { Isolation, ProgramPlace, RunResult, RunSpec, SandboxMount } from './types.js';

/** BuildKit's hostname for a RUN, so scripts that read it see the same. */
export const SANDBOX_HOSTNAME = 'buildkitsandbox';

/** The nameserver of slirp4netns's network (it forwards to the host's resolver). */
const USER_NETWORK_DNS = '10.0.2.3';
/** BuildKit's resolvers when the host has none a sandbox can reach. */
const FALLBACK_DNS = ['8.8.8.8', '8.8.4.4', '2001:4860:4860::8888', '2001:4860:4860::8844'];

const CAP_SYS_ADMIN = 21;

/** Whether this process holds a capability in its effective set (/proc/self/status). */
function hasCapability(bit: number): boolean {
  const hex = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSafe('/proc/self/status') ?? '')?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << BigInt(bit))) !== 0n;
}

let probed: Promise<{ mode: 'oci' | 'chroot'; reason: string }> | undefined;

/**
 * The isolation `auto` stands for here, and why: `oci` when this process is root, a runtime is
 * installed and namespaces can be made; else `chroot` as root (an unprivileged container).
 */
export function probeIsolation(): Promise<{ mode: 'oci' | 'chroot'; reason: string }> {
  return (probed ??= (async () => {
    if (process.getuid?.() !== 0) {
      throw new SandboxError(
        'SANDBOX_PRIVILEGE',
        'RUN needs root or the user namespace the gantry command enters for a non-root user (through /etc/subuid): from Node, run the API as root or build with the gantry command',
      );
    }
    if (!findRuntime()) return { mode: 'chroot', reason: 'no OCI runtime is installed (apt-get install crun)' };
    // Without CAP_SYS_ADMIN no namespace can be made (Docker and Kubernetes drop it, and their
    // seccomp profiles refuse unshare without it): no need to try.
    if (!hasCapability(CAP_SYS_ADMIN)) return { mode: 'chroot', reason: 'namespaces cannot be made here (no CAP_SYS_ADMIN: an unprivileged container?)' };
    const ok = await new Promise<boolean>((resolve) => {
      const p = childProcess().spawn('/usr/bin/unshare', ['--pid', '--fork', '--mount-proc', '--net', '--ipc', '--uts', '--', '/bin/true'], { stdio: 'ignore' });
      p.on('error', () => resolve(false));
      p.on('close', (code) => resolve(code === 0));
    });
    if (!ok) return { mode: 'chroot', reason: 'namespaces cannot be made here (an unprivileged container?)' };
    return { mode: 'oci', reason: 'namespaces and an OCI runtime are available' };
  })());
}

/**
 * Get ready for RUN while the build does other work (a base extracted, a context copied): the
 * isolation probed and, for the default network, the user-mode network started. Failures are
 * kept for the RUN that needs them.
 */
export function prewarmSandbox(options: { isolation?: Isolation; network?: 'default' | 'none' | 'host'; keepProgram?: (key: string) => ProgramPlace }): void {
  void (async () => {
    const mode = await chooseIsolation(options.isolation);
    if (mode !== 'oci') return;
    const runtime = findRuntime();
    const filter = runtime ? seccompFor(undefined) : undefined;
    await Promise.all([
      (options.network ?? 'default') === 'default' ? prewarmUserNetwork() : undefined,
      runtime && filter ? compiledSeccomp(runtime, filter, options.keepProgram) : undefined,
    ]);
  })().catch(() => undefined);
}

/** The isolation a run gets, from what was asked. */
export async function chooseIsolation(wanted: Isolation = 'auto'): Promise<'oci' | 'chroot'> {
  if (process.getuid?.() !== 0) return (await probeIsolation()).mode; // throws the rootless error
  if (wanted === 'oci') {
    requireRuntime();
    return 'oci';
  }
  if (wanted === 'chroot') return 'chroot';
  return (await probeIsolation()).mode;
}

export async function runInSandbox(spec: RunSpec): Promise<RunResult> {
  const mode = await chooseIsolation(spec.isolation);
  trace?.(`sandbox: ${mode} chosen${mode === 'oci' ? ` (${findRuntime()?.kind})` : ''}`);
  spec.signal?.throwIfAborted();
  const cwd = path.posix.resolve('/', spec.cwd || '/');
  const workDir = spec.workDir ?? (await mkdtemp(path.join(tmpdir(), 'gantry-run-')));
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  await chmod(workDir, 0o700);
  try {
    const etc = await etcFiles(spec, mode, workDir);
    const exitCode = mode === 'chroot' ? await runChroot({ ...spec, cwd, etc }) : await runContainer(spec, cwd, etc, workDir);
    return { exitCode, isolation: mode };
  } finally {
    await rm(workDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The oci isolation: mount points made in the rootfs, the runtime spec written, the runtime run; what was made for it removed after. */
async function runContainer(spec: RunSpec, cwd: string, etc: Map<string, string>, workDir: string): Promise<number> {
  const created: string[] = [];
  const stubs: string[] = [];
  /** The user-mode network this RUN took, given back when it is over. */
  let net: { path: string; release: () => void } | undefined;
  try {
    await ensureSystemDirs(spec.rootfs);
    const points = await prepareEtcPoints(spec.rootfs, [...etc.keys()]);
    created.push(...points.created);
    for (const m of spec.mounts ?? []) stubs.push(...(await prepareTarget(spec.rootfs, m)));
    await makeWorkdir(spec.rootfs, cwd);
    const mounts: SpecMount[] = [...points.made, ...points.existing].map((target) => ({
      destination: `/${target}`,
      type: 'bind',
      source: etc.get(target) as string,
      options: ['rbind', 'ro', 'nosuid', 'noexec', 'nodev'],
    }));
    if (spec.pipes?.length) mounts.push({ destination: '/dev/pipes', type: 'bind', source: await writePipes(spec.pipes, path.join(workDir, 'pipes')), options: ['rbind', 'ro', 'nosuid', 'nodev'] });
    for (const m of spec.mounts ?? []) {
      if (m.type === 'tmpfs') mounts.push({ destination: m.target, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', ...(m.size ? [`size=${m.size}`] : [])] });
      else mounts.push({ destination: m.target, type: 'bind', source: m.source, options: ['rbind', m.readOnly ? 'ro' : 'rw'] });
    }
    trace?.('sandbox: mount points ready');
    const network = spec.network ?? 'default';
    net = network === 'default' ? await takeUserNetwork() : undefined;
    trace?.('sandbox: network ready');
    const runtime = requireRuntime();
    const seccomp = seccompFor(spec.seccomp);
    const bpf = seccomp ? await orAbort(compiledSeccomp(runtime, seccomp, spec.keepProgram), spec.signal) : undefined;
    const config = runtimeSpec({
      rootfs: spec.rootfs,
      ...(spec.attach?.tty ? { terminal: true } : {}),
      argv: spec.argv,
      env: spec.env,
      cwd,
      uid: spec.uid,
      gid: spec.gid,
      groups: spec.groups ?? [spec.gid],
      hostname: spec.hostname ?? SANDBOX_HOSTNAME,
      mounts,
      network: network === 'none' ? 'new' : 'inherit',
      cgroupNamespace: existsSync('/sys/fs/cgroup/cgroup.subtree_control'),
      seccomp,
      ...(runtime.kind === 'crun' ? { pathMounts: { maskNull: maskNull(workDir), kindOf: hostPathKind } } : {}),
      ...(bpf ? { annotations: { 'run.oci.seccomp_bpf_data': bpf } } : {}),
      ...(spec.shmSize !== undefined ? { shmSize: spec.shmSize } : {}),
      ...(spec.ulimits?.length ? { ulimits: spec.ulimits } : {}),
    });
    trace?.('sandbox: spec made');
    return await runOci({
      runtime,
      workDir,
      config,
      ...(net ? { netns: net.path } : {}),
      ...(spec.onStdout ? { onStdout: spec.onStdout } : {}),
      ...(spec.onStderr ? { onStderr: spec.onStderr } : {}),
      // With -t the runtime makes the terminal (in the container's own /dev/pts) and relays it.
      ...(spec.attach ? { attach: attachWith(spec.attach, 'runtime') } : {}),
      ...(spec.signal ? { signal: spec.signal } : {}),
    });
  } finally {
    net?.release();
    await removeStubs(stubs);
    for (const p of created.reverse()) await rm(p, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** A promise, unless the RUN is aborted first (a filter being compiled for it, say). */
function orAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  let onAbort = (): void => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new SandboxError('SANDBOX_ABORTED', 'the build was aborted'));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

const pathKinds = new Map<string, 'dir' | 'file' | undefined>();

/** What a masked or read-only /proc or /sys path is here (the container's are the same kernel's), looked up once. */
function hostPathKind(p: string): 'dir' | 'file' | undefined {
  if (!pathKinds.has(p)) {
    let kind: 'dir' | 'file' | undefined;
    try {
      kind = statSync(p).isDirectory() ? 'dir' : 'file';
    } catch {
      kind = undefined;
    }
    pathKinds.set(p, kind);
  }
  return pathKinds.get(p);
}

const seccompCache = new Map<string, SeccompProfile>();

/** The filter of a RUN: read and translated once per profile and process. */
function seccompFor(choice: string | undefined): SeccompProfile | undefined {
  if (choice === 'unconfined') return undefined;
  const key = choice ?? '';
  let filter = seccompCache.get(key);
  if (!filter) {
    const { profile } = readSeccompProfile(choice ? [choice] : undefined);
    filter = translateSeccomp(profile, DEFAULT_CAPABILITIES);
    seccompCache.set(key, filter);
  }
  return filter;
}

/** /etc/hosts and /etc/resolv.conf of the run, written in its work directory: rootfs path → file. */
async function etcFiles(spec: RunSpec, mode: 'oci' | 'chroot', workDir: string): Promise<Map<string, string>> {
  const network = mode === 'chroot' ? 'host' : (spec.network ?? 'default');
  let hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  // systemd-resolved's stub on 127.0.0.53 is unreachable from another namespace: its upstreams are listed here.
  if (network !== 'host' && /^\s*nameserver\s+127\.0\.0\.53\s*$/m.test(hostResolv)) {
    hostResolv = readFileSafe('/run/systemd/resolve/resolv.conf') ?? hostResolv;
  }
  const resolv = network === 'host' ? hostResolv : resolvConf(hostResolv, network === 'default' ? [USER_NETWORK_DNS] : FALLBACK_DNS);
  const files = new Map<string, string>();
  const hosts = path.join(workDir, 'hosts');
  await writeFile(hosts, hostsFile(spec.hostname ?? SANDBOX_HOSTNAME, spec.extraHosts), { mode: 0o644 });
  files.set('etc/hosts', hosts);
  const resolvFile = path.join(workDir, 'resolv.conf');
  await writeFile(resolvFile, resolv, { mode: 0o644 });
  files.set('etc/resolv.conf', resolvFile);
  return files;
}

function readFileSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
