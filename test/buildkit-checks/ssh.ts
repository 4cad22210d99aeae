import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile, Harness } from './types.js';

const file = 'dockerfile_ssh_test.go';

const socketParams = `
FROM busybox
RUN --mount=type=ssh,mode=741,uid=100,gid=102 [ "$(stat -c "%u %g %f" $SSH_AUTH_SOCK)" = "100 102 c1e1" ]
`;

/** A fresh 2048-bit RSA key in PEM (as BuildKit's test makes one), and an ssh-agent of this check's own holding it; `run` gets both. */
async function withAgent(run: (sock: string, key: string) => Promise<void>): Promise<void> {
  // A short path: a unix socket's path has a length limit.
  const dir = mkdtempSync(path.join(tmpdir(), 'bk-ssh-'));
  const key = path.join(dir, 'key');
  const sock = path.join(dir, 'agent.sock');
  execFileSync('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', '', '-f', key]);
  const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    // Ready when it says where its socket is.
    await new Promise<void>((resolve, reject) => {
      let said = '';
      agent.stdout.on('data', (d: Buffer) => {
        said += d.toString();
        if (said.includes('SSH_AUTH_SOCK=')) resolve();
      });
      agent.once('exit', (code) => reject(new Error(`ssh-agent exited (${code}) before it was ready`)));
    });
    expect(existsSync(sock), 'ssh-agent made no socket').toBe(true);
    execFileSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
    await run(sock, key);
  } finally {
    agent.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function buildWith(h: Harness, ssh: string): Promise<void> {
  const r = await h.build({ dockerfile: socketParams, args: ['--ssh', ssh] });
  await h.expectImage(r, {});
}

export default {
  file,
  checks: [
    {
      name: 'testSSHSocketParams',
      file,
      // The agent BuildKit's test makes from a key file, given here as an agent's socket
      // (gantry forwards an agent; key files are the next check).
      dockerfile: socketParams,
      custom: (h) => withAgent((sock) => buildWith(h, `default=${sock}`)),
    },
    {
      name: 'testSSHSocketParams',
      file,
      // As BuildKit's test gives it: the key file itself.
      dockerfile: socketParams,
      custom: (h) => withAgent((_sock, key) => buildWith(h, `default=${key}`)),
    },
  ],
  notPorted: [
    {
      name: 'testSSHFileDescriptorsClosed',
      file,
      reason: 'needs the internet: apk installs openssh-client from Alpine\'s mirrors and ssh connects to github.com three times',
    },
  ],
} satisfies CheckFile;
