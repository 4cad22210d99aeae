/**
 * `RUN --mount=type=ssh`: the RUN gets a socket of its own that forwards each connection to the
 * ssh-agent socket given with `--ssh`, as BuildKit forwards the client's agent through its
 * session. The forwarding socket carries the mount's owner and mode (BuildKit: 0:0, 0600), so
 * a non-root USER can be given it, and the host's socket is never in the RUN's view (nothing
 * there can chmod or replace it). Only what the agent protocol allows crosses: the agent
 * signs, it never gives the keys away.
 */
import { existsSync } from 'node:fs';
import { chmod, chown } from 'node:fs/promises';
import path from 'node:path';
import { connect, createServer, type Socket } from 'node:net';
import { SandboxError } from '../errors/index.js';
import { childProcess } from '../support/process.js';

export interface AgentForward {
  /** The forwarding socket's path on the host (bind-mount it at the mount's target). */
  path: string;
  close(): Promise<void>;
}

/** Listen at `at` (a path in a private directory) and forward every connection to `agent`. */
export async function forwardAgent(agent: string, at: string, owner: { uid: number; gid: number; mode: number }): Promise<AgentForward> {
  const open = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(agent);
    open.add(client).add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new SandboxError('SANDBOX_SSH', `cannot make the RUN's ssh-agent socket: ${err.message}`)));
    server.listen(at, () => resolve());
  });
  await chown(at, owner.uid, owner.gid);
  await chmod(at, owner.mode);
  // It serves this RUN only: it never keeps gantry alive.
  server.unref();
  return {
    path: at,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface KeyAgent {
  /** The agent's socket. */
  socket: string;
  stop(): Promise<void>;
}

const SSH_AGENT = ['/usr/bin/ssh-agent', '/usr/local/bin/ssh-agent'];
const SSH_ADD = ['/usr/bin/ssh-add', '/usr/local/bin/ssh-add'];
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'];
const SETSID = ['/usr/bin/setsid', '/bin/setsid'];

/**
 * `--ssh ID=KEYFILE[,KEYFILE]`: an ssh-agent of the build's own, in the private directory
 * `dir`, holding these keys (as docker build loads key files into an agent of its own). The
 * agent dies with this process (a parent-death signal, so a killed build leaves no agent with
 * the keys behind) and is stopped after the build; a key with a passphrase is an error (no
 * prompt is ever shown). Every wait has a deadline.
 */
export async function agentWithKeys(keys: string[], dir: string, timeoutMs = 20_000): Promise<KeyAgent> {
  const agentBin = SSH_AGENT.find((p) => existsSync(p));
  const addBin = SSH_ADD.find((p) => existsSync(p));
  const setpriv = SETPRIV.find((p) => existsSync(p));
  if (!agentBin || !addBin || !setpriv) throw new SandboxError('SANDBOX_SSH', 'ssh key files need ssh-agent and ssh-add (Debian: openssh-client) and setpriv (util-linux); or give an agent socket');
  const socket = path.join(dir, 'agent.sock');
  // -D: in the foreground, so that it ends with this build; it prints the socket when ready.
  const agent = childProcess().spawn(setpriv, ['--pdeathsig', 'KILL', '--', agentBin, '-D', '-a', socket], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' } });
  let said = '';
  agent.stderr.on('data', (d: Buffer) => (said += d.toString()));
  const stop = async (): Promise<void> => {
    if (agent.exitCode !== null || agent.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => agent.once('exit', () => resolve()));
    agent.kill('SIGTERM');
    const late = setTimeout(() => agent.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(late);
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SandboxError('SANDBOX_SSH', `ssh-agent did not start within ${timeoutMs / 1000} s`)), timeoutMs);
      let out = '';
      agent.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('SSH_AUTH_SOCK=')) {
          clearTimeout(timer);
          resolve();
        }
      });
      agent.once('error', (err) => {
        clearTimeout(timer);
        reject(new SandboxError('SANDBOX_SSH', `cannot start ssh-agent: ${err.message}`));
      });
      agent.once('exit', (code) => {
        clearTimeout(timer);
        reject(new SandboxError('SANDBOX_SSH', `ssh-agent exited (${code ?? 'signal'}) before it was ready${said.trim() ? `: ${said.trim()}` : ''}`));
      });
    });
    // In a session of its own (setsid): with no terminal to open, it cannot prompt.
    const setsid = SETSID.find((p) => existsSync(p));
    const added = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const add = childProcess().spawn(setsid ?? addBin, [...(setsid ? ['-w', addBin] : []), '-q', ...keys], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { PATH: '/usr/bin:/bin', SSH_AUTH_SOCK: socket, SSH_ASKPASS_REQUIRE: 'never' },
      });
      let stderr = '';
      add.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => add.kill('SIGKILL'), timeoutMs);
      add.once('error', (err) => resolve({ code: -1, stderr: err.message }));
      add.once('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    if (added.code !== 0) {
      throw new SandboxError('SANDBOX_SSH', `cannot load ${keys.join(', ')} into an ssh-agent: ${added.stderr.trim() || `exit ${added.code}`} (a key with a passphrase must be added to your own agent; give its socket)`);
    }
    return { socket, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
