/**
 * The seccomp filter of a RUN. gantry reads a profile in Docker's format (the one Debian ships
 * as /usr/share/containers/seccomp.json with golang-github-containers-common, or one the user
 * names) and turns it into the runtime spec's `linux.seccomp` for this machine's architecture
 * and the capabilities the RUN holds, as Docker does: a rule whose `includes.caps` the RUN
 * lacks, or whose `excludes.caps` it holds, is left out.
 *
 * Podman's profile lets every process call mount, unshare, setns and the new mount API, and
 * relies on the missing capability. A RUN gets Docker's stricter rule on top: without
 * CAP_SYS_ADMIN these calls fail with EPERM, clone may not make namespaces, and clone3 says
 * ENOSYS so that the C library falls back to clone, whose flags the filter can see.
 */
import { readFileSync } from 'node:fs';
import { SandboxError } from '../errors/index.js';

export interface SeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[];
}

export interface SeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  syscalls: SeccompRule[];
}

/** Where Debian's profile is (golang-github-containers-common, which buildah and podman use). */
export const DEFAULT_SECCOMP_PROFILES = ['/usr/share/containers/seccomp.json', '/etc/containers/seccomp.json'];

interface DockerRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: { index: number; value: number; valueTwo?: number; op: string }[] | null;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[] };
}

interface DockerProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: { architecture: string; subArchitectures?: string[] }[];
  architectures?: string[];
  syscalls?: DockerRule[];
}

/** Node's process.arch → the architecture names Docker's profile uses in includes.arches. */
const ARCH_NAMES: Record<string, { docker: string; seccomp: string }> = {
  x64: { docker: 'amd64', seccomp: 'SCMP_ARCH_X86_64' },
  arm64: { docker: 'arm64', seccomp: 'SCMP_ARCH_AARCH64' },
  arm: { docker: 'arm', seccomp: 'SCMP_ARCH_ARM' },
  ia32: { docker: 'x86', seccomp: 'SCMP_ARCH_X86' },
  ppc64: { docker: 'ppc64le', seccomp: 'SCMP_ARCH_PPC64LE' },
  s390x: { docker: 's390x', seccomp: 'SCMP_ARCH_S390X' },
  riscv64: { docker: 'riscv64', seccomp: 'SCMP_ARCH_RISCV64' },
};

/** Calls only CAP_SYS_ADMIN may make (Docker's profile), denied with EPERM without it. */
const ADMIN_CALLS = [
  'mount',
  'umount',
  'umount2',
  'unshare',
  'setns',
  'pivot_root',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
  'quotactl',
  'quotactl_fd',
  'name_to_handle_at',
  'bpf',
  'fanotify_init',
  'lookup_dcookie',
  'perf_event_open',
  'syslog',
  'reboot',
  'setdomainname',
  'sethostname',
  'vm86',
  'vm86old',
];

/** clone flags that make namespaces (linux/sched.h). */
const CLONE_NAMESPACES = 0x00020000 /* NEWNS */ | 0x04000000 /* NEWUTS */ | 0x08000000 /* NEWIPC */ | 0x10000000 /* NEWUSER */ | 0x20000000 /* NEWPID */ | 0x40000000 /* NEWNET */ | 0x02000000; /* NEWCGROUP */

const EPERM = 1;
const ENOSYS = 38;

/** The first profile found of `candidates`, read and parsed; an error that says what to install when there is none. */
export function readSeccompProfile(candidates: readonly string[] = DEFAULT_SECCOMP_PROFILES): { file: string; profile: DockerProfile } {
  for (const file of candidates) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    try {
      const profile = JSON.parse(text) as DockerProfile;
      if (typeof profile.defaultAction !== 'string') throw new Error('no defaultAction');
      return { file, profile };
    } catch (err) {
      throw new SandboxError('SANDBOX_SECCOMP', `the seccomp profile ${file} is not a profile in Docker's format: ${(err as Error).message}`);
    }
  }
  throw new SandboxError(
    'SANDBOX_SECCOMP',
    `no seccomp profile for RUN: none of ${candidates.join(', ')} exists. Install Debian's golang-github-containers-common (apt-get install golang-github-containers-common), name a profile with --security-opt seccomp=FILE, or run RUN without one with --security-opt seccomp=unconfined`,
  );
}

/** A Docker-format profile as the runtime spec's filter, for `arch` (Node's name) and the capabilities held. */
export function translateSeccomp(profile: DockerProfile, caps: readonly string[], arch: string = process.arch): SeccompProfile {
  const names = ARCH_NAMES[arch];
  if (!names) throw new SandboxError('SANDBOX_SECCOMP', `no seccomp architecture is known for ${arch}`);
  const held = new Set(caps);
  const architectures = [names.seccomp];
  for (const a of profile.archMap ?? []) if (a.architecture === names.seccomp) architectures.push(...(a.subArchitectures ?? []));
  const admin = held.has('CAP_SYS_ADMIN');
  const restricted = new Set(admin ? [] : [...ADMIN_CALLS, 'clone', 'clone3']);
  const syscalls: SeccompRule[] = [];
  for (const r of profile.syscalls ?? []) {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(names.docker)) continue;
    if (exc.arches?.includes(names.docker)) continue;
    if (inc.caps && inc.caps.length > 0 && !inc.caps.every((c) => held.has(c))) continue;
    if (exc.caps && exc.caps.some((c) => held.has(c))) continue;
    const list = (r.names ?? (r.name ? [r.name] : [])).filter((n) => !restricted.has(n));
    if (list.length === 0) continue;
    syscalls.push({
      names: list,
      action: r.action,
      ...(r.errnoRet !== undefined ? { errnoRet: r.errnoRet } : {}),
      ...(r.args && r.args.length > 0 ? { args: r.args.map((a) => ({ index: a.index, value: a.value, ...(a.valueTwo ? { valueTwo: a.valueTwo } : {}), op: a.op })) } : {}),
    });
  }
  if (!admin) {
    syscalls.push({ names: ADMIN_CALLS, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM });
    // clone without namespace flags (threads, fork); clone3 hides its flags in memory.
    syscalls.push({ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: arch === 's390x' ? 1 : 0, value: CLONE_NAMESPACES, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] });
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }
  return {
    defaultAction: profile.defaultAction,
    ...(profile.defaultErrnoRet !== undefined ? { defaultErrnoRet: profile.defaultErrnoRet } : {}),
    architectures,
    syscalls,
  };
}
