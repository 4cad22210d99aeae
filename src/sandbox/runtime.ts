/**
 * The OCI runtime that runs a RUN, and what it needs around it on this host.
 *
 * crun first, runc where crun cannot serve. A RUN's start is most of its cost (a one-line RUN is
 * about 135 ms under runc, of which runc is 96): crun starts a container in 40 ms here, because
 * it is C and because it loads a seccomp filter gantry compiled once (`run.oci.seccomp_bpf_data`)
 * where runc compiles Docker's profile, for three architectures, at every start.
 *
 * Debian 12's crun (1.8) manages no cgroups on a host whose cgroups are mixed (v1 controllers and
 * a v2 hierarchy, as on the machines gantry is tested on), and refuses to run at all there. So on
 * a v1 or mixed host crun runs with `--cgroup-manager=disabled` and gantry does the one cgroup
 * job a RUN needs, the device rules of the spec (open only the default devices; mknod is
 * allowed, as Docker allows it): a devices cgroup under gantry's own, which the launcher enters
 * before it starts crun, so the RUN's processes stay in gantry's other cgroups (its memory and
 * CPU limits hold for them). The launcher also covers the v2 hierarchy of a mixed host with an
 * empty tmpfs in its own mount namespace, so that crun sees v1 only. In a user namespace (a
 * rootless build) no cgroup is written at all, as runc does rootless: there a RUN cannot make a
 * device node at all. On a v2-only host, runc keeps the job: it places the container under
 * gantry's own cgroup, where crun 1.8 would place it at the root of the hierarchy, outside the
 * limits gantry runs under (and its way down to gantry's cgroup, enabling controllers in a
 * cgroup that holds gantry itself, is refused); crun, at the root, only where runc is missing.
 *
 * Masked and read-only /proc and /sys paths: runc's and crun's own handling differ in the mount
 * options a RUN sees in /proc/self/mountinfo; with crun gantry writes them as mounts of the spec,
 * as runc makes them (spec.ts), over a null device the launcher makes on a tmpfs of its own.
 */
import { createHash } from 'node:crypto';
import { existsSync, statfsSync, statSync } from 'node:fs';
import type { ProgramPlace } from './types.js';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { execFileAsync, trace } from '../support/process.js';
import type { SeccompProfile } from './seccomp.js';
import { specJson } from './spec.js';
import { settings } from '../support/settings.js';

const CRUN = ['/usr/bin/crun', '/usr/local/bin/crun'];
const RUNC = ['/usr/sbin/runc', '/usr/bin/runc', '/usr/local/sbin/runc', '/usr/local/bin/runc'];
const UNSHARE = '/usr/bin/unshare';
const SETPRIV = '/usr/bin/setpriv';
const HOST_SH = '/bin/sh';
const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface Runtime {
  path: string;
  kind: 'crun' | 'runc';
  /**
   * crun run with its cgroup manager disabled, the launcher preparing what it needs (see
   * above): the container's cgroups to make and enter (root on a v1 or mixed host), the v2
   * hierarchy to cover.
   */
  launcher?: { cgroups: boolean; coverUnified: boolean };
}

let chosen: Runtime | null | undefined;

/**
 * The runtime RUN uses here, or undefined when none is installed. `GANTRY_RUNTIME` names one
 * (the path of a crun or runc), as buildah's BUILDAH_RUNTIME does.
 */
export function findRuntime(): Runtime | undefined {
  if (chosen !== undefined) return chosen ?? undefined;
  const wanted = settings.runtime;
  const wantedKind = wanted ? /crun|runc/.exec(path.basename(wanted))?.[0] : undefined;
  if (wanted && (!wantedKind || !existsSync(wanted))) throw new SandboxError('SANDBOX_MISSING', `GANTRY_RUNTIME=${wanted}: not the path of an installed crun or runc`);
  const crun = wanted ? (wantedKind === 'crun' ? wanted : undefined) : CRUN.find((p) => existsSync(p));
  const runc = wanted ? (wantedKind === 'runc' ? wanted : undefined) : RUNC.find((p) => existsSync(p));
  const v2Only = cgroupV2Only();
  const coverUnified = !v2Only && existsSync('/sys/fs/cgroup/unified/cgroup.controllers');
  if (crun && settings.inUserNamespace) chosen = { path: crun, kind: 'crun', launcher: { cgroups: false, coverUnified } };
  else if (crun && !v2Only && existsSync('/sys/fs/cgroup/devices')) chosen = { path: crun, kind: 'crun', launcher: { cgroups: true, coverUnified } };
  else if (runc) chosen = { path: runc, kind: 'runc' };
  else if (crun) chosen = { path: crun, kind: 'crun' };
  else chosen = null;
  return chosen ?? undefined;
}

/** The runtime, or an error that says what to install. */
export function requireRuntime(): Runtime {
  const runtime = findRuntime();
  if (!runtime) throw new SandboxError('SANDBOX_MISSING', 'no OCI runtime: install crun (apt-get install crun) or runc');
  return runtime;
}

function cgroupV2Only(): boolean {
  try {
    return statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
  } catch {
    return false;
  }
}

/**
 * What the launcher runs after it has made the RUN's PID and mount namespaces, before the
 * runtime: enter the container's cgroups, cover the v2 hierarchy, make the null device the masked
 * files are bound to (on a tmpfs, nosuid and strictatime as the container's /dev, so that the
 * mounts read as runc's; bound from the host's where no device can be made, in a user namespace).
 * What fails is written to the failure file (and the RUN never starts): the runtime's failure,
 * not the command's. Arguments: the failure file, the number of cgroup directories and each, the
 * directory to cover or '', the mask directory, then the runtime's command line.
 */
const PREPARE = [
  'failed=$1; n=$2; shift 2',
  'fail() { echo "$1" > "$failed"; exit 125; }',
  'while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || fail "cannot enter the cgroup $1"; shift; n=$((n - 1)); done',
  'cover=$1; mask=$2; shift 2',
  'if [ -n "$cover" ]; then mount -t tmpfs -o ro,nosuid,nodev,noexec,size=4k gantry-covered "$cover" || fail "cannot cover $cover"; fi',
  'mount -t tmpfs -o nosuid,strictatime,mode=755,size=4k gantry-mask "$mask" || fail "cannot mount a tmpfs on $mask"',
  'if ! mknod -m 666 "$mask/null" c 1 3 2>/dev/null; then { : > "$mask/null" && mount --bind /dev/null "$mask/null"; } || fail "cannot make the null device of the masked paths"; fi',
  'exec "$@"',
].join('\n');

/**
 * The runtime's command line for one container (after the launcher's namespaces are made:
 * unshare ... --), with what must run before it; `failed` is where that says what failed.
 */
export function runtimeCommand(runtime: Runtime, run: { workDir: string; state: string; log: string; bundle: string; id: string; cgroups: string[]; failed: string }): string[] {
  const command = [...runtimeArgv(runtime), '--root', run.state, '--log', run.log, '--log-format', 'json', 'run', '--bundle', run.bundle, run.id];
  if (runtime.kind === 'runc') return command;
  return [HOST_SH, '-c', PREPARE, 'gantry-prepare', run.failed, String(run.cgroups.length), ...run.cgroups, coveredHierarchy(runtime), maskDir(run.workDir), ...command];
}

/** The runtime and its global options. */
const runtimeArgv = (runtime: Runtime): string[] => [runtime.path, ...(runtime.launcher ? ['--cgroup-manager=disabled'] : [])];

/** The v2 hierarchy the launcher covers so that crun sees v1 only, or ''. */
const coveredHierarchy = (runtime: Runtime): string => (runtime.launcher?.coverUnified ? '/sys/fs/cgroup/unified' : '');

/** Where the launcher mounts the mask directory (made before the launch). */
export const maskDir = (workDir: string): string => path.join(workDir, 'mask');

/** The null device masked files are bound to, which the launcher makes in the mask directory. */
export const maskNull = (workDir: string): string => path.join(maskDir(workDir), 'null');

const compiled = new WeakMap<SeccompProfile, Promise<string | undefined>>();
const COMPILE_DEADLINE_MS = 10_000;

/**
 * The seccomp filter as the BPF program crun loads (base64), compiled once per filter and
 * process: crun creates a container that never starts, with the filter, and the program it
 * wrote is read from its state. Undefined where that fails (crun then compiles the filter itself
 * at every start, as before).
 */
export function compiledSeccomp(runtime: Runtime, filter: SeccompProfile, keep?: (key: string) => ProgramPlace): Promise<string | undefined> {
  if (runtime.kind !== 'crun') return Promise.resolve(undefined);
  let done = compiled.get(filter);
  if (!done) {
    const place = keep ? keep(programKey(runtime, JSON.stringify(filter))) : undefined;
    done = (async () => {
      const kept = place ? await readKept(place.file) : undefined;
      if (kept) {
        trace?.('sandbox: seccomp filter kept from an earlier build');
        return kept;
      }
      const bpf = await compileSeccomp(runtime, filter);
      trace?.(`sandbox: seccomp filter precompiled (${Buffer.from(bpf, 'base64').length / 8} instructions)`);
      if (place) await writeKept(place, bpf);
      return bpf;
    })().catch((err: Error) => {
      trace?.(`sandbox: seccomp not precompiled: ${err.message}`);
      return undefined;
    });
    compiled.set(filter, done);
  }
  return done;
}

/**
 * What a compiled program depends on: the filter, the runtime (its libseccomp with it) and the
 * kernel (libseccomp asks it what it supports).
 */
function programKey(runtime: Runtime, filter: string): string {
  let binary = '';
  try {
    const st = statSync(runtime.path);
    binary = `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    // compiled again when it is back
  }
  return createHash('sha256').update(JSON.stringify([filter, runtime.path, binary, release(), process.arch])).digest('hex');
}

/** A program kept by an earlier build, when it is whole: its own digest beside it. */
async function readKept(file: string): Promise<string | undefined> {
  try {
    const kept = JSON.parse(await readFile(file, 'utf8')) as { program?: unknown; sha256?: unknown };
    if (typeof kept.program !== 'string' || kept.program.length === 0) return undefined;
    const bytes = Buffer.from(kept.program, 'base64');
    if (bytes.length % 8 !== 0 || createHash('sha256').update(bytes).digest('hex') !== kept.sha256) return undefined;
    return kept.program;
  } catch {
    return undefined;
  }
}

/**
 * Keep a program for the next builds; a failure costs them a compile, nothing more. Written to
 * a temp file and renamed into place: a process that ends mid-write (a build that failed while
 * this ran in the background) leaves no half file in the cache.
 */
async function writeKept(place: ProgramPlace, program: string): Promise<void> {
  const sha256 = createHash('sha256').update(Buffer.from(program, 'base64')).digest('hex');
  try {
    await writeFile(place.temp, JSON.stringify({ sha256, program }), { mode: 0o600, flag: 'wx' });
    await rename(place.temp, place.file);
  } catch (err) {
    await rm(place.temp, { force: true });
    trace?.(`sandbox: seccomp filter not kept: ${(err as Error).message}`);
  }
}

async function compileSeccomp(runtime: Runtime, filter: SeccompProfile): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'gantry-seccomp-'));
  try {
    const bundle = path.join(dir, 'bundle');
    await mkdir(path.join(bundle, 'rootfs', 'dev'), { recursive: true });
    // crun looks the command up when it creates the container; it never runs.
    await writeFile(path.join(bundle, 'rootfs', 'never-started'), '', { mode: 0o755 });
    const config = {
      ociVersion: '1.0.2',
      process: { terminal: false, user: { uid: 0, gid: 0 }, args: ['/never-started'], env: [], cwd: '/' },
      root: { path: path.join(bundle, 'rootfs'), readonly: true },
      mounts: [],
      linux: { namespaces: [{ type: 'mount' }, { type: 'pid' }], seccomp: filter },
    };
    await writeFile(path.join(bundle, 'config.json'), specJson(config), { mode: 0o600 });
    const state = path.join(dir, 'state');
    const out = path.join(dir, 'seccomp.bpf');
    // The runtime's command line is "$@": create, read the program, delete.
    const script = [
      'set -e',
      'cover=$1; state=$2; bundle=$3; out=$4; shift 4',
      'if [ -n "$cover" ]; then mount -t tmpfs -o ro,size=4k gantry-covered "$cover"; fi',
      '"$@" --root "$state" create --bundle "$bundle" seccomp',
      'cat "$state/seccomp/seccomp.bpf" > "$out"',
      '"$@" --root "$state" delete --force seccomp',
    ].join('\n');
    // Dies with gantry (setpriv's parent-death signal), its container with it (the PID namespace's
    // end); a deadline: a runtime that hangs costs the build a filter compiled at every start, not the build.
    const args = ['--pdeathsig', 'KILL', '--', UNSHARE, '--pid', '--fork', '--kill-child', '--mount-proc', '--', HOST_SH, '-c', script, 'gantry-seccomp', coveredHierarchy(runtime), state, bundle, out, ...runtimeArgv(runtime)];
    const stderr = await execFileAsync(SETPRIV, args, { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, timeout: COMPILE_DEADLINE_MS }).then(
      (r) => r.stderr,
      (err: Error & { killed?: boolean; stderr?: string }) => {
        throw new Error(err.killed ? `no answer within ${COMPILE_DEADLINE_MS / 1000} s` : err.stderr?.trim() || err.message);
      },
    );
    const bpf = await readFile(out);
    // A BPF program is a whole number of 8-byte instructions.
    if (bpf.length === 0 || bpf.length % 8 !== 0) throw new Error(`crun wrote ${bpf.length} bytes of filter ${stderr.trim()}`);
    return bpf.toString('base64');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
