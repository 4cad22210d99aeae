import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { gantry, gantryArgv, suiteWorkDir, testUser } from '../helpers/gantry.js';
import { writeTree } from '../helpers/files.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { runUnderCrun } from '../helpers/crun.js';
import { haveTool } from '../helpers/tools.js';

// gantry build FROM a Debian base (debootstrap --variant=minbase, made offline by
// scripts/debian-base.sh) and a busybox base, both served by the real registry: every build
// store here starts empty and pulls its bases.

// GANTRY_TEST_USER (the `rootless` project of vitest.config.ts) runs every build here as a
// non-root user (test/helpers/gantry.ts); the seed store that makes and pushes the bases is
// root's either way.
const work = suiteWorkDir('gantry-debian-');
const root = path.join(work, 'store');
const g = (args: string[], env: Record<string, string> = {}) => gantry(['--root', root, ...args], { env });
let reg: TestRegistry | undefined;
let debian = '';
let multi = '';
let seedDir: string | undefined;

const context = (name: string, files: Record<string, string>): string => writeTree(path.join(work, name), files);

/** Until `ok()` holds (a file a process makes, say), with a deadline. */
async function waitFor(ok: () => boolean, ms = 20_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); ) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const inspect = async (ref: string, store = root) => JSON.parse((await gantry(['--root', store, 'inspect', ref])).stdout)[0];

/** Each layer of an image as `tar tv` lines, oldest first, from an OCI layout written by -o. */
async function layerListings(ref: string): Promise<string[][]> {
  const dir = path.join(work, `layout-${Math.random().toString(16).slice(2)}`);
  const r = await g(['save', '--format', 'oci', '-o', `${dir}.tar`, ref]);
  expect(r.exitCode, r.stderr).toBe(0);
  mkdirSync(dir);
  await execa('tar', ['xf', `${dir}.tar`, '-C', dir]);
  const index = JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8'));
  const blob = (d: string) => path.join(dir, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0].digest), 'utf8'));
  const out: string[][] = [];
  for (const l of manifest.layers as { digest: string }[]) {
    out.push((await execa('tar', ['tvf', blob(l.digest)])).stdout.split('\n'));
  }
  return out;
}

beforeAll(async () => {
  const tarball = debianBaseTarball();
  reg = await startRegistry();
  if (!tarball || !reg) return;
  debian = `${reg.host}/library/debian:bookworm`;
  multi = `${reg.host}/library/multi:1`;
  // A seed store makes the bases and pushes them; the build store starts empty.
  const seed = mkdtempSync(path.join(tmpdir(), 'gantry-debian-seed-'));
  seedDir = seed;
  const s = (args: string[]) => execa(path.join(projectRoot, 'bin', 'gantry'), ['--root', seed, ...args]);
  await s(['import', tarball, debian, '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
  await s(['push', debian]);
  // A two-platform index: Debian for linux/amd64, busybox (labelled as such) for linux/arm64.
  const busybox = tarDir(makeBusyboxRootfs(path.join(work, 'busybox-rootfs')), path.join(work, 'busybox.tgz'));
  await s(['import', '--platform', 'linux/arm64', busybox, 'bb-arm64:1', '-c', 'LABEL which=busybox-arm64']);
  const { Store } = await import('../../src/store/store.js');
  const store = await Store.open(seed);
  const desc = async (ref: string) => JSON.parse((await s(['inspect', ref])).stdout)[0].Descriptor;
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { ...(await desc(debian)), annotations: undefined, platform: { os: 'linux', architecture: 'amd64' } },
      { ...(await desc('bb-arm64:1')), annotations: undefined, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  };
  const blob = await store.writeJSON(index);
  await store.tag('docker.io/library/multi:1', { mediaType: index.mediaType, digest: blob.digest, size: blob.size });
  await store.releaseLease();
  await s(['push', 'multi:1', multi]);
}, 15 * 60_000);
afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
  if (seedDir) rmSync(seedDir, { recursive: true, force: true });
}, 300_000); // a rootless run leaves a plain tree of the Debian base per build: seconds to remove

describe('gantry build FROM Debian, pulled from the registry', () => {
  test('the base is pulled into an empty store; users by name, deletions as whiteouts, hard links in the layer', async () => {
    if (!reg) return;
    const ctx = context('app', {
      Dockerfile: [
        `FROM ${debian}`,
        'RUN useradd -m -u 1234 -s /bin/bash app',
        'COPY --chown=app:www-data site/ /var/www/',
        'COPY run.pid /var/run/app/run.pid',
        'RUN rm -rf /usr/share/doc/* /var/lib/dpkg/info && mkdir /var/lib/dpkg/info \\',
        ' && cp /usr/bin/dpkg /opt/tool && ln /opt/tool /opt/tool-hard && chmod 4755 /opt/tool',
        'USER app',
        'WORKDIR /home/app/data',
        'RUN echo "$(id -un):$(id -gn) in $(pwd)" > whoami',
      ].join('\n'),
      'site/index.html': '<p>hi</p>\n',
      'run.pid': '42\n',
    });
    const r = await g(['build', '--progress', 'plain', '-t', 'deb-app:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await g(['images', '--format', 'json'])).stdout).toContain(debian);

    const layers = await layerListings('deb-app:1');
    const all = layers.flat();
    const find = (name: string) => all.filter((l) => l.endsWith(` ${name}`) || l.includes(` ${name} `));
    // COPY --chown by name, resolved against the image's /etc/passwd and /etc/group (www-data is 33).
    expect(find('var/www/index.html')[0]).toMatch(/^-rw-r--r-- 1234\/33 /);
    // /var/run is a symlink to /run in Debian: the file lands under run/, inside the rootfs.
    expect(find('run/app/run.pid')).toHaveLength(1);
    expect(find('var/run/app/run.pid')).toHaveLength(0);
    const del = layers[3] as string[]; // base, useradd, COPY site, COPY pid, then the rm layer
    const rmLayer = layers.find((l) => l.some((x) => x.includes('usr/share/doc/.wh.'))) as string[];
    expect(rmLayer, del.join('\n')).toBeDefined();
    // A directory removed then made again is opaque; the hard link is stored as a link; setuid kept.
    expect(rmLayer.some((x) => x.includes('var/lib/dpkg/info/.wh..wh..opq'))).toBe(true);
    expect(rmLayer.some((x) => /^hrwsr-xr-x .* opt\/tool-hard link to opt\/tool$/.test(x) || /^hrwsr-xr-x .* opt\/tool link to opt\/tool-hard$/.test(x))).toBe(true);
    expect(rmLayer.some((x) => /^-rwsr-xr-x 0\/0 .* opt\/tool(-hard)?$/.test(x))).toBe(true);
    const exported = path.join(work, 'deb-app.tar');
    await g(['export', 'deb-app:1', '-o', exported]);
    expect((await execa('tar', ['xOf', exported, 'home/app/data/whoami'])).stdout).toBe('app:app in /home/app/data');
    const info = await inspect('deb-app:1');
    expect(info.Config.Env).toEqual([DEBIAN_PATH]);
    expect(info.Config.Cmd).toEqual(['bash']);
    expect(info.Config.User).toBe('app');
    expect(info.Config.WorkingDir).toBe('/home/app/data');
  });

  test('ONBUILD triggers of a base run first in the child (COPY from the child context, RUN), and are not inherited further', async () => {
    if (!reg) return;
    const baseName = `${reg.host}/team/onbuild-base:1`;
    const base = context('onbuild-base', {
      Dockerfile: [`FROM ${debian}`, 'ONBUILD COPY app.txt /app/', 'ONBUILD RUN cat /app/app.txt > /app/seen && echo "$PWD" >> /app/seen', 'WORKDIR /srv'].join('\n'),
    });
    const pushed = await g(['build', '--push', '-t', baseName, base]);
    expect(pushed.exitCode, pushed.stderr).toBe(0);
    const child = context('onbuild-child', { Dockerfile: `FROM ${baseName}\nRUN cat /app/seen > /child-saw\n`, 'app.txt': 'from the child\n' });
    const fresh = path.join(work, 'onbuild-store');
    const r = await gantry(['--root', fresh, 'build', '--progress', 'plain', '-t', 'child:1', child], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/ONBUILD|COPY app\.txt/);
    const out = path.join(work, 'child.tar');
    await gantry(['--root', fresh, 'export', 'child:1', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'child-saw'])).stdout).toBe('from the child\n/srv');
    expect((await inspect('child:1', fresh)).Config.OnBuild ?? []).toEqual([]);
    expect((await inspect(baseName, fresh)).Config.OnBuild).toHaveLength(2);
  });

  test('FROM --platform picks that image from a multi-platform index; --platform sets the target', async () => {
    if (!reg) return;
    const ctx = context('platform', {
      Dockerfile: [`FROM --platform=linux/arm64 ${multi} AS arm`, 'COPY note.txt /note.txt', `FROM ${multi}`, 'COPY --from=arm /note.txt /from-arm.txt'].join('\n'),
      'note.txt': 'arm64 stage\n',
    });
    const fresh = path.join(work, 'platform-store');
    const amd = await gantry(['--root', fresh, 'build', '-t', 'plat:amd', ctx], { reject: false });
    expect(amd.exitCode, amd.stderr).toBe(0);
    const info = await inspect('plat:amd', fresh);
    expect(info.Architecture).toBe('amd64');
    expect(info.Config.Labels ?? {}).not.toHaveProperty('which'); // the Debian image, not busybox
    const arm = await gantry(['--root', fresh, 'build', '--target', 'arm', '--platform', 'linux/arm64', '-t', 'plat:arm', ctx], { reject: false });
    expect(arm.exitCode, arm.stderr).toBe(0);
    const armInfo = await inspect('plat:arm', fresh);
    expect(armInfo.Architecture).toBe('arm64');
    expect(armInfo.Config.Labels).toEqual({ which: 'busybox-arm64' });
    // No warning when the platform was found; BuildKit's InvalidBaseImagePlatform when the base
    // (a single amd64 image) has none for it: the build goes on, the image says arm64 (as Docker 28.5).
    expect(arm.stderr).not.toContain('InvalidBaseImagePlatform');
    const single = context('platform-single', { Dockerfile: `FROM ${debian}\nCOPY note.txt /note.txt\n`, 'note.txt': 'x\n' });
    const mismatch = await gantry(['--root', fresh, 'build', '--platform', 'linux/arm64', '-t', 'plat:mismatch', single]);
    expect(mismatch.exitCode, mismatch.stderr).toBe(0);
    expect(mismatch.stderr).toContain(`Dockerfile:1:1: warning: InvalidBaseImagePlatform: Base image ${debian} was pulled with platform "linux/amd64", expected "linux/arm64" for current build`);
  });

  test('RUN --network=none sees only loopback; the default network is loopback and an eth0 (slirp4netns\'s tap, as Docker names a container\'s device); exec form, heredocs; no host descriptor leaks in', async () => {
    if (!reg) return;
    const ctx = context('net', {
      Dockerfile: [
        `FROM ${debian}`,
        'RUN --network=none sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \' \' > /none"',
        'RUN ["sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \' \' | sort | tr \'\\n\' \' \' > /default"]',
        'RUN <<EOF',
        'set -e',
        'echo "heredoc as $(id -u)" > /heredoc',
        'EOF',
        // Only stdin, stdout and stderr reach the command (ls lists its own fd 3 too): the
        // descriptor 99 this test hands to gantry without close-on-exec must not get in.
        'RUN ls /proc/self/fd | tr "\\n" " " > /fds',
      ].join('\n'),
    });
    const r = await execa('bash', ['-c', 'exec "$@" 99</dev/null', 'with-fd-99', ...gantryArgv(['--root', root, 'build', '-t', 'net:1', ctx])], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = path.join(work, 'net.tar');
    await g(['export', 'net:1', '-o', out]);
    const x = async (f: string) => (await execa('tar', ['xOf', out, f])).stdout.trim();
    expect(await x('none')).toBe('lo');
    expect(await x('default')).toBe('eth0 lo');
    expect(await x('heredoc')).toBe('heredoc as 0');
    expect(await x('fds')).toBe('0 1 2 3');
  });

  test('RUN --mount=type=ssh forwards an ssh-agent given with --ssh: the agent answers in the RUN, SSH_AUTH_SOCK names it, owner and mode as asked, nothing left in the layer', async () => {
    if (!reg) return;
    haveTool('ssh-agent');
    haveTool('ssh-add');
    haveTool('ssh-keygen');
    // The agent belongs to whoever runs gantry (the test user in the rootless project).
    const asUser = (cmd: string[]) => (testUser ? ['runuser', '-u', testUser, '--', ...cmd] : cmd);
    const agentDir = path.join(work, 'agent');
    mkdirSync(agentDir);
    if (testUser) execFileSync('chown', [testUser, agentDir]);
    const sock = path.join(agentDir, 'agent.sock');
    const [cmd, ...args] = asUser(['ssh-agent', '-D', '-a', sock]) as [string, ...string[]];
    const agent = execa(cmd, args, { reject: false });
    try {
      await waitFor(() => existsSync(sock));
      const [kcmd, ...kargs] = asUser(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'gantry-test', '-f', path.join(agentDir, 'key')]) as [string, ...string[]];
      await execa(kcmd, kargs);
      const [acmd, ...aargs] = asUser(['env', `SSH_AUTH_SOCK=${sock}`, 'ssh-add', '-q', path.join(agentDir, 'key')]) as [string, ...string[]];
      await execa(acmd, aargs);
      // The agent protocol by hand (perl-base is in the Debian base): REQUEST_IDENTITIES → IDENTITIES_ANSWER with one key.
      const ask = `perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ENV{SSH_AUTH_SOCK}) or die "connect: $!"; print $s pack("NC", 1, 11); read($s, $l, 4); read($s, $b, unpack("N", $l)); ($t, $n) = unpack("CN", $b); print "type=$t keys=$n\\n"'`;
      const ctx = context('ssh', {
        Dockerfile: [
          `FROM ${debian}`,
          `RUN --mount=type=ssh ${ask} > /agent && echo "$SSH_AUTH_SOCK" >> /agent && stat -c "%a %u:%g %F" /run/buildkit/ssh_agent.0 >> /agent`,
          `RUN --mount=type=ssh,id=other,target=/agent.sock,uid=1000,mode=0660 --mount=type=ssh ${ask} > /agent2 && echo "$SSH_AUTH_SOCK" >> /agent2 && stat -c "%a %u:%g" /agent.sock >> /agent2`,
          'RUN --mount=type=ssh,id=absent echo "not required: skipped" > /absent',
        ].join('\n'),
      });
      const r = await g(['build', '--ssh', `default=${sock}`, '--ssh', `other=${sock}`, '-t', 'ssh:1', ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      const out = path.join(work, 'ssh.tar');
      await g(['export', 'ssh:1', '-o', out]);
      const x = async (f: string) => (await execa('tar', ['xOf', out, f])).stdout.trim().split('\n');
      expect(await x('agent')).toEqual(['type=12 keys=1', '/run/buildkit/ssh_agent.0', '600 0:0 socket']);
      expect(await x('agent2')).toEqual(['type=12 keys=1', '/agent.sock', '660 1000:0']);
      expect(await x('absent')).toEqual(['not required: skipped']);
      const names = (await execa('tar', ['tf', out])).stdout.split('\n');
      expect(names.filter((n) => /^(run\/buildkit|agent\.sock)/.test(n))).toEqual([]);
      // A required agent that was not given stops the build, naming the flag.
      const req = context('ssh-required', { Dockerfile: `FROM ${debian}\nRUN --mount=type=ssh,required true\n` });
      const missing = await g(['build', req]);
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr).toContain('ssh agent "default" is required but was not given (--ssh default)');
    } finally {
      agent.kill();
    }
  });

  test('--ssh ID=KEYFILE loads the key into an agent of the build\'s own, stopped after the build; a key with a passphrase is a clear error', async () => {
    if (!reg) return;
    haveTool('ssh-agent');
    haveTool('ssh-add');
    haveTool('ssh-keygen');
    const keyDir = path.join(work, 'keys');
    mkdirSync(keyDir);
    const key = path.join(keyDir, 'id_ed25519');
    const locked = path.join(keyDir, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'gantry-key-file', '-f', key]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', locked]);
    if (testUser) execFileSync('chown', ['-R', testUser, keyDir]);
    const ask = `perl -MIO::Socket::UNIX -e '$s = IO::Socket::UNIX->new(Peer => $ENV{SSH_AUTH_SOCK}) or die "connect: $!"; print $s pack("NC", 1, 11); read($s, $l, 4); read($s, $b, unpack("N", $l)); ($t, $n) = unpack("CN", $b); print "type=$t keys=$n\\n"; print "named\\n" if $b =~ /gantry-key-file/'`;
    const ctx = context('ssh-key', { Dockerfile: `FROM ${debian}\nRUN --mount=type=ssh ${ask} > /agent\n` });
    // The build's agent lives in the temp directory the build is given: found there by its command line.
    const tmp = path.join(work, 'ssh-tmp');
    mkdirSync(tmp);
    if (testUser) execFileSync('chown', [testUser, tmp]);
    const agentCount = (): string => spawnSync('pgrep', ['-c', '-f', `ssh-agent -D -a ${tmp}/`], { encoding: 'utf8' }).stdout.trim();
    const agentsBefore = agentCount();
    expect(agentsBefore).toBe('0');
    const r = await g(['build', '--ssh', `default=${key}`, '-t', 'sshkey:1', ctx], { TMPDIR: tmp });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = path.join(work, 'sshkey.tar');
    await g(['export', 'sshkey:1', '-o', out]);
    expect((await execa('tar', ['xOf', out, 'agent'])).stdout.trim().split('\n')).toEqual(['type=12 keys=1', 'named']);
    // The build's agent is gone with the build.
    expect(agentCount()).toBe(agentsBefore);
    const bad = await g(['build', '--no-cache', '--ssh', `default=${locked}`, ctx], { TMPDIR: tmp });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.exitCode).not.toBe(70);
    expect(bad.stderr).toMatch(/cannot load .*locked into an ssh-agent: .*passphrase/s);
    expect(agentCount()).toBe(agentsBefore);
  });

  test('the oci and chroot isolations give the identical image', async () => {
    if (!reg) return;
    const ctx = context('iso', {
      Dockerfile: [`FROM ${debian}`, 'RUN useradd -u 1500 worker && mkdir -p /data && chown worker /data', 'USER worker', 'RUN echo hi > /data/hi && stat -c "%u:%g %a %n" /data/hi > /data/listing'].join('\n'),
    });
    const digests: string[] = [];
    for (const isolation of ['oci', 'chroot']) {
      const r = await g(['build', '--no-cache', '--isolation', isolation, '-t', `iso:${isolation}`, ctx], { SOURCE_DATE_EPOCH: '1700000000' });
      expect(r.exitCode, r.stderr).toBe(0);
      digests.push((await inspect(`iso:${isolation}`)).Descriptor.digest);
    }
    expect(digests[0]).toBe(digests[1]);
    const out = path.join(work, 'iso.tar');
    await g(['export', 'iso:oci', '-o', out]);
    // A non-root USER step writes as that user in both.
    expect((await execa('tar', ['xOf', out, 'data/listing'])).stdout).toBe('1500:1500 644 /data/hi');
  });

  test('file capabilities (security.capability xattrs) survive RUN setcap, COPY --from, cp -a and a stage rebuilt from cached layers', async () => {
    if (!reg) return;
    haveTool('setcap');
    haveTool('getcap');
    haveTool('umoci');
    const ctx = context('caps', {
      Dockerfile: [
        `FROM ${debian} AS build`,
        // The host's setcap: the Debian base has its library (libcap2) but not the tool.
        'COPY setcap /usr/local/sbin/setcap',
        'RUN cp /bin/true /usr/local/bin/capped && setcap cap_setuid,cap_net_raw+ep /usr/local/bin/capped',
        `FROM ${debian}`,
        'COPY --from=build /usr/local/bin/capped /usr/local/bin/',
        'RUN cp -a /usr/local/bin/capped /usr/local/bin/capped-copy && cp /usr/local/bin/capped /usr/local/bin/plain-copy',
      ].join('\n'),
    });
    writeFileSync(path.join(ctx, 'setcap'), readFileSync((await execa('sh', ['-c', 'command -v setcap'])).stdout.trim()), { mode: 0o755 });
    const r = await g(['build', '-t', 'caps:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    // Read from the outside: umoci applies gantry's layers itself.
    const bundle = path.join(work, 'caps-bundle');
    const unpack = await execa('umoci', ['unpack', '--image', `${root}:docker.io/library/caps:1`, bundle], { reject: false });
    expect(unpack.exitCode, unpack.stderr).toBe(0);
    const caps = async (p: string) => (await execa('getcap', [path.join(bundle, 'rootfs', p)])).stdout.replace(/^\S+\s+/, '').trim();
    expect(await caps('usr/local/bin/capped')).toBe('cap_setuid,cap_net_raw=ep');
    expect(await caps('usr/local/bin/capped-copy')).toBe('cap_setuid,cap_net_raw=ep');
    expect(await caps('usr/local/bin/plain-copy')).toBe('');
    // A new step after the cached ones: the build stage's rootfs is made again from its layers.
    writeFileSync(path.join(ctx, 'Dockerfile'), readFileSync(path.join(ctx, 'Dockerfile'), 'utf8') + '\nCOPY --from=build /usr/local/bin/capped /opt/again\n');
    const local = path.join(work, 'caps-local');
    const again = await g(['build', '-o', `type=local,dest=${local}`, ctx]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await execa('getcap', [path.join(local, 'opt/again')])).stdout).toMatch(/cap_setuid,cap_net_raw=ep/);
  });

  test('the Debian image runs: umoci unpack, crun, ENTRYPOINT in shell form through SHELL, as the USER', async () => {
    if (!reg) return;
    haveTool('umoci');
    haveTool('crun');
    const ctx = context('runme', {
      Dockerfile: [
        `FROM ${debian}`,
        'RUN useradd -u 1234 runner',
        'SHELL ["/bin/bash", "-c"]',
        'USER runner',
        'ENTRYPOINT echo "$(id -un) ${BASH_VERSION%%.*} $0"',
      ].join('\n'),
    });
    const r = await g(['build', '-t', 'runme:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect((await inspect('runme:1')).Config.Entrypoint).toEqual(['/bin/bash', '-c', 'echo "$(id -un) ${BASH_VERSION%%.*} $0"']);
    const run = await runUnderCrun(root, 'docker.io/library/runme:1', path.join(work, 'runme-bundle'));
    expect(run.config.process.user).toMatchObject({ uid: 1234, gid: 1234 });
    expect(run.stdout.trim(), run.stderr).toBe('runner 5 /bin/bash');
  });

  test('a base already in the store is not pulled again: the build works with the registry gone', async () => {
    if (!reg) return;
    await reg.stop();
    reg = undefined;
    const ctx = context('offline', { Dockerfile: `FROM ${debian}\nRUN echo offline > /offline\n` });
    const r = await g(['build', '--no-cache', '-t', 'offline:1', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
  });
});
