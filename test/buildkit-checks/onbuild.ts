import type { CheckFile, Expectations, Harness } from './types.js';

const file = 'dockerfile_onbuild_test.go';

// BuildKit pushes its base images to a test registry and builds FROM them; here they are tagged
// in the check's store, which gantry builds FROM first.

/** Builds `dockerfile` (tagged `tag` when given) and asserts `exp` of the result; returns its tag. */
async function step(h: Harness, dockerfile: string, exp: Expectations, tag?: string): Promise<string> {
  const r = await h.build({ dockerfile }, tag ? { tag } : {});
  await h.expectImage(r, exp);
  return r.tag;
}

export default {
  file,
  checks: [
    {
      name: 'testOnBuildCleared',
      file,
      dockerfile: '',
      // The trigger runs in the child only: the grandchild does not run it again.
      async custom(h) {
        const base = await step(h, '\nFROM busybox\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n', {}, 'bkonbuild/cleared:base');
        const child = await step(h, `\n\tFROM ${base}\n\t`, {}, 'bkonbuild/cleared:child');
        await step(h, `\n\tFROM ${child} AS base\n\tFROM scratch\n\tCOPY --from=base /out /\n\t`, { files: { foo: '11' } });
      },
    },
    {
      name: 'testOnBuildWithChildStage',
      file,
      dockerfile: '',
      // moby/buildkit#5578: a stage FROM the stage that ran the triggers does not run them again.
      async custom(h) {
        const base = await step(h, '\nFROM busybox\nONBUILD RUN mkdir -p /out && echo -n yes >> /out/didrun\n', {}, 'bkonbuild/childstage:base');
        await step(
          h,
          `\nFROM ${base} AS base\nRUN [ -f /out/didrun ] && touch /step1\nRUN rm /out/didrun\nRUN [ ! -f /out/didrun ] && touch /step2\n\nFROM base AS child\nRUN [ ! -f /out/didrun ] && touch /step3\n\nFROM scratch\nCOPY --from=child /step* /\n`,
          { present: ['step1', 'step2', 'step3'] },
        );
      },
    },
    {
      name: 'testOnBuildNamedContext',
      file,
      dockerfile: '',
      // BuildKit gives the base image as the named context `base` (an OCI layout); gantry has no
      // named contexts (--build-context), so the image is in the store under the name `base`,
      // which `FROM base` finds. What is checked is the same: the trigger's COPY --from names a
      // stage of the Dockerfile that builds FROM the image. alpine → busybox.
      async custom(h) {
        await step(h, '\n\tFROM busybox:latest\n\tONBUILD COPY --from=otherstage /testfile /out/foo\n\t', {}, 'base:latest');
        await step(
          h,
          '\n\t\tFROM busybox AS otherstage\n\t\tRUN echo -n "hello" > /testfile\n\t\tFROM base AS inputstage\n\t\tFROM scratch\n\t\tCOPY --from=inputstage /out/foo /bar\n\t',
          { files: { bar: 'hello' } },
        );
      },
    },
    {
      name: 'testOnBuildInheritedStageRun',
      file,
      dockerfile: '\nFROM busybox AS base\nONBUILD RUN mkdir -p /out && echo -n 11 >> /out/foo\n\nFROM base AS mid\nRUN cp /out/foo /out/bar\n\nFROM scratch\nCOPY --from=mid /out/bar /\n',
      files: { bar: '11' },
    },
    {
      name: 'testOnBuildInheritedStageWithFrom',
      file,
      // alpine → busybox.
      dockerfile:
        '\nFROM busybox AS src\nRUN mkdir -p /in && echo -n 12 > /in/file\n\nFROM busybox AS base\nONBUILD COPY --from=src /in/file /out/foo\n\nFROM base AS mid\nRUN cp /out/foo /out/bar\n\nFROM scratch\nCOPY --from=mid /out/bar /\n',
      files: { bar: '12' },
    },
    {
      name: 'testOnBuildNewDeps',
      file,
      dockerfile: '',
      debian: true,
      // ONBUILD triggers that bring in an image (alpine's /etc/alpine-release → debian:bookworm's
      // /etc/debian_version, there being no alpine here) and a bind mount from a stage of the
      // consuming Dockerfile; the second base is FROM busybox instead of alpine.
      async custom(h) {
        const base = await step(h, '\nFROM busybox\nONBUILD COPY --from=debian:bookworm /etc/debian_version /out/alpine-release2\n', {}, 'bkonbuild/newdeps:base');
        await step(h, `\n\tFROM ${base} AS base\n\tRUN cat /out/alpine-release2 > /out/alpine-release3\n\tFROM scratch\n\tCOPY --from=base /out /\n\t`, {
          files: { 'alpine-release3': /^.{6,}$/s },
        });
        const base2 = await step(
          h,
          '\nFROM busybox\nONBUILD RUN --mount=type=bind,target=/in,from=inputstage mkdir /out && cat /in/foo > /out/bar && cat /in/out/alpine-release2 > /out/bar2\n',
          {},
          'bkonbuild/newdeps:base2',
        );
        await step(
          h,
          `\n\tFROM ${base} AS inputstage\n\tRUN cat /out/alpine-release2 > /out/alpine-release4\n\tRUN echo -n foo > /foo\n\tFROM ${base2} AS base\n\tRUN echo -n bar3 > /out/bar3\n\tFROM scratch\n\tCOPY --from=base /out /\n\t`,
          { files: { bar: 'foo', bar2: /^.{6,}$/s, bar3: 'bar3' } },
        );
      },
    },
    {
      name: 'testOnBuildWithCacheMount',
      file,
      dockerfile: '',
      async custom(h) {
        const base = await step(h, '\nFROM busybox\nONBUILD RUN --mount=type=cache,target=/cache echo -n 42 >> /cache/foo && echo -n 11 >> /bar\n', {}, 'bkonbuild/cachemount:base');
        await step(h, `FROM ${base}\nRUN --mount=type=cache,target=/cache [ "$(cat /cache/foo)" = "42" ] && [ "$(cat /bar)" = "11" ]\n`, {});
      },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
