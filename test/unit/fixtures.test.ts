import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { plan, type Step } from '../../src/plan/planner.js';
import { projectRoot } from '../helpers/conformance.js';

const fixture = (name: string) =>
  readFileSync(path.join(projectRoot, 'fixtures', 'dockerfiles', name, 'Dockerfile'), 'utf8');

describe('kitchen-sink fixture', () => {
  const p = plan(fixture('kitchen-sink'), { file: 'kitchen-sink/Dockerfile', platform: 'linux/arm64', buildPlatform: 'linux/amd64' });

  test('plans the needed stages, skips the unused one', () => {
    expect(p.stages.map((s) => s.name ?? s.index)).toEqual(['build', 'assets', 3]);
    expect(p.skippedStages).toEqual([{ index: 1, name: 'unused' }]);
    expect(p.images.sort()).toEqual(['debian:bookworm-slim', 'golang:1.22-bookworm']);
    expect(p.stages[0]?.platform).toBe('linux/amd64');
    expect(p.stages[2]?.platform).toBe('linux/arm64');
  });

  test('every instruction kind appears', () => {
    const ops = new Set(p.stages.flatMap((s) => s.steps.map((st: Step) => st.op)));
    expect([...ops].sort()).toEqual(
      ['arg', 'cmd', 'copy', 'entrypoint', 'env', 'expose', 'healthcheck', 'label', 'onbuild', 'run', 'shell', 'stopsignal', 'user', 'volume', 'workdir'].sort(),
    );
  });

  test('has no warnings (the syntax directive warning is skipped by # check)', () => {
    expect(p.warnings).toEqual([]);
  });

  test('build-stage ENV sees the target platform through re-declared ARGs', () => {
    const env = p.stages[0]?.steps.find((s) => s.op === 'env');
    expect(env?.op === 'env' && env.pairs).toEqual([
      { key: 'CGO_ENABLED', value: '0' },
      { key: 'GOOS', value: 'linux' },
      { key: 'GOARCH', value: 'arm64' },
    ]);
  });
});
