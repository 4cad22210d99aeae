import type { CheckFile } from './types.js';

const file = 'dockerfile_platform_test.go';

export default {
  file,
  checks: [
    {
      name: 'testPlatformArgsImplicit',
      file,
      // runtime.GOOS is linux here.
      dockerfile: '\nFROM scratch AS build-linux\nCOPY foo bar\nFROM build-${TARGETOS}\nCOPY foo2 bar2\n',
      context: { foo: 'd0', foo2: 'd1' },
      files: { bar: 'd0', bar2: 'd1' },
    },
    {
      name: 'testPlatformArgsExplicit',
      file,
      // The build stage runs on the build platform; the target is darwin/ppc64le, and the
      // TARGETOS build argument overrides the one the platform gives.
      dockerfile: '\nFROM --platform=$BUILDPLATFORM busybox AS build\nARG TARGETPLATFORM\nARG TARGETOS\nRUN mkdir /out && echo -n $TARGETPLATFORM > /out/platform && echo -n $TARGETOS > /out/os\nFROM scratch\nCOPY --from=build out .\n',
      args: ['--platform', 'darwin/ppc64le'],
      buildArgs: { TARGETOS: 'freebsd' },
      files: { platform: 'darwin/ppc64le', os: 'freebsd' },
    },
  ],
  notPorted: [
    { name: 'testPlatformWithOSVersion', file, reason: 'needs Windows base images with OS versions (os.version) in a registry index, and platforms matched by OS version, which gantry does not do' },
    { name: 'testMaintainBaseOSVersion', file, reason: 'needs a Windows base image with an OS version in a registry, kept in the image built on it: gantry builds no Windows images (it runs Linux programs only)' },
  ],
} satisfies CheckFile;
