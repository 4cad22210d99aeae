import type { CheckFile } from './types.js';

const file = 'dockerfile_client_test.go';

const gateway = "drives BuildKit's gateway/client API (frontends calling Solve, forwarded results, inputs as LLB definitions), which has no counterpart in gantry: a build is one gantry build command";

export default {
  file,
  checks: [
    {
      name: 'testGatewayBuiltinSyntaxSourceDockerfileV0',
      file,
      // BuildKit runs the built-in frontend through gateway.v0 (source dockerfile.v0), so the
      // # syntax= directive does not pull dockerfile-upstream; gantry always uses its own
      // frontend. What is checked: the Dockerfile with the directive builds, /out is "ok".
      dockerfile: '\n# syntax=docker/dockerfile-upstream:master\nFROM busybox AS build\nRUN echo -n ok > /out\nFROM scratch\nCOPY --from=build /out /out\n',
      files: { out: 'ok' },
    },
  ],
  notPorted: [
    { name: 'testFrontendUseForwardedSolveResults', file, reason: gateway },
    { name: 'testFrontendEvaluate', file, reason: gateway },
    { name: 'testFrontendInputs', file, reason: gateway },
    { name: 'testFrontendSubrequests', file, reason: `${gateway} (it lists the frontend's subrequests; see dockerfile_targets_test.go for the ones docker build --call reaches)` },
    { name: 'testNilContextInSolveGateway', file, reason: `${gateway}; it asserts BuildKit's handling of nil LLB input definitions` },
    { name: 'testMultiNilRefsInSolveGateway', file, reason: `${gateway}, with two platforms` },
  ],
} satisfies CheckFile;
