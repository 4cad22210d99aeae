import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { runOracleScript } from '../helpers/oracle.js';

// The oracle engines are started by ../shared/tools' scripts, which give up after 60 s without an
// answer. A CI run on a busy machine failed that way (dockerd printed its first line after 61 s and
// answered a second later): the helper waits again, and restarts the engine once, before failing.

const dir = mkdtempSync(path.join(tmpdir(), 'gantry-oracle-script-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in script that fails `failures` times with `message`, then prints DOCKER_HOST; it logs every call. */
function fakeScript(name: string, failures: number, message: string): { script: string; calls: () => string[] } {
  const log = path.join(dir, `${name}.log`);
  const count = path.join(dir, `${name}.count`);
  writeFileSync(count, '0');
  const script = path.join(dir, `${name}.sh`);
  writeFileSync(
    script,
    [
      `echo "\${1:-start}" >> '${log}'`,
      `[ "\${1:-start}" = stop ] && exit 0`,
      `n=$(cat '${count}'); echo $((n + 1)) > '${count}'`,
      `if [ "$n" -lt ${failures} ]; then echo "oracle: ${message}" >&2; exit 1; fi`,
      `echo DOCKER_HOST=unix:///fake.sock`,
    ].join('\n'),
  );
  return { script, calls: () => readFileSync(log, 'utf8').trim().split('\n') };
}

test('an engine slow to answer is waited for again', () => {
  const { script, calls } = fakeScript('slow', 2, 'dockerd started but did not answer on /x.sock within 60 s');
  expect(runOracleScript(script)).toContain('DOCKER_HOST=unix:///fake.sock');
  expect(calls()).toEqual(['start', 'start', 'start']);
});

test('an engine that never answers is stopped and started once more, then the error is the script\'s', () => {
  const { script, calls } = fakeScript('hung', 10, 'dockerd 42 is running but does not answer on /x.sock');
  expect(() => runOracleScript(script, ['env'])).toThrow(/does not answer/);
  expect(calls()).toEqual(['env', 'env', 'env', 'env', 'stop', 'env']);
});

test('any other failure is not retried', () => {
  const { script, calls } = fakeScript('broken', 10, 'debootstrap failed');
  expect(() => runOracleScript(script)).toThrow(/debootstrap failed/);
  expect(calls()).toEqual(['start']);
});
