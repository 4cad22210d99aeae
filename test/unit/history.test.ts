import { describe, expect, test } from 'vitest';
import { createdBy, goDuration } from '../../src/builder/config.js';
import { plan } from '../../src/plan/planner.js';

// History entries worded as BuildKit 28.5 words them (docker history shows them side by side);
// each expectation here is what Docker 28.5 printed for the same Dockerfile (2026-12-04), and
// the BuildKit parity suite checks the same against the engine itself.

const steps = (text: string, buildArgs: Record<string, string> = {}) =>
  plan(text, { file: 'Dockerfile', buildArgs, baseImages: { img: { env: ['PATH=/bin'] } } }).stages.at(-1)!.steps;

describe('history created_by', () => {
  test('ARG with its value, RUN lists the ARGs in scope (ENV wins), COPY keeps --chown and --chmod', () => {
    const s = steps('FROM img\nARG A=1 B\nENV A=env\nRUN echo hi\nCOPY --chown=1:1 --chmod=600 a b /d/\nRUN ["ls", "-l"]\n', { B: 'given' });
    expect(s.map(createdBy)).toEqual([
      'ARG A=1 B=given',
      'ENV A=env',
      'RUN |2 A=env B=given /bin/sh -c echo hi # buildkit',
      'COPY --chown=1:1 --chmod=600 a b /d/ # buildkit',
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
      'EXPOSE [53/udp 80/tcp 8080/tcp]',
      'VOLUME [/a /b]',
      'LABEL k 1=v 1',
      'WORKDIR /rel',
      `HEALTHCHECK &{["CMD-SHELL" "true"] "1m30s" "500ms" "1h0m0s" "0s" '\\x00'}`,
      `HEALTHCHECK &{["CMD" "a"] "0s" "0s" "0s" "0s" '\\n'}`,
      `HEALTHCHECK &{["NONE"] "0s" "0s" "0s" "0s" '\\x00'}`,
      undefined,
      'MAINTAINER me',
    ]);
  });

  test('COPY and ADD: --parents, --chown, --chmod kept, --from/--link/--exclude dropped, here-documents after the paths; ARG shows the value it has', () => {
    const s = steps(
      [
        'FROM img AS one',
        'FROM img',
        'ARG TARGETSTAGE',
        'ARG V=2',
        'ARG W',
        'COPY --from=one --chown=1:1 /x /y',
        'COPY --exclude=*.md --chmod=u+x --link Dockerfile /z',
        'COPY <<EOT f /h/',
        'hello',
        'EOT',
        'ADD --chown=1:2 Dockerfile /e',
        'HEALTHCHECK --interval=30s --start-interval=2s CMD true',
        'EXPOSE 80/tcp 443 53/udp 8080',
      ].join('\n'),
    );
    // What Docker 28.5 wrote (docker history --no-trunc), but for COPY --parents (not in 28.5's built-in frontend).
    expect(s.map(createdBy)).toEqual([
      'ARG TARGETSTAGE=default',
      'ARG V=2',
      'ARG W',
      'COPY --chown=1:1 /x /y # buildkit',
      'COPY --chmod=u+x Dockerfile /z # buildkit',
      'COPY f <<EOT /h/ # buildkit',
      'ADD --chown=1:2 Dockerfile /e # buildkit',
      `HEALTHCHECK &{["CMD-SHELL" "true"] "30s" "0s" "0s" "2s" '\\x00'}`,
      'EXPOSE [443/tcp 53/udp 80/tcp 8080/tcp]',
    ]);
  });

  test("Go's Duration.String", () => {
    expect([0, 1, 1500, 2e6, 1e9, 61e9, 3600e9, 3661.5e9, -5e9].map(goDuration)).toEqual(['0s', '1ns', '1.5µs', '2ms', '1s', '1m1s', '1h0m0s', '1h1m1.5s', '-5s']);
  });
});
