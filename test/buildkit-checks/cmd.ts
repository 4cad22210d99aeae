import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_cmd_test.go';

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export default {
  file,
  checks: [
    {
      name: 'testCmdShell',
      file,
      dockerfile: '',
      // BuildKit reads the second image from containerd; here from the store. SHELL applies to
      // the shell-form ENTRYPOINT, which drops the base's CMD.
      async custom(h) {
        const a = await h.build({ dockerfile: '\nFROM scratch\nCMD ["test"]\n' }, { tag: 'bkcmd/cmdoverridetest:latest' });
        await h.expectImage(a, { config: { Cmd: ['test'] } });
        const b = await h.build({ dockerfile: `\nFROM ${a.tag}\nSHELL ["ls"]\nENTRYPOINT my entrypoint\n` });
        await h.expectImage(b, { config: { Cmd: null, Entrypoint: ['ls', 'my entrypoint'] } });
      },
    },
    {
      name: 'testDefaultShellAndPath',
      file,
      dockerfile: '',
      // BuildKit builds for windows/amd64 and linux/amd64 at once; the linux/amd64 image is
      // checked here (the Windows one needs a second platform, issue 25): one layer, the
      // default shell and PATH.
      async custom(h) {
        const r = await h.build({ dockerfile: '\nFROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n', args: ['--platform', 'linux/amd64'] });
        await h.expectImage(r, { config: { Entrypoint: ['/bin/sh', '-c', 'foo bar'], Env: [PATH] } });
        const i = await h.inspect(r.tag);
        expect(i.Os).toBe('linux');
        expect(i.Architecture).toBe('amd64');
        expect((i.RootFS as { Layers: string[] }).Layers.length).toBe(1);
      },
    },
    {
      name: 'testIgnoreEntrypoint',
      file,
      dockerfile: '\nFROM busybox\nENTRYPOINT ["/nosuchcmd"]\nRUN ["ls"]\n',
    },
    {
      name: 'testInvalidJSONCommands',
      file,
      // Not JSON after all: a shell command that fails, and the error shows it.
      dockerfile: '\nFROM busybox\nRUN ["echo", "hello"]this is invalid\n',
      error: /this is invalid/,
    },
    {
      name: 'testInvalidJSONCommands',
      file,
      // alpine → busybox; BuildKit pushes the image to read its config, here it is in the store.
      dockerfile: '\nFROM busybox\nENTRYPOINT []random string\n',
      config: { Entrypoint: ['/bin/sh', '-c', '[]random string'] },
    },
    {
      name: 'testDockerfileInvalidCommand',
      file,
      dockerfile: '\n\tFROM busybox\n\tRUN invalidcmd\n',
      // BuildKit: `process "/bin/sh -c invalidcmd" did not complete successfully`; gantry names
      // the step's command and its exit code in words of its own.
      error: /(\/bin\/sh -c invalidcmd|RUN invalidcmd)[^\n]*(did not complete successfully|failed with exit code 127)/,
    },
    {
      name: 'testDockerfileInvalidInstruction',
      file,
      dockerfile: '\nFROM scratch\nFNTRYPOINT ["/bin/sh", "-c", "echo invalidinstruction"]\n',
      error: /unknown instruction: FNTRYPOINT[^]*did you mean ENTRYPOINT\?/,
    },
  ],
  notPorted: [{ name: 'testDefaultPathEnvOnWindows', file, reason: 'Windows only (nanoserver, %PATH%)' }],
} satisfies CheckFile;
