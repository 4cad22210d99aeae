import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_workdir_test.go';

export default {
  file,
  checks: [
    {
      name: 'testWorkdirCreatesDir',
      file,
      dockerfile: 'FROM scratch\nWORKDIR /foo\nWORKDIR /\n',
      // An empty image: the rootfs export holds just the directory WORKDIR made.
      types: { foo: 'directory' },
    },
    {
      name: 'testWorkdirSourceDateEpochReproducible',
      file,
      dockerfile: 'FROM busybox\nWORKDIR /mydir\n',
      // Two builds with the same SOURCE_DATE_EPOCH, the cache emptied in between: the same image.
      async custom(h) {
        const args = ['--build-arg', 'SOURCE_DATE_EPOCH=1673364896', '--no-cache'];
        const a = await h.build({ dockerfile: 'FROM busybox\nWORKDIR /mydir\n', args });
        expect(a.exitCode, a.output).toBe(0);
        const b = await h.build({ dockerfile: 'FROM busybox\nWORKDIR /mydir\n', args });
        expect(b.exitCode, b.output).toBe(0);
        expect((await h.inspect(b.tag)).Id).toBe((await h.inspect(a.tag)).Id);
      },
    },
    {
      name: 'testWorkdirUser',
      file,
      dockerfile: 'FROM busybox\nRUN adduser -D user\nUSER user\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" == "user user" ]\n',
      owners: { mydir: '1000:1000' },
    },
    {
      name: 'testWorkdirCopyIgnoreRelative',
      file,
      dockerfile: 'FROM scratch AS base\nWORKDIR /foo\nCOPY Dockerfile /\nFROM scratch\n# relative path still loaded as absolute\nCOPY --from=base Dockerfile .\n',
      present: ['Dockerfile'],
    },
    {
      name: 'testWorkdirExists',
      file,
      dockerfile: 'FROM busybox\nRUN adduser -D user\nRUN mkdir /mydir && chown user:user /mydir\nWORKDIR /mydir\nRUN [ "$(stat -c "%U %G" /mydir)" == "user user" ]\n',
      owners: { mydir: '1000:1000' },
    },
  ],
  notPorted: [],
} satisfies CheckFile;
