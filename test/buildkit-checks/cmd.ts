import { execFileSync } from 'node:child_process';
import path from 'node:path';
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
      // windows/amd64 and linux/amd64 at once, as an OCI layout: one layer each, each
      // platform's default shell (cmd on Windows) and PATH (none on Windows).
      async custom(h) {
        const dockerfile = '\nFROM scratch\nENTRYPOINT foo bar\nCOPY Dockerfile .\n';
        const r = await h.build({ dockerfile, args: ['--platform', 'windows/amd64,linux/amd64', '-o', 'type=oci,dest={work}/out.tar'] });
        expect(r.exitCode, r.output).toBe(0);
        const tarFile = path.join(r.dir, 'out.tar');
        const json = <T>(name: string): T => JSON.parse(execFileSync('tar', ['-xOf', tarFile, name], { encoding: 'utf8' })) as T;
        const blob = <T>(digest: string): T => json<T>(`blobs/sha256/${digest.slice(7)}`);
        const top = json<{ manifests: { digest: string }[] }>('index.json');
        const index = blob<{ manifests: { digest: string; platform: { os: string; architecture: string } }[] }>((top.manifests[0] as { digest: string }).digest);
        expect(index.manifests).toHaveLength(2);
        const expected = [
          { p: 'windows/amd64', entrypoint: ['cmd', '/S', '/C', 'foo bar'], env: undefined },
          { p: 'linux/amd64', entrypoint: ['/bin/sh', '-c', 'foo bar'], env: [PATH] },
        ];
        for (const [i, exp] of expected.entries()) {
          const d = index.manifests[i] as (typeof index.manifests)[number];
          expect(`${d.platform.os}/${d.platform.architecture}`).toBe(exp.p);
          const manifest = blob<{ layers: unknown[]; config: { digest: string } }>(d.digest);
          expect(manifest.layers).toHaveLength(1);
          const config = blob<{ config: { Entrypoint: string[]; Env?: string[] } }>(manifest.config.digest);
          expect(config.config.Entrypoint).toEqual(exp.entrypoint);
          expect(config.config.Env).toEqual(exp.env);
        }
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
