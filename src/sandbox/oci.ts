/**
 * A RUN as an OCI container: a bundle (config.json from spec.ts, the rootfs as it is) run by
 * crun or runc (runtime.ts says which, and why), as BuildKit's runc executor does.
 *
 * The launcher chain, so that nothing of a RUN outlives gantry however gantry ends:
 *   setpriv --pdeathsig KILL → [nsenter --net] → unshare --pid --fork --kill-child --mount-proc → [sh: runtime.ts] → runtime run
 * The runtime is the first process of a PID namespace of its own; when gantry dies, setpriv's
 * signal kills unshare, unshare's kills the runtime, and the death of a namespace's first process
 * kills every process in it, the container's included. An abort kills the whole tree (kill.ts).
 *
 * The default network is a namespace gantry makes once per process and wires to slirp4netns (a
 * user-mode TCP/IP stack in gantry's namespace) that refuses the host's loopback; every RUN joins
 * it (starting slirp4netns for each RUN cost 50 ms). A RUN reaches what the host reaches, but not
 * the host's 127.0.0.1 services or abstract unix sockets (those belong to a network namespace).
 * The RUNs that share it are the same gantry's, one after the other (a RUN that starts while
 * another runs, in a stage beside it, gets a namespace of its own, kept for the next), and a
 * RUN's processes end with it. `none` is a namespace of the runtime's with loopback only; `host` is gantry's.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { childProcess } from '../support/process.js';
import { makeCgroups, removeCgroups, sweepStaleCgroups, type DeviceRule } from './cgroups.js';
import { HOST_ENV, launch, type Launch } from './launch.js';
import { maskDir, runtimeCommand, type Runtime } from './runtime.js';
import { specJson } from './spec.js';

const SLIRP = ['/usr/bin/slirp4netns', '/usr/local/bin/slirp4netns'];
const UNSHARE = '/usr/bin/unshare';
const NSENTER = '/usr/bin/nsenter';
const SETPRIV = '/usr/bin/setpriv';
const HOST_SH = '/bin/sh';
const IP = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'];
const SLEEP = ['/usr/bin/sleep', '/bin/sleep'];

const findSlirp = (): string | undefined => SLIRP.find((p) => existsSync(p));

export interface OciLaunch {
  runtime: Runtime;
  /** A private directory (mode 0700) for the bundle and the runtime's state; removed by the caller. */
  workDir: string;
  config: Record<string, unknown>;
  /** A network namespace to run the runtime in (the user-mode network's), for a spec that inherits it. */
  netns?: string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  attach?: Launch['attach'];
  signal?: AbortSignal;
}

let sequence = 0;

/** Run the container; its exit code (128 + n when a signal ended it). */
export async function runOci(run: OciLaunch): Promise<number> {
  const runtime = run.runtime;
  sweepStaleCgroups();
  const id = `gantry-${process.pid}-${Date.now().toString(36)}-${++sequence}`;
  const bundle = path.join(run.workDir, 'bundle');
  const state = path.join(run.workDir, 'state');
  const log = path.join(run.workDir, 'runtime.log');
  await mkdir(bundle, { mode: 0o700 });
  // config.json holds the RUN's environment (secrets of `--mount=type=secret,env=` among it): only root reads it.
  await writeFile(path.join(bundle, 'config.json'), specJson(run.config), { mode: 0o600 });
  const failed = path.join(run.workDir, 'launcher-failed');
  try {
    if (runtime.kind === 'crun') await mkdir(maskDir(run.workDir), { mode: 0o700 });
    const cgroups = runtime.launcher?.cgroups ? await makeCgroups(id, deviceRules(run.config)) : [];
    const command = runtimeCommand(runtime, { workDir: run.workDir, state, log, bundle, id, cgroups, failed });
    // The runtime must see a /proc of its own PID namespace (it reads its child's there), so the
    // launcher mounts one; a namespace to join is entered first, while the host's /proc still names it.
    const launcher = ['--pid', '--fork', '--kill-child', '--mount-proc', '--'];
    if (run.netns) launcher.unshift(`--net=${run.netns}`, '--', UNSHARE);
    const code = await launch({
      argv: [run.netns ? NSENTER : UNSHARE, ...launcher, ...command],
      env: HOST_ENV,
      ...(run.onStdout ? { onStdout: run.onStdout } : {}),
      ...(run.onStderr ? { onStderr: run.onStderr } : {}),
      ...(run.attach ? { attach: run.attach } : {}),
      ...(run.signal ? { signal: run.signal } : {}),
    });
    if (code !== 0) {
      const before = await readFile(failed, 'utf8').catch(() => undefined);
      if (before !== undefined) throw new SandboxError('SANDBOX_RUNTIME', `the RUN's container could not be prepared: ${before.trim()}`);
      const failure = await runtimeFailure(log);
      if (failure) throw new SandboxError('SANDBOX_RUNTIME', `${runtime.kind} could not start the RUN: ${failure}`);
    }
    return code;
  } finally {
    removeCgroups(id);
  }
}

/** The device rules of a spec (linux.resources.devices). */
function deviceRules(config: Record<string, unknown>): DeviceRule[] {
  const linux = config.linux as { resources?: { devices?: DeviceRule[] } } | undefined;
  return linux?.resources?.devices ?? [];
}

interface UserNetwork {
  /** The namespace RUNs join. */
  path: string;
}

/** User-mode networks no RUN is in, for the next RUN to take. */
const idleNetworks: UserNetwork[] = [];
/** One being started ahead (prewarmUserNetwork) that no RUN has taken yet. */
let ahead: Promise<UserNetwork> | undefined;
/** What stops every network this process started, when it exits. */
const stops = new Set<() => void>();

/**
 * A user-mode network started ahead, for the first RUN to take, unless one is idle already. A
 * user-mode network is a network namespace held by a sleeping process, with loopback up, wired to
 * slirp4netns; both processes end with gantry (their parent-death signal, and an exit hook).
 */
export function prewarmUserNetwork(): Promise<void> {
  if (idleNetworks.length > 0) return Promise.resolve();
  if (!ahead) {
    const started = startUserNetwork();
    ahead = started;
    // A failure is the RUN's to tell (it takes this start); a later prewarm tries again.
    started.catch(() => {
      if (ahead === started) ahead = undefined;
    });
  }
  return ahead.then(() => undefined);
}

/**
 * A user-mode network for one RUN, given back with `release` when the RUN is over: the one a
 * RUN before it used, else the one started ahead, else a new one (a RUN beside another, in a
 * stage running at the same time, gets a namespace, and a loopback, of its own).
 */
export async function takeUserNetwork(): Promise<{ path: string; release: () => void }> {
  let net = idleNetworks.pop();
  if (!net) {
    const started = ahead ?? startUserNetwork();
    ahead = undefined;
    net = await started;
  }
  const taken = net;
  return { path: taken.path, release: () => void idleNetworks.push(taken) };
}

async function startUserNetwork(): Promise<UserNetwork> {
  const slirp = findSlirp();
  if (!slirp) throw new SandboxError('SANDBOX_MISSING', 'RUN needs slirp4netns for its network (apt-get install slirp4netns), or use RUN --network=none');
  const ip = IP.find((p) => existsSync(p));
  if (!ip) throw new SandboxError('SANDBOX_MISSING', 'RUN needs ip from iproute2 for its network (apt-get install iproute2)');
  const sleep = SLEEP.find((p) => existsSync(p));
  if (!sleep) throw new SandboxError('SANDBOX_MISSING', 'RUN needs sleep from coreutils for its network');
  const cp = childProcess();
  const holder = cp.spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', UNSHARE, '--net', '--', HOST_SH, '-c', `${ip} link set lo up && echo ready && exec ${sleep} infinity`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  let holderErr = '';
  holder.stderr.on('data', (d: Buffer) => (holderErr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve());
    holder.once('error', (err) => reject(new SandboxError('SANDBOX_NETWORK', `cannot make the RUN network namespace: ${err.message}`)));
    holder.once('exit', (code) => reject(new SandboxError('SANDBOX_NETWORK', `cannot make the RUN network namespace: ${holderErr.trim() || `exit code ${code}`}`)));
  });
  const pid = holder.pid as number;
  // slirp4netns's sandbox makes only "/" private before it detaches the old root: a shared
  // mount of the host below a directory that is not a mount point itself (`ip netns add`'s
  // /run/netns/NAME where /run is no mount, any `mount --make-shared` tree) was unmounted on the
  // host too. It starts in a mount namespace of its own, private all the way down.
  const network = cp.spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', UNSHARE, '--mount', '--propagation', 'private', '--', slirp, '--configure', '--mtu=65520', '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp', '--ready-fd=3', String(pid), 'eth0'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    env: {},
  });
  let slirpErr = '';
  network.stderr?.on('data', (d: Buffer) => (slirpErr += d.toString()));
  const stop = (): void => {
    for (const p of [network, holder]) {
      try {
        p.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  };
  try {
    await new Promise<void>((resolve, reject) => {
      (network.stdio[3] as NodeJS.ReadableStream).once('data', () => resolve());
      network.once('error', (err) => reject(new SandboxError('SANDBOX_NETWORK', `cannot start slirp4netns: ${err.message}`)));
      network.once('exit', (code) => reject(new SandboxError('SANDBOX_NETWORK', `slirp4netns failed: ${slirpErr.trim() || `exit code ${code}`}`)));
    });
  } catch (err) {
    stop();
    throw err;
  }
  // Neither keeps gantry alive; both go when it exits.
  for (const p of [holder, network]) {
    p.unref();
    for (const s of p.stdio) (s as { unref?: () => void } | null)?.unref?.();
  }
  if (stops.size === 0) process.once('exit', () => stops.forEach((f) => f()));
  stops.add(stop);
  return { path: `/proc/${pid}/ns/net` };
}

/** The runtime's own error (from its log), as opposed to the command's exit code. */
async function runtimeFailure(log: string): Promise<string | undefined> {
  const text = await readFile(log, 'utf8').catch(() => '');
  let found: string | undefined;
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const e = JSON.parse(line) as { level?: string; msg?: string };
      if (e.level === 'error' || e.level === 'fatal') found = e.msg;
    } catch {
      if (/error/i.test(line)) found = line;
    }
  }
  return found;
}
