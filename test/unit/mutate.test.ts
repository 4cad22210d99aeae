import { describe, expect, test } from 'vitest';
import { scratchConfig, withContainerConfig, withEnv, withHistory, withLabels } from '../../src/image/mutate.js';
import { configAfterStep } from '../../src/builder/config.js';
import type { ImageConfig } from '../../src/oci/types.js';
import { plan } from '../../src/index.js';

/** `o` frozen all the way down: a function that changes it throws. */
function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

const base = (): ImageConfig =>
  deepFreeze({
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin', 'A=1', 'B=2'], Labels: { a: '1' }, Cmd: ['sh'], OnBuild: ['RUN x'] },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [{ created_by: 'base' }],
  });

describe('image/mutate', () => {
  test('each function returns a new config and leaves its input as it was (the input is frozen)', () => {
    const b = base();
    expect(withEnv(b, 'A', '9').config?.Env).toEqual(['PATH=/bin', 'A=9', 'B=2']);
    expect(withEnv(b, 'C', '3').config?.Env).toEqual(['PATH=/bin', 'A=1', 'B=2', 'C=3']);
    expect(withLabels(b, { b: '2', a: 'x' }).config?.Labels).toEqual({ a: 'x', b: '2' });
    expect(withHistory(b, { created_by: 'next' }).history).toEqual([{ created_by: 'base' }, { created_by: 'next' }]);
    const without = withContainerConfig(b, { OnBuild: undefined, User: 'app' });
    expect(without.config).not.toHaveProperty('OnBuild');
    expect(without.config?.User).toBe('app');
    expect(b.config?.OnBuild).toEqual(['RUN x']);
  });

  test('the scratch config is BuildKit\'s empty image', () => {
    expect(scratchConfig({ os: 'linux', architecture: 'arm64' })).toEqual({
      architecture: 'arm64',
      os: 'linux',
      config: { WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    });
  });

  test('config-only steps make a new config, in order, without changing the one they start from', () => {
    const p = plan('FROM scratch\nENV A=2 C=3\nLABEL b=2\nEXPOSE 80/tcp\nVOLUME /data\nUSER app\nWORKDIR /w\nSTOPSIGNAL SIGINT\nENTRYPOINT ["run"]\nHEALTHCHECK NONE\nRUN true\n', { file: 'Dockerfile' });
    const state = { cmdSet: false };
    let image = base();
    const results: (ImageConfig | undefined)[] = [];
    for (const step of p.target.steps) {
      const r = configAfterStep(image, step, state);
      results.push(r);
      if (r) image = deepFreeze(r);
    }
    expect(results.at(-1)).toBeUndefined(); // RUN is not config-only
    expect(image.config).toEqual({
      Env: ['PATH=/bin', 'A=2', 'B=2', 'C=3'],
      Labels: { a: '1', b: '2' },
      Cmd: null, // ENTRYPOINT without a CMD of this build clears the base's
      OnBuild: ['RUN x'],
      ExposedPorts: { '80/tcp': {} },
      Volumes: { '/data': {} },
      User: 'app',
      WorkingDir: '/w',
      StopSignal: 'SIGINT',
      Entrypoint: ['run'],
      Healthcheck: { Test: ['NONE'] },
    });
    expect(base().config?.Env).toEqual(['PATH=/bin', 'A=1', 'B=2']);
  });
});
