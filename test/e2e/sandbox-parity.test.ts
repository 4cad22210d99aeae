import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { oracleEnv } from '../helpers/oracle.js';
import { writeTree } from '../helpers/files.js';

// The environment inside RUN against current BuildKit (Docker 28.5, ../shared/tools/buildkit-oracle.sh):
// env, id and groups, hostname and `hostname -f`, /etc/hosts, the capability sets, resolv.conf,
// /dev, and every mount with its options. BuildKit builds with --network host (its engine here
// has no bridge); gantry with its default network: both see the host's resolvers.

const bin = path.join(projectRoot, 'bin', 'gantry');
const script = path.join(projectRoot, '..', 'shared', 'tools', 'buildkit-oracle.sh');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-sandbox-parity-'));
let env: NodeJS.ProcessEnv | undefined;
let tarball: string | undefined;
afterAll(() => rmSync(work, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(script)) {
    if (process.env.CI === 'true') throw new Error(`${script} is missing: the sandbox parity test needs it`);
    return;
  }
  tarball = debianBaseTarball();
  if (!tarball) return;
  // First start: a debootstrap and an install in a chroot, a few minutes.
  env = oracleEnv(script);
}, 20 * 60_000);

const DUMP = [
  'env | sort',
  'id',
  'id -G',
  'hostname',
  'hostname -f',
  'cat /etc/hosts',
  'grep Cap /proc/self/status',
  'cat /etc/resolv.conf',
  // /dev without times; every mount point with its options and file system type.
  'ls -la /dev | awk \'{print $1, $3, $4, $5, $NF}\'',
  'sed -E \'s/^([^ ]+ ){4}([^ ]+) ([^ ]+).* - ([^ ]+) .*/\\2 \\3 \\4/\' /proc/self/mountinfo | sort',
].join('; ');

/** The lines a RUN printed in plain progress, without BuildKit's timestamps; the first RUN's marker on. */
function printed(stderr: string, marker: string): string[] {
  const lines = stderr.split('\n').map((l) => l.replace(/^#\d+ (\d+\.\d+ )?/, ''));
  const out: string[] = [];
  let on = false;
  for (const l of lines) {
    if (l === `${marker}-begin`) on = true;
    else if (l === `${marker}-end`) on = false;
    else if (on) out.push(l);
  }
  return out;
}

test('RUN sees the same environment as under BuildKit 28: as root and as a USER with groups', async () => {
  if (!env || !tarball) return;
  const dockerfile = (from: string) =>
    [
      `FROM ${from}`,
      'RUN useradd -m app && usermod -aG mail,news app',
      `RUN echo root-begin; ${DUMP}; echo root-end`,
      'USER app',
      'RUN echo app-begin; env | sort; id; grep CapEff /proc/self/status; echo app-end',
    ].join('\n') + '\n';
  const tag = 'gantry-parity/debian:sandbox';
  const imported = await execa('docker', ['import', '-c', `ENV ${DEBIAN_PATH}`, tarball, tag], { env, reject: false });
  expect(imported.exitCode, imported.stderr).toBe(0);
  const bk = await execa('docker', ['build', '--no-cache', '--network', 'host', '--progress', 'plain', writeTree(path.join(work, 'bk'), { Dockerfile: dockerfile(tag) })], { env, reject: false });
  expect(bk.exitCode, bk.stderr).toBe(0);

  const store = path.join(work, 'store');
  const imp = await execa(bin, ['--root', store, 'import', tarball, 'debian:parity', '-c', `ENV ${DEBIAN_PATH}`], { reject: false });
  expect(imp.exitCode, imp.stderr).toBe(0);
  const g = await execa(bin, ['--root', store, 'build', '--no-cache', '--progress', 'plain', writeTree(path.join(work, 'g'), { Dockerfile: dockerfile('debian:parity') })], { reject: false });
  expect(g.exitCode, g.stderr).toBe(0);

  // The bind mounts' source device is printed by name in one and by number in the other: not
  // compared. crun adds /dev/core (a link to /proc/kcore, which is masked), and /dev's size grows
  // by its entry (docs/differences.md): that link alone is left out.
  const norm = (lines: string[]) =>
    lines
      .filter((l) => l !== 'lrwxrwxrwx root root 11 /proc/kcore')
      .map((l) => l.replace(/^(\/etc\/(hosts|resolv\.conf) \S+) \S+$/, '$1').replace(/^(drwxr-xr-x root root) \d+ \.$/, '$1 . (size)'));
  for (const marker of ['root', 'app']) {
    const ours = norm(printed(g.stderr, marker));
    const theirs = norm(printed(bk.stderr, marker));
    expect(theirs.length, `BuildKit printed nothing for ${marker}:\n${bk.stderr.slice(-3000)}`).toBeGreaterThan(2);
    expect(ours).toEqual(theirs);
  }
}, 600_000);
