import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { applyConfigChanges, commitConfig, runEnv } from '../../src/builder/containers.js';
import { runLine } from '../../src/cli/commands/containers.js';
import type { ImageConfig } from '../../src/oci/types.js';
import { findContainer, freeName, listContainers, withContainerLock, writeRecord, type ContainerRecord } from '../../src/store/containers.js';
import type { Store } from '../../src/store/store.js';

const base: ImageConfig = {
  architecture: 'amd64',
  os: 'linux',
  author: 'base author',
  config: { Env: ['PATH=/bin', 'A=1'], Cmd: ['bash'], Labels: { keep: 'yes', drop: 'me' }, WorkingDir: '/app' },
  rootfs: { type: 'layers', diff_ids: ['sha256:' + 'a'.repeat(64)] },
  history: [{ created_by: 'base' }],
};

describe('run: the command line, read as docker run reads it', () => {
  test('everything after the target is the command, options included', () => {
    expect(runLine(['run', 'img', 'ls', '-l'])).toEqual(['run', 'img', '--', 'ls', '-l']);
    expect(runLine(['--root', 'r', 'run', '-e', 'A=1', '--rm', '-it', 'img', 'sh', '-c', 'x'])).toEqual(['--root', 'r', 'run', '-e', 'A=1', '--rm', '-it', 'img', '--', 'sh', '-c', 'x']);
    expect(runLine(['run', '--name', 'n', 'img'])).toEqual(['run', '--name', 'n', 'img']);
    expect(runLine(['run', 'c', '--', 'echo', '--'])).toEqual(['run', 'c', '--', 'echo', '--']);
    expect(runLine(['run', '-w', '/tmp', 'c', '-e', 'x'])).toEqual(['run', '-w', '/tmp', 'c', '--', '-e', 'x']);
  });
});

describe('run: the environment, as docker run makes it', () => {
  test('PATH when the config has none, HOSTNAME, HOME, TERM with a terminal; the config, then -e', () => {
    expect(runEnv([], [], { hostname: 'abc', home: '/root', tty: false })).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=abc', 'HOME=/root']);
    const env = runEnv(['PATH=/opt/bin', 'HOME=/home/x', 'A=1'], ['A=2', 'B=3'], { hostname: 'h', home: '/root', tty: true });
    expect(env).toEqual(['PATH=/opt/bin', 'HOSTNAME=h', 'HOME=/home/x', 'A=2', 'TERM=xterm', 'B=3']);
  });

  test('-e KEY takes this process\'s value, or is left out', () => {
    process.env.GANTRY_TEST_PASSED = 'yes';
    try {
      const env = runEnv([], ['GANTRY_TEST_PASSED', 'GANTRY_TEST_UNSET_VARIABLE'], { hostname: 'h', home: '/', tty: false });
      expect(env).toContain('GANTRY_TEST_PASSED=yes');
      expect(env.some((kv) => kv.startsWith('GANTRY_TEST_UNSET_VARIABLE'))).toBe(false);
    } finally {
      delete process.env.GANTRY_TEST_PASSED;
    }
  });
});

describe('config: buildah config\'s changes, and commit -c', () => {
  test('env and labels set by key, KEY- removes; cmd and entrypoint as JSON or shell form; workingdir relative to the old one', () => {
    const c = applyConfigChanges(base, { env: ['A=2', 'B=1', 'PATH-'], labels: ['drop-', 'new=1'], cmd: '["run", "it"]', entrypoint: 'exec app', workingDir: 'sub', user: 'app' });
    expect(c.config).toEqual({ Env: ['A=2', 'B=1'], Labels: { keep: 'yes', new: '1' }, Cmd: ['run', 'it'], Entrypoint: ['/bin/sh', '-c', 'exec app'], WorkingDir: '/app/sub', User: 'app' });
    expect(base.config?.Env).toEqual(['PATH=/bin', 'A=1']); // nothing changed in place
    expect(applyConfigChanges(base, { cmd: '' }).config?.Cmd).toBeUndefined();
  });

  test('-c instructions over the config: words expanded with its environment, WORKDIR relative to its own, ENTRYPOINT clearing CMD', () => {
    const c = applyConfigChanges(base, { changes: ['ENV PATH=/app/bin:$PATH B=$A', 'WORKDIR sub', 'ENTRYPOINT ["e"]'] });
    expect(c.config).toMatchObject({ Env: ['PATH=/app/bin:/bin', 'A=1', 'B=1'], WorkingDir: '/app/sub', Entrypoint: ['e'], Cmd: null });
  });

  test('-c instructions: ENV and LABEL merged by key, EXPOSE added, CMD replaced', () => {
    const c = applyConfigChanges(base, { changes: ['ENV A=9 C=3', 'LABEL x=y', 'EXPOSE 80', 'CMD ["srv"]'] });
    expect(c.config).toMatchObject({ Env: ['PATH=/bin', 'A=9', 'C=3'], Labels: { keep: 'yes', drop: 'me', x: 'y' }, ExposedPorts: { '80/tcp': {} }, Cmd: ['srv'] });
  });

  test('a malformed env pair is an error naming it', () => {
    expect(() => applyConfigChanges(base, { env: ['NOEQUALS'] })).toThrow(/--env "NOEQUALS": give KEY=VALUE, or KEY- to remove one/);
    expect(() => applyConfigChanges(base, { changes: ['RUN true'] })).toThrow(/not a config instruction/);
  });
});

describe('commit: the image config', () => {
  const record = { config: base, runs: [{ argv: ['sh', '-c', 'echo 1'], exitCode: 0, started: '', finished: '' }, { argv: ['true'], exitCode: 0, started: '', finished: '' }] };

  test('the layer added, a history entry as docker commit\'s: created_by the commands run, comment, author', () => {
    const c = commitConfig(record, { created: '2026-01-01T00:00:00Z', diffId: 'sha256:' + 'b'.repeat(64), author: 'Me', message: 'hand made', changes: ['CMD ["x"]'] });
    expect(c.rootfs.diff_ids).toEqual(['sha256:' + 'a'.repeat(64), 'sha256:' + 'b'.repeat(64)]);
    expect(c.author).toBe('Me');
    expect(c.created).toBe('2026-01-01T00:00:00Z');
    expect(c.config?.Cmd).toEqual(['x']);
    expect(c.history?.at(-1)).toEqual({ created: '2026-01-01T00:00:00Z', author: 'Me', created_by: 'sh -c echo 1 && true', comment: 'hand made' });
  });

  test('nothing changed: no layer, an empty_layer entry; no -a: the base\'s author is not kept', () => {
    const c = commitConfig(record, { created: '2026-01-01T00:00:00Z' });
    expect(c.rootfs.diff_ids).toEqual(base.rootfs.diff_ids);
    expect(c.author).toBeUndefined();
    expect(c.history?.at(-1)).toMatchObject({ empty_layer: true });
  });
});

describe('the store\'s container records', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'gantry-containers-unit-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const store = { root, withLock: <T>(fn: () => Promise<T>) => fn() } as unknown as Store;
  const record = (id: string, name: string, created: string): ContainerRecord => ({
    id,
    name,
    image: { digest: 'sha256:' + 'c'.repeat(64), mediaType: 'application/vnd.oci.image.manifest.v1+json', id: 'sha256:' + 'd'.repeat(64), name: 'img:1' },
    created,
    config: base,
    runs: [],
  });

  test('found by name, by a unique ID prefix; an ambiguous prefix and an unknown name are errors; broken records are left out', async () => {
    const a = record('ab' + '0'.repeat(62), 'one', '2026-01-02T00:00:00Z');
    const b = record('ab' + '1'.repeat(62), 'two', '2026-01-01T00:00:00Z');
    for (const r of [a, b]) {
      mkdirSync(path.join(root, 'containers', r.id), { recursive: true });
      await writeRecord(store, r);
    }
    mkdirSync(path.join(root, 'containers', 'e'.repeat(64)));
    writeFileSync(path.join(root, 'containers', 'e'.repeat(64), 'container.json'), '{"id": 1}');
    expect(listContainers(store).map((r) => r.name)).toEqual(['two', 'one']);
    expect(findContainer(store, 'one').id).toBe(a.id);
    expect(findContainer(store, 'ab11').id).toBe(b.id);
    expect(() => findContainer(store, 'ab')).toThrow(/no such container/); // under 4 digits: a name
    expect(() => findContainer(store, 'ab00')).not.toThrow();
    expect(() => findContainer(store, 'abab')).toThrow(/no such container: abab/);
    const c = record('ab00' + '2'.repeat(60), 'three', '2026-01-03T00:00:00Z');
    mkdirSync(path.join(root, 'containers', c.id));
    await writeRecord(store, c);
    expect(() => findContainer(store, 'ab00')).toThrow(/matches 2 containers/);
    expect(freeName(store, 'one')).toBe('one-2');
    expect(freeName(store, 'four')).toBe('four');
  });

  test('one command at a time; a lock whose process is gone is taken over', async () => {
    const r = listContainers(store)[0] as ContainerRecord;
    await withContainerLock(store, r.name, 'run', async (held) => {
      expect(held.id).toBe(r.id);
      await expect(withContainerLock(store, r.name, 'commit', async () => 1)).rejects.toThrow(/in use by another gantry command/);
    });
    // A lock left by a process that is gone (pid 2^22 + 1 is above Linux's largest).
    writeFileSync(path.join(root, 'containers', `${r.id}.lock`), `4194305 ${(await import('../../src/store/work.js')).processHost()}\n`);
    expect(await withContainerLock(store, r.name, 'commit', async () => 'taken')).toBe('taken');
    // A lock that is not gantry's (no pid in it) is held, never taken over.
    writeFileSync(path.join(root, 'containers', `${r.id}.lock`), '');
    await expect(withContainerLock(store, r.name, 'commit', async () => 1)).rejects.toThrow(/in use/);
    rmSync(path.join(root, 'containers', `${r.id}.lock`));
  });
});
