import { execFileSync } from 'node:child_process';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { writeTree } from '../helpers/files.js';
import { mountsUnder, processesWith, waitForNoProcesses } from '../helpers/faults.js';
import { expectStoreConsistent, makeVictim, type Victim } from '../helpers/hostile.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool, toolPath } from '../helpers/tools.js';

// A hostile RUN (issue 19): each attack of a Dockerfile's RUN on the host fails, and each test
// has its positive control (the same RUN shows the attack was really tried, or the allowed way
// works). After each: the victim beside the store is untouched and the store invariant holds.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-hostile-run-'));
const store = path.join(work, 'store');
let victim: Victim;
let ready = false;
let debian = false;
afterAll(() => {
  // A build killed by a test that failed may have left its overlay mounted there.
  for (const m of mountsUnder(work).reverse()) execFileSync('umount', ['-l', m]);
  rmSync(work, { recursive: true, force: true });
});
afterEach(() => {
  victim?.unchanged();
  expectStoreConsistent(store, victim?.marker);
});

const g = (args: string[], opts: { env?: Record<string, string> } = {}) => execa(bin, ['--root', store, ...args], { reject: false, timeout: 120_000, ...opts });

let n = 0;
function context(lines: string[], files: Record<string, string> = {}): string {
  return writeTree(path.join(work, 'ctx', String(++n)), { Dockerfile: lines.join('\n') + '\n', ...files });
}

/** Build with plain progress and no cache; what each RUN printed comes back as `#N text` lines. */
async function build(ctx: string, extra: string[] = [], env?: Record<string, string>) {
  const r = await g(['build', '--no-cache', '--progress', 'plain', ...extra, ctx], env ? { env } : {});
  return { ...r, printed: r.stderr.split('\n').map((l) => l.replace(/^#\d+ /, '')) };
}

beforeAll(async () => {
  haveTool('crun');
  haveTool('runc');
  haveTool('slirp4netns');
  victim = makeVictim(path.join(work, 'victim'));
  const rootfs = makeBusyboxRootfs(path.join(work, 'busybox'));
  const r = await g(['import', tarDir(rootfs, path.join(work, 'busybox.tgz')), 'bb:1', '-c', 'ENV PATH=/bin']);
  expect(r.exitCode, r.stderr).toBe(0);
  ready = true;
  const tarball = debianBaseTarball();
  if (tarball) {
    const d = await g(['import', tarball, 'debian:hostile', '-c', `ENV ${DEBIAN_PATH}`]);
    expect(d.exitCode, d.stderr).toBe(0);
    debian = true;
  }
}, 300_000);

// crun is gantry's runtime and runc the one it takes on a host whose cgroups are v2 only: the
// capabilities, mounts and devices hold under both (GANTRY_RUNTIME names one; GANTRY_TRACE says
// which ran).
describe.each(['crun', 'runc'] as const)('capabilities, mounts and devices (%s)', (runtime) => {
  const env = () => ({ GANTRY_RUNTIME: toolPath(runtime) as string, GANTRY_TRACE: '1' });
  const ran = (r: { stderr: string }) => expect(r.stderr).toContain(`sandbox: oci chosen (${runtime})`);

  test('RUN as root holds exactly Docker default capabilities (CapEff 00000000a80425fb); a non-root USER none', async () => {
    if (!ready) return;
    const ctx = context(['FROM bb:1', 'RUN busybox grep Cap /proc/self/status', 'USER nobody', 'RUN busybox grep CapEff /proc/self/status']);
    const r = await build(ctx, [], env());
    ran(r);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('CapEff:\t00000000a80425fb');
    expect(r.printed).toContain('CapBnd:\t00000000a80425fb');
    expect(r.printed).toContain('CapEff:\t0000000000000000');
  });

  test('mount fails; a host disk made with mknod can be neither read nor mounted; /dev/null still works', async () => {
    if (!ready) return;
    const dev = statSync('/').dev;
    const major = Math.floor(dev / 256) & 0xfff;
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    const ctx = context([
      'FROM bb:1',
      'RUN busybox mkdir -p /mnt/t && (busybox mount -t tmpfs none /mnt/t && echo MOUNTED || echo mount-refused)',
      `RUN busybox mknod /disk b ${major} ${minor} && echo made-node && (busybox head -c 512 /disk >/dev/null && echo READ-DISK || echo read-refused) && (busybox mount /disk /mnt/t && echo MOUNTED-DISK || echo disk-mount-refused)`,
      'RUN busybox mknod /mynull c 1 3 && echo hello > /mynull && echo null-works && busybox rm /mynull /disk',
    ]);
    const r = await build(ctx, [], env());
    ran(r);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('mount-refused');
    expect(r.printed).toContain('made-node'); // mknod is allowed, as in Docker: the open is what fails
    expect(r.printed).toContain('read-refused');
    expect(r.printed).toContain('disk-mount-refused');
    expect(r.printed).toContain('null-works');
    for (const bad of ['MOUNTED', 'READ-DISK', 'MOUNTED-DISK']) expect(r.printed).not.toContain(bad);
  });

  test('read-only mounts cannot be remounted or written: a bind of the context, a secret, /etc/hosts, resolv.conf; /proc/sys and sysrq are read-only, /proc/timer_list and /sys/firmware masked', async () => {
    if (!ready) return;
    const secretFile = path.join(work, 'secret.txt');
    writeFileSync(secretFile, 'the-secret\n', { mode: 0o600 });
    const ctx = context(
      [
        'FROM bb:1',
        'RUN --mount=type=bind,target=/ctx busybox sh -c "busybox mount -o remount,rw /ctx && echo REMOUNTED-CTX || echo ctx-remount-refused; echo x > /ctx/planted && echo WROTE-CTX || echo ctx-write-refused; busybox cat /ctx/data"',
        'RUN --mount=type=secret,id=s,target=/run/secrets/s busybox sh -c "busybox mount -o remount,rw /run/secrets/s && echo REMOUNTED-SECRET || echo secret-remount-refused; echo evil > /run/secrets/s && echo WROTE-SECRET || echo secret-write-refused; busybox cat /run/secrets/s"',
        'RUN busybox sh -c "echo evil >> /etc/hosts && echo WROTE-HOSTS || echo hosts-write-refused; echo evil >> /etc/resolv.conf && echo WROTE-RESOLV || echo resolv-write-refused; busybox umount /etc/hosts && echo UNMOUNTED || echo umount-refused"',
        'RUN busybox sh -c "echo |/tmp/x > /proc/sys/kernel/core_pattern && echo WROTE-CORE || echo core-pattern-refused; echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ || echo sysrq-refused; busybox cat /proc/sys/kernel/ostype"',
        // Masked: a file reads empty, a directory lists nothing (on this host both have content).
        'RUN busybox sh -c "echo timer_list=$(busybox cat /proc/timer_list | busybox wc -c); echo firmware=$(busybox ls -A /sys/firmware | busybox wc -l)"',
      ],
      { data: 'context-data\n' },
    );
    const r = await build(ctx, ['--secret', `id=s,src=${secretFile}`], env());
    ran(r);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const refused of ['ctx-remount-refused', 'ctx-write-refused', 'secret-remount-refused', 'secret-write-refused', 'hosts-write-refused', 'resolv-write-refused', 'umount-refused', 'core-pattern-refused', 'sysrq-refused']) {
      expect(r.printed, refused).toContain(refused);
    }
    // Positive controls: the mounts were there and readable, /proc/sys readable; what is masked
    // has content on the host.
    expect(r.printed).toContain('context-data');
    expect(r.printed).toContain('the-secret');
    expect(r.printed).toContain('Linux');
    expect(r.printed).toContain('timer_list=0');
    expect(r.printed).toContain('firmware=0');
    expect(readFileSync('/proc/timer_list').length).toBeGreaterThan(0);
    expect(readdirSync('/sys/firmware').length).toBeGreaterThan(0);
    for (const bad of ['REMOUNTED-CTX', 'WROTE-CTX', 'REMOUNTED-SECRET', 'WROTE-SECRET', 'WROTE-HOSTS', 'WROTE-RESOLV', 'UNMOUNTED', 'WROTE-CORE', 'WROTE-SYSRQ']) expect(r.printed).not.toContain(bad);
    expect(readFileSync(secretFile, 'utf8')).toBe('the-secret\n');
    expect(readdirSync(path.dirname(path.join(ctx, 'Dockerfile'))).sort()).toEqual(['Dockerfile', 'data']);
  });

  test('a RUN is in cgroups of its own in every hierarchy, not gantry\'s; a mount inside /proc is refused', async () => {
    if (!ready) return;
    const r = await build(context(['FROM bb:1', 'RUN busybox cat /proc/self/cgroup']), [], env());
    expect(r.exitCode, r.stderr).toBe(0);
    ran(r);
    const lines = r.printed.filter((l) => /^\d+:[^:]*:\//.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l).toMatch(/\/gantry-\d+-[a-z0-9]+-\d+$/);
    const proc = await build(context(['FROM bb:1', 'RUN --mount=type=tmpfs,target=/proc/x busybox true']), [], env());
    expect(proc.exitCode).not.toBe(0);
    expect(proc.stderr).toContain('mount target /proc/x is inside /proc');
  });

  test('seccomp: the default profile refuses unshare (no CAP_SYS_ADMIN), unconfined allows it; a profile of one\'s own is the one loaded', async () => {
    if (!ready) return;
    const ctx = context(['FROM bb:1', 'RUN busybox grep Seccomp: /proc/self/status; busybox unshare -U true && echo UNSHARED || echo unshare-refused; busybox uname -s; echo uname-done']);
    const confined = await build(ctx, [], env());
    expect(confined.exitCode, confined.stderr).toBe(0);
    ran(confined);
    expect(confined.printed).toContain('Seccomp:\t2');
    expect(confined.printed).toContain('unshare-refused');
    expect(confined.printed).toContain('Linux');
    // Under crun the filter is compiled once and handed over as a program (runtime.ts).
    if (runtime === 'crun') expect(confined.stderr).toMatch(/sandbox: seccomp filter (precompiled \(\d+ instructions\)|kept from an earlier build)/);
    const unconfined = await build(ctx, ['--security-opt', 'seccomp=unconfined'], env());
    expect(unconfined.exitCode, unconfined.stderr).toBe(0);
    expect(unconfined.printed).toContain('Seccomp:\t0');
    expect(unconfined.printed).toContain('UNSHARED');
    // A profile that refuses uname alone: its filter is loaded, not the default one's.
    const own = path.join(work, `no-uname-${runtime}.json`);
    writeFileSync(own, JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['uname'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
    const mine = await build(ctx, ['--security-opt', `seccomp=${own}`], env());
    expect(mine.exitCode, mine.stderr).toBe(0);
    expect(mine.printed).toContain('Seccomp:\t2');
    if (runtime === 'crun') expect(mine.stderr).toMatch(/sandbox: seccomp filter (precompiled|kept from an earlier build)/);
    if (runtime !== 'crun') return;
    // The program is kept in the store for the next builds; one that is not whole is compiled again.
    const kept = readdirSync(path.join(store, 'cache')).filter((f) => /^seccomp-[0-9a-f]{64}\.json$/.test(f));
    expect(kept.length).toBeGreaterThan(0);
    const again = await build(ctx, [], env());
    expect(again.stderr).toContain('sandbox: seccomp filter kept from an earlier build');
    expect(again.printed).toContain('unshare-refused');
    for (const f of kept) {
      const file = path.join(store, 'cache', f);
      const k = JSON.parse(readFileSync(file, 'utf8')) as { program: string; sha256: string };
      writeFileSync(file, JSON.stringify({ ...k, program: Buffer.from('\0'.repeat(8)).toString('base64') }));
    }
    const mended = await build(ctx, [], env());
    expect(mended.exitCode, mended.stderr).toBe(0);
    expect(mended.stderr).toMatch(/sandbox: seccomp filter precompiled/);
    expect(mended.printed).toContain('Seccomp:\t2');
    expect(mended.printed).toContain('unshare-refused');
    expect(mine.printed).toContain('uname-done');
    expect(mine.printed).not.toContain('Linux'); // busybox's uname prints nothing when the call fails
  });
});

describe('network', () => {
  let http: HttpServer;
  let abstract: NetServer;
  let port = 0;
  // Node binds an abstract name padded to the whole sun_path (108 bytes): the client pads too.
  const abstractName = `gantry-hostile-${process.pid}`;
  let connections = 0;
  beforeAll(async () => {
    http = createHttpServer((_, res) => res.end('host-loopback-secret\n'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    port = (http.address() as { port: number }).port;
    abstract = createNetServer((s) => {
      connections++;
      s.end('abstract-secret\n');
    });
    await new Promise<void>((resolve) => abstract.listen({ path: `\0${abstractName}` }, resolve));
  });
  afterAll(() => {
    http?.close();
    abstract?.close();
  });

  test('by default RUN reaches neither the host 127.0.0.1 nor its slirp alias; --network=host needs --allow network.host, and then works', async () => {
    if (!ready) return;
    // busybox-static's wget crashes (Debian 12), so HTTP by hand through nc.
    const fetch = (hostPort: string, tag: string) => `printf "GET / HTTP/1.0\\r\\n\\r\\n" | busybox nc -w 5 ${hostPort.replace(':', ' ')} | busybox grep secret || echo ${tag}-unreachable`;
    const ctx = context([
      'FROM bb:1',
      `RUN ${fetch(`127.0.0.1:${port}`, 'loopback')}`,
      `RUN ${fetch(`10.0.2.2:${port}`, 'alias')}`,
      'RUN busybox cat /proc/net/dev | busybox tail -n +3 | busybox cut -d: -f1 | busybox tr -d " " | busybox tr "\\n" " "; echo',
    ]);
    const r = await build(ctx);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('loopback-unreachable');
    expect(r.printed).toContain('alias-unreachable');
    expect(r.printed).toContain('lo eth0 ');
    expect(r.stderr).not.toContain('host-loopback-secret');

    const hostCtx = context(['FROM bb:1', `RUN --network=host ${fetch(`127.0.0.1:${port}`, 'loopback')}`]);
    const refused = await build(hostCtx);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('network.host');
    expect(refused.stderr).toContain('--allow network.host');
    const allowed = await build(hostCtx, ['--allow', 'network.host']);
    expect(allowed.exitCode, allowed.stderr).toBe(0);
    expect(allowed.printed).toContain('host-loopback-secret'); // the positive control: the service answers
    const wide = await build(context(['FROM bb:1', `RUN ${fetch(`127.0.0.1:${port}`, 'loopback')}`]), ['--network', 'host', '--allow', 'network.host']);
    expect(wide.exitCode, wide.stderr).toBe(0);
    expect(wide.printed).toContain('host-loopback-secret');
  });

  test('by default RUN cannot connect to a host abstract unix socket; with host networking it can', async () => {
    if (!debian) return;
    const connect = `perl -MSocket -e 'socket(my $s, PF_UNIX, SOCK_STREAM, 0) or die; if (connect($s, pack_sockaddr_un("\\0${abstractName}" . ("\\0" x ${107 - abstractName.length})))) { print "connected: ", scalar <$s> } else { print "abstract-refused\\n" }'`;
    const r = await build(context(['FROM debian:hostile', `RUN ${connect}`]));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('abstract-refused');
    expect(connections).toBe(0);
    const host = await build(context(['FROM debian:hostile', `RUN --network=host ${connect}`]), ['--allow', 'network.host']);
    expect(host.exitCode, host.stderr).toBe(0);
    expect(host.printed).toContain('connected: abstract-secret');
    expect(connections).toBe(1);
  });

  test('--network=none has loopback only, and it is up', async () => {
    if (!ready) return;
    const r = await build(context(['FROM bb:1', 'RUN --network=none busybox sh -c "busybox cat /proc/net/dev | busybox tail -n +3 | busybox cut -d: -f1 | busybox tr -d \' \'; busybox ip link show lo | busybox grep -o UP | busybox head -1"']));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('lo');
    expect(r.printed).not.toContain('eth0');
    expect(r.printed).toContain('UP');
  });
});

describe('secrets and the store', () => {
  test('a secret passed as env= is in the RUN environment and on no command line of any process', async () => {
    if (!ready) return;
    const value = `tok-${Math.random().toString(36).slice(2)}-${Date.now()}`;
    const secretFile = path.join(work, 'token');
    writeFileSync(secretFile, value, { mode: 0o600 });
    const ctx = context(['FROM bb:1', 'RUN --mount=type=secret,id=tok,env=TOKEN busybox sh -c "echo token-length-${#TOKEN}; echo running; busybox sleep 5"']);
    const child = execa(bin, ['--root', store, 'build', '--no-cache', '--progress', 'plain', '--secret', `id=tok,src=${secretFile}`, ctx], { reject: false });
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      let buf = '';
      child.stderr?.on('data', (d: Buffer) => {
        buf += d.toString();
        if (/^#\d+ running$/m.test(buf)) {
          // The RUN is running now: read every process's command line.
          for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
            try {
              if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(value)) seen.push(pid);
            } catch {
              // gone
            }
          }
          resolve();
        }
      });
      void child.then(() => resolve());
    });
    const r = await child;
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain(`token-length-${value.length}`);
    expect(seen).toEqual([]);
  });

  test('the store directories that hold trees and cache mounts are the owner\'s only (0700); nobody cannot reach a setuid file there', async () => {
    if (!ready) return;
    const ctx = context(['FROM bb:1', 'RUN --mount=type=cache,target=/cache busybox cp /bin/busybox /cache/sbox && busybox chmod 4755 /cache/sbox && busybox cp /bin/busybox /suid && busybox chmod 4755 /suid']);
    // With the cache (a --no-cache build's cache mounts are new ones in its work area, gone after it).
    const r = await g(['build', '--progress', 'plain', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const d of ['tmp', 'rootfs', 'cache-mounts', 'trash']) {
      expect((statSync(path.join(store, d)).mode & 0o777).toString(8), d).toBe('700');
    }
    // An earlier gantry's wider modes are closed when the store is opened.
    chmodSync(path.join(store, 'cache-mounts'), 0o755);
    await g(['images']);
    expect((statSync(path.join(store, 'cache-mounts')).mode & 0o777).toString(8)).toBe('700');
    // The positive control: root reaches the setuid copy; nobody does not.
    const mounts = path.join(store, 'cache-mounts');
    const [id] = readdirSync(mounts);
    const sbox = path.join(mounts, id as string, 'sbox');
    expect(statSync(sbox).mode & 0o4000).toBe(0o4000);
    const asNobody = await execa('runuser', ['-u', 'nobody', '--', sbox, 'true'], { reject: false });
    expect(asNobody.exitCode).not.toBe(0);
    expect(asNobody.stderr).toMatch(/Permission denied/);
  });
});

describe('what must still work', () => {
  test('setuid programs, USER switching, chown and supplementary groups inside the RUN; HOME and the hostname as BuildKit', async () => {
    if (!debian) return;
    const ctx = context([
      'FROM debian:hostile',
      'RUN useradd -m -u 1500 app && cp /usr/bin/id /usr/local/bin/sid && chmod 4755 /usr/local/bin/sid && mkdir /data && chown app:app /data',
      'USER app',
      'RUN sid; echo home=$HOME; id -G; touch /data/mine && stat -c "%u:%g" /data/mine',
      'USER root',
      'RUN echo root-home=$HOME; hostname; hostname -f; cat /etc/hosts; chown 1500:1500 /data && echo chowned',
    ]);
    const r = await build(ctx);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('uid=1500(app) gid=1500(app) euid=0(root) groups=1500(app)');
    expect(r.printed).toContain('home=/home/app');
    expect(r.printed).toContain('1500:1500');
    expect(r.printed).toContain('root-home=/root');
    expect(r.printed).toContain('buildkitsandbox');
    expect(r.printed).toContain('127.0.0.1\tlocalhost buildkitsandbox');
    expect(r.printed).toContain('chowned');
  });

  test('apt-get install works through the default network', async () => {
    if (!debian) return;
    const r = await build(context(['FROM debian:hostile', 'RUN apt-get update -qq && apt-get install -y -qq hello >/dev/null && hello']));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.printed).toContain('Hello, world!');
  }, 300_000);
});

describe('the host programs that start a RUN', () => {
  test.each(['chroot', 'oci'] as const)('an image\'s BASH_ENV is the RUN\'s, never run on the host, with a descriptor gantry inherited (%s)', async (isolation) => {
    if (!ready) return;
    const pwned = path.join(work, `pwned-${isolation}`);
    const ctx = context(['FROM bb:1', `ENV BASH_ENV="$(touch ${pwned})" X=2`, 'RUN echo "seen: $BASH_ENV $X"']);
    // Descriptor 3, open without close-on-exec (as make's jobserver passes one): gantry's
    // launcher closes it with the host's bash, which must not read the image's environment.
    const r = await execa(bin, ['--root', store, 'build', '--no-cache', '--progress', 'plain', '--isolation', isolation, ctx], { reject: false, timeout: 120_000, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stderr)).toContain(`seen: $(touch ${pwned}) 2`);
    expect(existsSync(pwned)).toBe(false);
  });
});

describe('entitlements gantry does not grant', () => {
  test('RUN --security=insecure is refused, never run sandboxed as if it were; --allow security.insecure is refused', async () => {
    if (!ready) return;
    const ctx = context(['FROM bb:1', 'RUN --security=insecure busybox grep CapEff /proc/self/status']);
    const r = await build(ctx);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Dockerfile:2');
    expect(r.stderr).toContain('security.insecure');
    const allow = await build(ctx, ['--allow', 'security.insecure']);
    expect(allow.exitCode).toBe(2);
    expect(allow.stderr).toContain('network.host');
    // The positive control: without the flag the same RUN runs.
    const plain = await build(context(['FROM bb:1', 'RUN busybox grep CapEff /proc/self/status']));
    expect(plain.exitCode, plain.stderr).toBe(0);
  });
});

describe('stopping', () => {
  test.each(['SIGINT', 'SIGTERM'] as const)('%s to gantry during a RUN ends every process of the RUN (a background one too) and leaves no mount', async (sig) => {
    if (!ready) return;
    const mark = String(800_000_000 + Math.floor(Math.random() * 99_999_999));
    const ctx = context(['FROM bb:1', `RUN (busybox sleep ${mark} &) ; echo running; busybox sleep ${Number(mark) + 1}`]);
    const child = execa(bin, ['--root', store, 'build', '--no-cache', '--progress', 'plain', ctx], { reject: false });
    let buf = '';
    let ended = false;
    try {
      await new Promise<void>((resolve) => {
        child.stderr?.on('data', (d: Buffer) => {
          buf += d.toString();
          if (/^#\d+ running$/m.test(buf)) resolve();
        });
        void child.then(() => {
          ended = true;
          resolve();
        });
      });
      expect(ended, `the build ended before its RUN printed "running":\n${buf}`).toBe(false);
      // The RUN is running, its background sleep too: both carry the mark (waited for: on a busy
      // machine the processes may trail the output that got here first).
      for (const until = Date.now() + 10_000; processesWith(mark).length === 0 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
      expect(processesWith(mark).length, buf).toBeGreaterThan(0);
    } finally {
      // Whatever failed above, the build goes: a live one would hold its overlay in the next test's way.
      child.kill(sig);
    }
    const r = await child;
    expect(r.exitCode === 0).toBe(false);
    expect(await waitForNoProcesses(mark, 10_000)).toEqual([]);
    // The RUN's own mounts went with its mount namespace; the build's overlay (in its temp
    // entry) is detached by the next command.
    const tmp = path.join(store, 'tmp');
    expect(mountsUnder(store).filter((m) => !(m.startsWith(`${tmp}/rootfs-`) && m.endsWith('/merged')))).toEqual([]);
    expect((await g(['images'])).exitCode).toBe(0);
    expect(mountsUnder(store)).toEqual([]);
  });
});
