import { describe, expect, test } from 'vitest';
import { readSeccompProfile, translateSeccomp } from '../../src/sandbox/seccomp.js';
import { capabilityMask, DEFAULT_CAPABILITIES, hostsFile, resolvConf, runtimeSpec } from '../../src/sandbox/spec.js';

const profile = {
  defaultAction: 'SCMP_ACT_ERRNO',
  defaultErrnoRet: 38,
  archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }],
  syscalls: [
    { names: ['read', 'write', 'mount', 'unshare', 'clone', 'clone3'], action: 'SCMP_ACT_ALLOW', args: [], includes: {}, excludes: {} },
    { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
    { names: ['arm_fadvise64_64'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['arm64'] } },
    { names: ['chroot'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_CHROOT'] } },
    { names: ['bpf'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
    { names: ['open_by_handle_at'], action: 'SCMP_ACT_ERRNO', errnoRet: 1, excludes: { caps: ['CAP_DAC_READ_SEARCH'] } },
    { names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }] },
  ],
};

describe('seccomp profile translation', () => {
  const out = translateSeccomp(profile, DEFAULT_CAPABILITIES, 'x64');
  const allowed = new Set(out.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names));

  test('the architecture and its sub-architectures; rules for other architectures and capabilities left out', () => {
    expect(out.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(out.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(allowed.has('arch_prctl')).toBe(true);
    expect(allowed.has('arm_fadvise64_64')).toBe(false);
    expect(allowed.has('chroot')).toBe(true); // CAP_SYS_CHROOT is held
    expect(allowed.has('bpf')).toBe(false); // CAP_SYS_ADMIN is not
    expect(out.syscalls.find((r) => r.names.includes('open_by_handle_at'))?.errnoRet).toBe(1);
    expect(out.syscalls.find((r) => r.names.includes('personality'))?.args).toEqual([{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }]);
  });

  test('without CAP_SYS_ADMIN: mount and unshare fail with EPERM, clone may not make namespaces, clone3 says ENOSYS', () => {
    expect(allowed.has('read')).toBe(true);
    for (const n of ['mount', 'unshare', 'clone', 'clone3']) expect(allowed.has(n), n).toBe(false);
    const eperm = out.syscalls.find((r) => r.names.includes('mount'));
    expect(eperm).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
    expect(eperm?.names).toContain('unshare');
    const clone = out.syscalls.find((r) => r.names.includes('clone') && r.action === 'SCMP_ACT_ALLOW');
    expect(clone?.args?.[0]).toMatchObject({ index: 0, op: 'SCMP_CMP_MASKED_EQ' });
    expect((clone?.args?.[0]?.value ?? 0) & 0x10000000).toBe(0x10000000); // CLONE_NEWUSER is in the mask
    expect(out.syscalls.find((r) => r.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  test('with CAP_SYS_ADMIN the profile stands as written', () => {
    const admin = translateSeccomp(profile, [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], 'x64');
    const names = new Set(admin.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW').flatMap((r) => r.names));
    for (const n of ['mount', 'unshare', 'clone', 'clone3', 'bpf']) expect(names.has(n), n).toBe(true);
  });

  test('a missing profile is an error that says what to install; a broken one names the file', () => {
    expect(() => readSeccompProfile(['/nonexistent/seccomp.json'])).toThrow(/golang-github-containers-common.*seccomp=unconfined/s);
    expect(() => readSeccompProfile(['/etc/hostname'])).toThrow(/\/etc\/hostname.*not a profile/);
  });
});

describe('runtime spec', () => {
  test("Docker's default capabilities are CapEff a80425fb", () => {
    expect(capabilityMask(DEFAULT_CAPABILITIES).toString(16)).toBe('a80425fb');
  });

  test('user, groups, namespaces and the network choice', () => {
    const spec = runtimeSpec({ rootfs: '/r', argv: ['sh'], env: ['A=1'], cwd: '/w', uid: 5, gid: 6, groups: [6, 7], hostname: 'h', mounts: [], network: 'new', cgroupNamespace: false, seccomp: undefined }) as {
      process: { user: unknown; capabilities: { ambient: string[]; inheritable: string[] } };
      linux: { namespaces: { type: string }[]; seccomp?: unknown };
    };
    expect(spec.process.user).toEqual({ uid: 5, gid: 6, additionalGids: [6, 7] });
    expect(spec.process.capabilities.ambient).toEqual([]);
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual(['ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.linux.seccomp).toBeUndefined();
    const host = runtimeSpec({ rootfs: '/r', argv: ['sh'], env: [], cwd: '/', uid: 0, gid: 0, groups: [0], hostname: 'h', mounts: [], network: 'inherit', cgroupNamespace: true, seccomp: undefined }) as { linux: { namespaces: { type: string }[] } };
    expect(host.linux.namespaces.map((n) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'pid', 'uts']);
  });

  test('for crun, masked and read-only paths are mounts as runc makes them, those missing here left out; the filter program as an annotation', () => {
    const base = { rootfs: '/r', argv: ['sh'], env: [], cwd: '/', uid: 0, gid: 0, groups: [0], hostname: 'h', mounts: [], network: 'new' as const, cgroupNamespace: false, seccomp: undefined };
    const kinds: Record<string, 'dir' | 'file'> = { '/proc/acpi': 'dir', '/proc/keys': 'file', '/sys/firmware': 'dir', '/proc/sys': 'dir', '/proc/bus': 'dir', '/proc/sysrq-trigger': 'file' };
    type Spec = { mounts: { destination: string; type: string; source: string; options: string[] }[]; linux: { maskedPaths?: string[]; readonlyPaths?: string[] }; annotations?: Record<string, string> };
    const spec = runtimeSpec({ ...base, pathMounts: { maskNull: '/w/mask/null', kindOf: (p) => kinds[p] }, annotations: { 'run.oci.seccomp_bpf_data': 'AAAA' } }) as Spec;
    expect(spec.linux.maskedPaths).toBeUndefined();
    expect(spec.linux.readonlyPaths).toBeUndefined();
    expect(spec.annotations).toEqual({ 'run.oci.seccomp_bpf_data': 'AAAA' });
    const at = (d: string) => spec.mounts.find((m) => m.destination === d);
    expect(at('/proc/sys')).toEqual({ destination: '/proc/sys', type: 'bind', source: '/proc/sys', options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
    expect(at('/proc/sysrq-trigger')?.options).toContain('ro');
    expect(at('/proc/acpi')).toEqual({ destination: '/proc/acpi', type: 'tmpfs', source: 'tmpfs', options: ['ro'] });
    expect(at('/proc/keys')).toEqual({ destination: '/proc/keys', type: 'bind', source: '/w/mask/null', options: ['bind', 'nosuid'] });
    expect(at('/proc/kcore')).toBeUndefined(); // not on this (pretend) host
    // After /proc and /sys are mounted, or they would cover them.
    const order = spec.mounts.map((m) => m.destination);
    expect(order.indexOf('/proc/keys')).toBeGreaterThan(order.indexOf('/proc'));
    expect(order.indexOf('/sys/firmware')).toBeGreaterThan(order.indexOf('/sys'));
    // For runc, the runtime's own lists, all of them.
    const runc = runtimeSpec(base) as Spec;
    expect(runc.linux.maskedPaths).toContain('/proc/kcore');
    expect(runc.linux.readonlyPaths).toContain('/proc/sys');
    expect(runc.mounts.some((m) => m.destination === '/proc/keys')).toBe(false);
  });

  test('/etc/hosts as BuildKit writes it; resolv.conf without loopback resolvers', () => {
    expect(hostsFile('buildkitsandbox', [{ name: 'db', ip: '10.1.2.3' }])).toBe('127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n10.1.2.3\tdb\n');
    expect(resolvConf('# c\nnameserver 127.0.0.53\noptions edns0\nsearch x\n', ['10.0.2.3'])).toBe('options edns0\nsearch x\nnameserver 10.0.2.3\n');
    expect(resolvConf('nameserver 192.0.2.1\nnameserver 127.0.0.1\n', ['10.0.2.3'])).toBe('nameserver 192.0.2.1\n');
  });
});
