/**
 * The OCI runtime spec of a RUN (runtime-spec config.md, config-linux.md): what BuildKit and
 * Docker give a container, and no more. Pure: no file system, no processes.
 */
import type { SeccompProfile } from './seccomp.js';
import type { Ulimit } from './types.js';

/** Docker's default capability set (moby oci/caps/defaults.go): CapEff 0xa80425fb as root. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
] as const;

/** The capability numbers of linux/capability.h that the default set names. */
export const CAPABILITY_NUMBERS: Readonly<Record<string, number>> = {
  CAP_CHOWN: 0,
  CAP_DAC_OVERRIDE: 1,
  CAP_FOWNER: 3,
  CAP_FSETID: 4,
  CAP_KILL: 5,
  CAP_SETGID: 6,
  CAP_SETUID: 7,
  CAP_SETPCAP: 8,
  CAP_NET_BIND_SERVICE: 10,
  CAP_NET_RAW: 13,
  CAP_SYS_CHROOT: 18,
  CAP_MKNOD: 27,
  CAP_AUDIT_WRITE: 29,
  CAP_SETFCAP: 31,
};

/** The capability mask of a set of names, as /proc/<pid>/status prints it (CapEff). */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const bit = CAPABILITY_NUMBERS[n];
    if (bit === undefined) throw new Error(`unknown capability ${n}`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

/** Paths of /proc and /sys a container must not read (containerd's and Docker's defaults). */
export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];

/** Paths a container may read but never write. */
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The devices a container may open (mknod is allowed, as in Docker, opening others is not). */
const ALLOWED_DEVICES: { type: 'c'; major: number; minor: number }[] = [
  { type: 'c', major: 1, minor: 3 }, // null
  { type: 'c', major: 1, minor: 5 }, // zero
  { type: 'c', major: 1, minor: 7 }, // full
  { type: 'c', major: 1, minor: 8 }, // random
  { type: 'c', major: 1, minor: 9 }, // urandom
  { type: 'c', major: 5, minor: 0 }, // tty
  { type: 'c', major: 5, minor: 1 }, // console
  { type: 'c', major: 5, minor: 2 }, // ptmx
  { type: 'c', major: 136, minor: -1 }, // pts/*
];

export interface SpecMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

export interface SpecInput {
  rootfs: string;
  /** A terminal of the container's own (`gantry run -t`): the runtime makes it and relays it to its own standard streams. */
  terminal?: boolean;
  argv: string[];
  env: string[];
  cwd: string;
  uid: number;
  gid: number;
  groups: number[];
  hostname: string;
  /** Extra mounts after the standard ones, in order (binds, tmpfs, the generated /etc files). */
  mounts: SpecMount[];
  /**
   * The network namespace: 'new' (the runtime makes one, loopback only), 'inherit' (the one the
   * runtime runs in: gantry's, for host networking, or the user-mode network's, which the
   * launcher enters: oci.ts).
   */
  network: 'new' | 'inherit';
  /** The translated seccomp filter, or undefined when the user asked for none. */
  seccomp: SeccompProfile | undefined;
  /** A cgroup namespace too (BuildKit makes one on cgroup v2 only). */
  cgroupNamespace: boolean;
  /** /dev/shm's size in bytes; default 64 MiB. */
  shmSize?: number;
  ulimits?: Ulimit[];
  /**
   * Masked and read-only paths as mounts of the spec, as runc makes them (for crun, whose own
   * differ in their options): the null device masked files are bound to, and what each path is
   * on this host (a path that is not there is left out, as the runtimes do).
   */
  pathMounts?: { maskNull: string; kindOf: (p: string) => 'dir' | 'file' | undefined };
  annotations?: Record<string, string>;
}

/** RLIM_INFINITY in the spec: a uint64 that JSON numbers in JavaScript cannot hold, written by `specJson`. */
const INFINITY_MARK = '__gantry_rlim_infinity__';

/** config.json's text for a spec: an unlimited rlimit as the uint64 RLIM_INFINITY. */
export function specJson(spec: Record<string, unknown>): string {
  return JSON.stringify(spec).replaceAll(`"${INFINITY_MARK}"`, '18446744073709551615');
}

/** The runtime spec (config.json) of one RUN. */
export function runtimeSpec(input: SpecInput): Record<string, unknown> {
  const caps = [...DEFAULT_CAPABILITIES];
  const namespaces: { type: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (input.cgroupNamespace) namespaces.push({ type: 'cgroup' });
  if (input.network === 'new') namespaces.push({ type: 'network' });
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: input.terminal === true,
      user: { uid: input.uid, gid: input.gid, ...(input.groups.length > 0 ? { additionalGids: input.groups } : {}) },
      args: input.argv,
      env: input.env,
      cwd: input.cwd,
      // Root's effective set is Docker's; another user's is empty (the kernel clears it at the
      // exec of a non-root user), its bounding set the same.
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      ...(input.ulimits?.length
        ? {
            rlimits: input.ulimits.map((u) => ({
              type: `RLIMIT_${u.name.toUpperCase()}`,
              soft: u.soft < 0 ? INFINITY_MARK : u.soft,
              hard: u.hard < 0 ? INFINITY_MARK : u.hard,
            })),
          }
        : {}),
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${Math.ceil((input.shmSize ?? 64 * 1024 * 1024) / 1024)}k`] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
      ...input.mounts,
      // Last, as the runtimes mask: nothing mounted after covers a mask.
      ...(input.pathMounts ? pathMounts(input.pathMounts) : []),
    ],
    ...(input.annotations ? { annotations: input.annotations } : {}),
    linux: {
      namespaces,
      ...(input.pathMounts ? {} : { maskedPaths: MASKED_PATHS, readonlyPaths: READONLY_PATHS }),
      // No cgroupsPath: the runtime names the cgroup after the container, under gantry's own
      // (oci.ts removes it after the run, and sweeps those a killed gantry left).
      resources: {
        devices: [
          { allow: false, access: 'rwm' },
          // mknod of any device is allowed (as Docker allows it); opening one is not, but for these.
          { allow: true, type: 'c', access: 'm' },
          { allow: true, type: 'b', access: 'm' },
          ...ALLOWED_DEVICES.map((d) => ({ allow: true, type: d.type, major: d.major, ...(d.minor >= 0 ? { minor: d.minor } : {}), access: 'rwm' })),
        ],
      },
      ...(input.seccomp ? { seccomp: input.seccomp } : {}),
    },
  };
}

/**
 * The masked and read-only paths as mounts, as runc makes them: a read-only path bound on itself
 * read-only (nosuid, nodev, noexec kept), a masked directory under an empty read-only tmpfs, a
 * masked file under the null device.
 */
function pathMounts(p: NonNullable<SpecInput['pathMounts']>): SpecMount[] {
  const out: SpecMount[] = [];
  for (const ro of READONLY_PATHS) {
    if (p.kindOf(ro)) out.push({ destination: ro, type: 'bind', source: ro, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
  }
  for (const masked of MASKED_PATHS) {
    const kind = p.kindOf(masked);
    if (kind === 'dir') out.push({ destination: masked, type: 'tmpfs', source: 'tmpfs', options: ['ro'] });
    else if (kind === 'file') out.push({ destination: masked, type: 'bind', source: p.maskNull, options: ['bind', 'nosuid'] });
  }
  return out;
}

/**
 * The /etc/hosts of a RUN, as BuildKit writes it: loopback names with the sandbox's hostname,
 * then the build's extra hosts.
 */
export function hostsFile(hostname: string, extra: { name: string; ip: string }[] = []): string {
  const lines = [`127.0.0.1	localhost ${hostname}`, '::1	localhost ip6-localhost ip6-loopback'];
  for (const h of extra) lines.push(`${h.ip}	${h.name}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The /etc/resolv.conf of a RUN: the host's, without nameservers on loopback (they would be
 * the sandbox's own loopback); when none is left, the user-mode network's resolver (or, for a
 * RUN without a network, nothing to ask). Options and search domains are kept.
 */
export function resolvConf(host: string, fallback: string[]): string {
  const out: string[] = [];
  let servers = 0;
  for (const line of host.split('\n')) {
    if (/^\s*[#;]/.test(line)) continue; // comments are dropped, as BuildKit does
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m) {
      const ip = m[1] as string;
      if (/^127\./.test(ip) || ip === '::1' || ip === '0.0.0.0') continue;
      servers++;
    }
    if (line.trim() !== '') out.push(line.trim());
  }
  if (servers === 0) for (const ip of fallback) out.push(`nameserver ${ip}`);
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
