/**
 * `RUN --mount=type=ssh`: the RUN gets a socket of its own that forwards each connection to the
 * ssh-agent socket given with `--ssh`, as BuildKit forwards the client's agent through its
 * session. The forwarding socket carries the mount's owner and mode (BuildKit: 0:0, 0600), so
 * a non-root USER can be given it, and the host's socket is never in the RUN's view (nothing
 * there can chmod or replace it). Only what the agent protocol allows crosses: the agent
 * signs, it never gives the keys away.
 */
import { chmod, chown } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { SandboxError } from '../errors/index.js';

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
