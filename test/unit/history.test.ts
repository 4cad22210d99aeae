import { describe, expect, test } from 'vitest';
import { createdBy, goDuration } from '../../src/build/history.js';
import { plan } from '../../src/plan/planner.js';

// History entries worded as BuildKit words them (docker history shows them side by side);
// the BuildKit parity suite checks the same against a real engine.

const steps = (text: string, buildArgs: Record<string, string> = {}) =>
  plan(text, { file: 'Dockerfile', buildArgs, baseImages: { img: { env: ['PATH=/bin'] } } }).stages.at(-1)!.steps;

describe('history created_by', () => {
  test('RUN lists the ARGs in scope (ENV wins, unset is empty), COPY drops its flags', () => {
    const s = steps('FROM img\nARG A=1 B\nENV A=env\nRUN echo hi\nCOPY --chown=1:1 --chmod=600 a b /d/\nRUN ["ls", "-l"]\n', { B: 'given' });
    expect(s.map(createdBy)).toEqual([
      'ARG A=1 B',
      'ENV A=env',
      'RUN |2 A=env B=given /bin/sh -c echo hi # buildkit',
      'COPY a b /d/ # buildkit',
      'RUN |2 A=env B=given ls -l # buildkit',
    ]);
  });

  test("config instructions in Go's formatting", () => {
    const s = steps(
      [
        'FROM img',
        'SHELL ["/bin/bash", "-c"]',
        'CMD echo "hi"',
        'ENTRYPOINT ["/e", "x y"]',
        'EXPOSE 8080 53/udp 80/tcp',
        'VOLUME /a /b',
        'LABEL "k 1"="v 1"',
        'WORKDIR rel',
        'HEALTHCHECK --interval=90s --timeout=500ms --start-period=1h CMD true',
        'HEALTHCHECK --retries=10 CMD ["a"]',
        'HEALTHCHECK NONE',
        'ONBUILD RUN x',
        'MAINTAINER me',
      ].join('\n'),
    );
    expect(s.map(createdBy)).toEqual([
      'SHELL [/bin/bash -c]',
      'CMD ["/bin/bash" "-c" "echo \\"hi\\""]',
      'ENTRYPOINT ["/e" "x y"]',
      'EXPOSE map[53/udp:{} 80/tcp:{} 8080/tcp:{}]',
      'VOLUME [/a /b]',
      'LABEL k 1=v 1',
      'WORKDIR /rel',
      `HEALTHCHECK &{["CMD-SHELL" "true"] "1m30s" "500ms" "1h0m0s" '\\x00'}`,
      `HEALTHCHECK &{["CMD" "a"] "0s" "0s" "0s" '\\n'}`,
      `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" '\\x00'}`,
      undefined,
      'MAINTAINER me',
    ]);
  });

  test("Go's Duration.String", () => {
    expect([0, 1, 1500, 2e6, 1e9, 61e9, 3600e9, 3661.5e9, -5e9].map(goDuration)).toEqual(['0s', '1ns', '1.5µs', '2ms', '1s', '1m1s', '1h0m0s', '1h1m1.5s', '-5s']);
  });
});
