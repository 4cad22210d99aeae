import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { commit, containers, from, run } from '../../src/index.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { gantry, suiteWorkDir } from '../helpers/gantry.js';
import { startOracle, type Oracle } from '../helpers/oracle.js';
import { haveTool } from '../helpers/tools.js';
import { runUnderCrun } from '../helpers/crun.js';

// Working containers end to end (issue 26): gantry from → run → cp → config → commit on the
// Debian base, the committed image run under crun and compared with `docker commit` of the
// same steps under Docker 28.5; run -it in a real terminal (tmux); the store's invariants
// (prune, rmi, fsck, a commit killed half way); cp against a container's hostile links.

const work = suiteWorkDir('gantry-containers-');
const root = path.join(work, 'store');
const g = (args: string[], env: Record<string, string> = {}) => gantry(['--root', root, ...args], { env, timeout: 10 * 60_000 });
const BASE = 'debian:containers';
let tarball: string | undefined;
let oracle: Oracle | undefined;

/** The steps both engines run in their container: files written and removed, a package installed from the Debian mirror. */
const STEPS = 'echo hi > /hello.txt && rm /etc/issue && apt-get update -qq && apt-get install -y -qq hello >/dev/null 2>&1';

const inspect = async (ref: string) => JSON.parse((await g(['inspect', ref])).stdout)[0];

interface LayerEntry {
  type: string;
  mode: string;
  owner: string;
  size: string;
}

/** The last layer of an image saved by `save -o` (a docker archive: manifest.json) as path → entry, with its config. */
function lastLayer(archive: string): { config: Record<string, unknown>; entries: Map<string, LayerEntry>; file: string } {
  const dir = `${archive}.d`;
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['xf', archive, '-C', dir]);
  const [m] = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { Config: string; Layers: string[] }[];
  if (!m) throw new Error(`${archive}: no image in manifest.json`);
  const config = JSON.parse(readFileSync(path.join(dir, m.Config), 'utf8')) as Record<string, unknown>;
  const file = path.join(dir, m.Layers[m.Layers.length - 1] as string);
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', file], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const entries = new Map<string, LayerEntry>();
  for (const line of listing.split('\n').filter(Boolean)) {
    // drwxr-xr-x 0/0 0 2026-12-06 10:05 usr/bin/  |  lrwxrwxrwx 0/0 0 ... name -> target
    const f = /^(\S)(\S{9}) (\d+\/\d+)\s+(\d+|\d+,\d+) \S+ \S+ (.*?)(?: -> .*| link to .*)?$/.exec(line);
    if (!f) throw new Error(`unreadable tar line: ${line}`);
    entries.set((f[5] as string).replace(/\/$/, ''), { type: f[1] as string, mode: f[2] as string, owner: f[3] as string, size: f[1] === 'd' ? '' : (f[4] as string) });
  }
  return { config, entries, file };
}

/** A member's bytes. */
const member = (layer: string, name: string): Buffer => execFileSync('tar', ['-xOf', layer, name], { maxBuffer: 256 << 20 });

/** What a layer holds other than directories (and the opaque markers of new ones): docker's diff also carries the parents of what changed. */
const files = (entries: Map<string, LayerEntry>) => new Map([...entries].filter(([p, e]) => e.type !== 'd' && !p.endsWith('.wh..wh..opq')));

beforeAll(async () => {
  tarball = debianBaseTarball();
  if (!tarball) return;
  const r = await g(['import', tarball, BASE, '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
  expect(r.exitCode, r.stderr).toBe(0);
  writeFileSync(path.join(work, 'host.txt'), 'from the host\n');
}, 15 * 60_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('working containers: from, run, cp, config, commit', () => {
  test('from → run (apt-get install) → cp → config → commit: the image runs its new CMD under crun; its layer holds exactly the change, as docker commit makes it', async () => {
    if (!tarball) return;
    expect((await g(['from', BASE, '--name', 'manual'])).stdout.trim()).toBe('manual');
    const ran = await g(['run', 'manual', '--', 'sh', '-c', STEPS]);
    expect(ran.exitCode, ran.stderr).toBe(0);
    expect((await g(['cp', path.join(work, 'host.txt'), 'manual:/root/'])).exitCode).toBe(0);
    const configured = await g(['config', 'manual', '--env', 'GREETING=hi', '--label', 'stage=manual', '--workingdir', '/srv', '--cmd', '["hello","-g","committed"]']);
    expect(configured.exitCode, configured.stderr).toBe(0);
    const ps = await g(['containers', '--format', '{{.Names}} {{.Image}} {{.Status}} {{.Command}}']);
    expect(ps.stdout).toMatch(/^manual debian:containers Exited \(0\) .* "sh -c echo hi/m);
    const committed = await g(['commit', 'manual', 'manual:1', '-a', 'A U Thor <author@example.com>', '-m', 'made by hand', '-c', 'EXPOSE 8080']);
    expect(committed.exitCode, committed.stderr).toBe(0);
    expect(committed.stdout.trim()).toMatch(/^sha256:[0-9a-f]{64}$/);

    const img = await inspect('manual:1');
    expect(img.Id).toBe(committed.stdout.trim());
    expect(img.Config).toMatchObject({ Cmd: ['hello', '-g', 'committed'], WorkingDir: '/srv', Labels: { stage: 'manual' }, ExposedPorts: { '8080/tcp': {} } });
    expect(img.Config.Env).toEqual([DEBIAN_PATH, 'GREETING=hi']);
    expect(img.Author).toBe('A U Thor <author@example.com>');
    const base = await inspect(BASE);
    expect(img.RootFS.Layers.slice(0, -1)).toEqual(base.RootFS.Layers);

    // The layer: what the steps made and removed, nothing of the base they left alone.
    const mine = path.join(work, 'manual.tar');
    expect((await g(['save', '-o', mine, 'manual:1'])).exitCode).toBe(0);
    const { config, entries } = lastLayer(mine);
    const history = config.history as { created_by?: string; comment?: string; author?: string }[];
    expect(history.at(-1)).toMatchObject({ created_by: `sh -c ${STEPS}`, comment: 'made by hand', author: 'A U Thor <author@example.com>' });
    expect(entries.get('hello.txt')).toMatchObject({ type: '-', owner: '0/0', size: '3' });
    expect(entries.get('root/host.txt')).toMatchObject({ type: '-', owner: '0/0', size: '14' });
    expect(entries.get('etc/.wh.issue')).toBeDefined();
    expect(entries.get('usr/bin/hello')).toMatchObject({ type: '-', mode: 'rwxr-xr-x' });
    expect(entries.has('usr/bin/bash')).toBe(false);
    expect(entries.has('etc/passwd')).toBe(false);

    // Run from the outside: umoci unpacks the store's image, crun runs its CMD in its WORKDIR.
    const crun = await runUnderCrun(root, 'docker.io/library/manual:1', path.join(work, 'manual-bundle'));
    expect(crun.config.process.cwd).toBe('/srv');
    expect(crun.stdout.trim(), crun.stderr).toBe('committed');

    // docker commit of the same steps, under Docker 28.5: the same files, the same config fields.
    oracle = startOracle('current');
    if (!oracle) return;
    const baseTar = path.join(work, 'base.tar');
    expect((await g(['save', '-o', baseTar, BASE])).exitCode).toBe(0);
    await oracle.docker(['load', '-i', baseTar]);
    const name = `gantry-commit-${process.pid}`;
    await oracle.docker(['rm', '-f', name]).catch(() => '');
    await oracle.docker(['run', '--network', 'host', '--name', name, BASE, 'sh', '-c', STEPS]);
    await oracle.docker(['cp', path.join(work, 'host.txt'), `${name}:/root/`]);
    const changes = ['ENV GREETING=hi', 'LABEL stage=manual', 'WORKDIR /srv', 'CMD ["hello","-g","committed"]', 'EXPOSE 8080'].flatMap((c) => ['-c', c]);
    await oracle.docker(['commit', '-a', 'A U Thor <author@example.com>', '-m', 'made by hand', ...changes, name, 'docker-manual:1']);
    const theirs = path.join(work, 'docker-manual.tar');
    await oracle.docker(['save', '-o', theirs, 'docker-manual:1']);
    await oracle.docker(['rm', '-f', name]);
    const docker = lastLayer(theirs);
    // Every file of gantry's layer is docker's, the same.
    const ours = files(entries);
    const dockers = files(docker.entries);
    // (A whiteout by its name: docker's archiver gives its header another mode, which no one reads.)
    for (const [p, e] of ours) expect(dockers.get(p), p).toEqual(path.posix.basename(p).startsWith('.wh.') ? { ...e, mode: dockers.get(p)?.mode } : e);
    // docker's layer also carries what its overlay copied up without changing it (a file apt
    // opened for writing: its lock file, debconf's databases): each of those is the base's, byte for byte.
    const baseLayer = lastLayer(baseTar);
    // And, after a docker cp, the files docker writes for a container's network (its own, not the change's).
    const dockerOwn = new Set(['etc/hostname', 'etc/hosts', 'etc/resolv.conf']);
    for (const [p, e] of dockers) {
      if (ours.has(p) || dockerOwn.has(p)) continue;
      expect(baseLayer.entries.get(p), `${p}: in docker's layer only, and not the base's`).toEqual(e);
      if (e.type === '-') expect(member(docker.file, p).equals(member(baseLayer.file, p)), `${p}: in docker's layer only, and changed`).toBe(true);
    }
    // Every directory gantry's layer carries (a new one, a changed mode) docker's carries too.
    for (const [p, e] of entries) if (e.type === 'd') expect(docker.entries.get(p), p).toMatchObject({ type: 'd', mode: e.mode, owner: e.owner });
    const fields = (c: Record<string, unknown>) => {
      const x = c.config as Record<string, unknown>;
      return { Env: x.Env, Cmd: x.Cmd, Entrypoint: x.Entrypoint ?? null, WorkingDir: x.WorkingDir ?? '', User: x.User ?? '', Labels: x.Labels ?? {}, ExposedPorts: x.ExposedPorts, author: c.author, os: c.os, architecture: c.architecture };
    };
    expect(fields(config)).toEqual(fields(docker.config));
    const entry = (c: Record<string, unknown>) => {
      const { created: _created, ...rest } = (c.history as Record<string, unknown>[]).at(-1) as Record<string, unknown>;
      return rest;
    };
    expect(entry(config)).toEqual(entry(docker.config));
    expect((config.rootfs as { diff_ids: string[] }).diff_ids.slice(0, -1)).toEqual((docker.config.rootfs as { diff_ids: string[] }).diff_ids.slice(0, -1));
  }, 15 * 60_000);

  test('commit without a name makes a dangling image; nothing changed makes an empty_layer entry; rm removes the container', async () => {
    if (!tarball) return;
    const name = (await g(['from', BASE])).stdout.trim();
    expect(name).toMatch(/^debian-working-container(-\d+)?$/);
    const before = (await g(['images', '-q', '--filter', 'dangling=true'])).stdout.trim().split('\n').filter(Boolean);
    const c = await g(['commit', name]);
    expect(c.exitCode, c.stderr).toBe(0);
    const dangling = (await g(['images', '-q', '--no-trunc', '--filter', 'dangling=true'])).stdout.trim().split('\n').filter(Boolean);
    expect(dangling).toContain(c.stdout.trim());
    expect(dangling.length).toBe(before.length + 1);
    const img = await inspect(c.stdout.trim());
    expect(img.RootFS.Layers).toEqual((await inspect(BASE)).RootFS.Layers);
    expect(img.History ?? (await g(['history', '--format', 'json', c.stdout.trim()])).stdout).toBeDefined();
    const rows = JSON.parse((await g(['history', '--format', 'json', c.stdout.trim()])).stdout) as { size: number }[];
    expect(rows[0]?.size).toBe(0);
    const byDigest = await g(['commit', name, `x@sha256:${'0'.repeat(64)}`]);
    expect(byDigest.exitCode).not.toBe(0);
    expect(byDigest.stderr).toMatch(/a digest reference cannot name it/);
    // rm of several: an unknown one is said, the others go.
    const rm = await g(['rm', 'no-such-container', name]);
    expect(rm.exitCode).toBe(1);
    expect(rm.stdout.trim()).toBe(name);
    expect(rm.stderr).toMatch(/no such container: no-such-container/);
    expect((await g(['containers', '-q'])).stdout).not.toContain(name);
    // The unnamed commit is dangling: plain prune removes it (its container is gone).
    expect((await g(['prune'])).exitCode).toBe(0);
    expect((await g(['images', '-q', '--no-trunc', '--filter', 'dangling=true'])).stdout).not.toContain(c.stdout.trim());
    const again = await g(['run', name, '--', 'true']);
    expect(again.exitCode).not.toBe(0); // not a container any more: an image name, which no registry has
  });

  test('run of an image: docker run\'s command, entrypoint and environment; --rm leaves no container; the exit code is the command\'s', async () => {
    if (!tarball) return;
    const before = (await g(['containers', '-q'])).stdout;
    const r = await g(['run', '--rm', '-e', 'EXTRA=1', '-w', '/tmp', BASE, 'sh', '-c', 'echo "$HOSTNAME $HOME $EXTRA $(pwd)"; exit 7']);
    expect(r.exitCode).toBe(7);
    expect(r.stdout.trim()).toMatch(/^[0-9a-f]{12} \/root 1 \/tmp$/);
    expect((await g(['containers', '-q'])).stdout).toBe(before);
    // Without --rm the container stays, named as asked, and runs again.
    const kept = await g(['run', '--name', 'kept', BASE, 'sh', '-c', 'echo one > /one']);
    expect(kept.exitCode, kept.stderr).toBe(0);
    const again = await g(['run', 'kept', 'cat', '/one']);
    expect(again.stdout.trim()).toBe('one');
    const dup = await g(['from', BASE, '--name', 'kept']);
    expect(dup.exitCode).toBe(1);
    expect(dup.stderr).toMatch(/"kept" is already in use/);
    expect((await g(['rm', 'kept'])).exitCode).toBe(0);
  });

  test('the Node API: from, run, commit', async () => {
    if (!tarball) return;
    const c = await from({ root, image: BASE, name: 'api' });
    expect(c.name).toBe('api');
    let out = '';
    const r = await run({ root, target: 'api', argv: ['sh', '-c', 'echo api > /api.txt; cat /api.txt'], onStdout: (d) => (out += d.toString()) });
    expect(r.exitCode).toBe(0);
    expect(out).toBe('api\n');
    const done = await commit({ root, container: 'api', reference: 'api:1', changes: ['CMD ["cat", "/api.txt"]'] });
    expect(done.name).toBe('docker.io/library/api:1');
    expect((await inspect('api:1')).Id).toBe(done.id);
    expect((await containers({ root })).find((x) => x.name === 'api')).toMatchObject({ state: 'exited', exitCode: 0, command: 'sh -c echo api > /api.txt; cat /api.txt' });
    expect((await g(['rm', 'api'])).exitCode).toBe(0);
  });
});

describe('run -it in a real terminal (tmux)', () => {
  test('a shell on a terminal of its own: /dev/pts/0, input typed, its exit status', async () => {
    if (!tarball) return;
    haveTool('tmux');
    const session = `gantry-it-${process.pid}`;
    const exitFile = path.join(work, 'it-exit');
    const before = (await g(['containers', '-q'])).stdout;
    const bin = path.join(path.dirname(path.dirname(import.meta.dirname)), 'bin', 'gantry');
    await execa('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '30', `${bin} --root ${root} run -it --rm ${BASE} bash; echo $? > ${exitFile}; sleep 600`]);
    const pane = async () => (await execa('tmux', ['capture-pane', '-p', '-t', session])).stdout;
    const waitFor = async (what: () => Promise<boolean>, ms = 60_000): Promise<void> => {
      for (const end = Date.now() + ms; !(await what()); ) {
        if (Date.now() > end) throw new Error(`timed out; the pane shows:\n${await pane()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await waitFor(async () => /root@[0-9a-f]{12}:\/#/.test(await pane()));
      await execa('tmux', ['send-keys', '-t', session, 'tty; echo $((6*7)); exit 4', 'Enter']);
      await waitFor(async () => existsSync(exitFile) && readFileSync(exitFile, 'utf8').trim() !== '');
      const text = await pane();
      expect(text).toMatch(/^\/dev\/pts\/0$/m);
      expect(text).toMatch(/^42$/m);
      expect(readFileSync(exitFile, 'utf8').trim()).toBe('4');
    } finally {
      await execa('tmux', ['kill-session', '-t', session], { reject: false });
    }
    expect((await g(['containers', '-q'])).stdout).toBe(before);
  });

  test('without -t, in a terminal, the command gets no terminal of gantry\'s: no descriptor of it, no /dev/tty to open', async () => {
    if (!tarball) return;
    haveTool('tmux');
    const session = `gantry-not-${process.pid}`;
    const out = path.join(work, 'not-tty');
    const bin = path.join(path.dirname(path.dirname(import.meta.dirname)), 'bin', 'gantry');
    const probe = 'for fd in 0 1 2; do readlink /proc/self/fd/$fd; done; tty; (exec 3<>/dev/tty) 2>/dev/null && echo TTY-OPENED || echo no-tty';
    await execa('tmux', ['new-session', '-d', '-s', session, '-x', '120', '-y', '30', `${bin} --root ${root} run -i --rm ${BASE} sh -c '${probe}' > ${out} 2>&1; echo done >> ${out}; sleep 600`]);
    try {
      for (const end = Date.now() + 60_000; !(existsSync(out) && readFileSync(out, 'utf8').includes('done')); ) {
        if (Date.now() > end) throw new Error(`timed out: ${existsSync(out) ? readFileSync(out, 'utf8') : ''}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await execa('tmux', ['kill-session', '-t', session], { reject: false });
    }
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    // Standard input (-i) and output are pipes (Node's socket pairs) gantry relays; the terminal is never handed over.
    expect(lines.slice(0, 3).every((l) => /^(pipe|socket):\[\d+\]$/.test(l)), lines.join('\n')).toBe(true);
    expect(lines).toContain('not a tty');
    expect(lines).toContain('no-tty');
  });

  test('-t without a terminal is refused, as docker', async () => {
    if (!tarball) return;
    const r = await g(['run', '-t', '--rm', BASE, 'true']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/not a TTY/);
  });
});

describe('containers in the store\'s invariants', () => {
  test('rmi refuses the last name of a container\'s image unless forced; prune keeps the image while the container is there; fsck knows containers', async () => {
    if (!tarball) return;
    expect((await g(['tag', BASE, 'held:1'])).exitCode).toBe(0);
    // A base of its own (a layer more), so that what prune removes is only this image's.
    expect((await g(['from', 'held:1', '--name', 'mk'])).exitCode).toBe(0);
    await g(['run', 'mk', 'sh', '-c', 'echo held > /held']);
    const made = await g(['commit', 'mk', 'held:2']);
    expect(made.exitCode).toBe(0);
    await g(['rm', 'mk']);
    const heldLayer = (await inspect('held:2')).RootFS.Layers.at(-1) as string;
    expect((await g(['from', 'held:2', '--name', 'holder'])).exitCode).toBe(0);
    const refused = await g(['rmi', 'held:2']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toMatch(/container [0-9a-f]{12} \(holder\) is using its referenced image/);
    expect((await g(['rmi', '-f', 'held:2'])).exitCode).toBe(0);
    expect((await g(['prune', '--all'])).exitCode).toBe(0);
    const blob = path.join(root, 'blobs', 'sha256', heldLayer.slice(7));
    expect(existsSync(blob)).toBe(true);
    // system df: the container and the unnamed image it holds are the Containers row's, not unused blobs.
    const df = JSON.parse((await g(['system', 'df', '--format', 'json'])).stdout) as { rows: { type: string; total: number; size: number }[]; containers: { name: string; size: number }[] };
    expect(df.rows.find((r) => r.type === 'Containers')?.total).toBeGreaterThanOrEqual(1);
    expect(df.containers.find((c) => c.name === 'holder')?.size).toBeGreaterThan(1_000_000);
    expect(df.rows.find((r) => r.type === 'Unused blobs')?.total).toBe(0);
    expect((await g(['system', 'df', '-v'])).stdout).toMatch(/Containers space usage:[\s\S]*holder/);
    const fsck = await g(['fsck']);
    expect(fsck.exitCode, fsck.stdout + fsck.stderr).toBe(0);
    // The container still commits: its image is whole.
    expect((await g(['commit', 'holder', 'held:3'])).exitCode).toBe(0);
    expect((await g(['rm', 'holder'])).exitCode).toBe(0);
    await g(['rmi', 'held:3']);
    expect((await g(['prune', '--all'])).exitCode).toBe(0);
    expect(existsSync(blob)).toBe(false);
    // A container whose record is damaged is reported by fsck.
    expect((await g(['from', BASE, '--name', 'broken'])).exitCode).toBe(0);
    const dir = readdirSync(path.join(root, 'containers')).find((d) => /^[0-9a-f]{64}$/.test(d) && readFileSync(path.join(root, 'containers', d, 'container.json'), 'utf8').includes('"broken"')) as string;
    rmSync(path.join(root, 'containers', dir, 'base.bin'));
    const bad = await g(['fsck']);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stdout + bad.stderr).toMatch(/base\.bin/);
    expect((await g(['commit', 'broken'])).stderr).toMatch(/cannot be told; make a new container/);
    expect((await g(['rm', 'broken'])).exitCode).toBe(0);
    expect((await g(['fsck'])).exitCode).toBe(0);
  }, 5 * 60_000);

  test('the build cache\'s collection keeps the built layers of an image a container holds, named or not', async () => {
    if (!tarball) return;
    const ctx = path.join(work, 'built-ctx');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${BASE}\nRUN echo built > /built\n`);
    expect((await g(['build', '-t', 'built:1', ctx])).exitCode).toBe(0);
    const layer = (await inspect('built:1')).RootFS.Layers.at(-1) as string;
    expect((await g(['from', 'built:1', '--name', 'onbuilt'])).exitCode).toBe(0);
    expect((await g(['rmi', '-f', 'built:1'])).exitCode).toBe(0);
    expect((await g(['prune'])).exitCode).toBe(0);
    // A build over a budget of one byte: its end collects every cache entry and the layers only they keep.
    writeFileSync(path.join(ctx, 'Dockerfile'), `FROM ${BASE}\nRUN echo other > /other\n`);
    const over = await g(['build', '-t', 'other:1', ctx], { GANTRY_STORE_BUDGET: '1' });
    expect(over.exitCode, over.stderr).toBe(0);
    expect(existsSync(path.join(root, 'blobs', 'sha256', layer.slice(7)))).toBe(true);
    expect((await g(['commit', 'onbuilt', 'onbuilt:1'])).exitCode).toBe(0);
    expect((await g(['fsck'])).exitCode).toBe(0);
    await g(['rm', 'onbuilt']);
  });

  test('a commit killed (SIGKILL) after its image is written names nothing and leaves the store consistent; the next commit works', async () => {
    if (!tarball) return;
    expect((await g(['from', BASE, '--name', 'killed'])).exitCode).toBe(0);
    await g(['run', 'killed', 'sh', '-c', 'echo x > /x']);
    const images = (await g(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout;
    for (const point of ['commit-layer-written', 'commit-image-written']) {
      const r = await execa(path.join(path.dirname(path.dirname(import.meta.dirname)), 'bin', 'gantry'), ['--root', root, 'commit', 'killed', 'killed:1'], { reject: false, env: { GANTRY_CRASH_AT: point } });
      expect(r.signal, `${point}: ${r.stderr}`).toBe('SIGKILL');
      expect((await g(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}'])).stdout).toBe(images);
      const fsck = await g(['fsck']);
      expect(fsck.exitCode, fsck.stdout + fsck.stderr).toBe(0);
    }
    const ok = await g(['commit', 'killed', 'killed:1']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect((await inspect('killed:1')).Id).toBe(ok.stdout.trim());
    await g(['rm', 'killed']);
  });
});

describe('cp with a container\'s hostile links', () => {
  test('into a container, through links to host paths: everything lands inside its tree; out of one, a link is copied as a link', async () => {
    if (!tarball) return;
    const victim = path.join(work, 'victim');
    mkdirSync(path.join(victim, 'sub'), { recursive: true });
    writeFileSync(path.join(victim, 'keep'), 'host\n');
    expect((await g(['from', BASE, '--name', 'evil'])).exitCode).toBe(0);
    // Links a hostile image (or a RUN) could leave: absolute, to the victim's host path, and climbing.
    const made = await g(['run', 'evil', 'sh', '-c', `mkdir -p ${victim}/sub && ln -s ${victim} /abs && mkdir /d && ln -s ${victim}/sub /d/sub && ln -s ../../../../../../../.. /climb`]);
    expect(made.exitCode, made.stderr).toBe(0);
    const src = path.join(work, 'src');
    mkdirSync(path.join(src, 'sub'), { recursive: true });
    writeFileSync(path.join(src, 'sub', 'planted'), 'x\n');
    writeFileSync(path.join(src, 'file'), 'x\n');
    expect((await g(['cp', path.join(src, 'file'), 'evil:/abs/'])).exitCode).toBe(0);
    expect((await g(['cp', path.join(src, 'file'), `evil:/climb${victim}/climbed`])).exitCode).toBe(0);
    expect((await g(['cp', `${src}/.`, 'evil:/d'])).exitCode).toBe(0);
    expect(readdirSync(victim).sort()).toEqual(['keep', 'sub']);
    expect(readdirSync(path.join(victim, 'sub'))).toEqual([]);
    // A directory copied over the link /d/sub replaces the link, as docker cp's unpacking does.
    const inside = await g(['run', 'evil', 'sh', '-c', `cat ${victim}/file ${victim}/climbed /d/sub/planted; test -d /d/sub && ! test -L /d/sub && echo replaced`]);
    expect(inside.stdout).toBe('x\nx\nx\nreplaced');
    // Out: /abs is a link, copied as the link; its target is not read.
    const out = path.join(work, 'out');
    mkdirSync(out);
    expect((await g(['cp', 'evil:/abs', out])).exitCode).toBe(0);
    expect(lstatSync(path.join(out, 'abs')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(path.join(out, 'abs'))).toBe(victim);
    // The host side is the caller's: a link to a directory there is followed, as docker cp.
    mkdirSync(path.join(work, 'real'));
    symlinkSync(path.join(work, 'real'), path.join(work, 'via'));
    expect((await g(['cp', 'evil:/d/file', path.join(work, 'via')])).exitCode).toBe(0);
    expect(readFileSync(path.join(work, 'real', 'file'), 'utf8')).toBe('x\n');
    // A missing host directory, and a file where a directory is: errors that say so (exit 1, no stack trace).
    const missing = await g(['cp', 'evil:/d/file', path.join(work, 'no', 'such', 'dir', 'f')]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toMatch(/no such directory/);
    mkdirSync(path.join(work, 'clash', 'file'), { recursive: true });
    const clash = await g(['cp', 'evil:/d/.', path.join(work, 'clash')]);
    expect(clash.exitCode, clash.stderr).toBe(1);
    expect(clash.stderr).toMatch(/^error: cp evil:\/d\/\. /m);
    expect(clash.stderr).not.toMatch(/at .*\.js:\d+/);
    // A device in the container is refused, not copied.
    await g(['run', 'evil', 'sh', '-c', 'mkdir /devs && mknod /devs/null c 1 3']);
    const dev = await g(['cp', 'evil:/devs', path.join(work, 'devs')]);
    expect(dev.exitCode).toBe(1);
    expect(dev.stderr).toMatch(/device, FIFO or socket/);
    expect((await g(['rm', 'evil'])).exitCode).toBe(0);
  });
});
