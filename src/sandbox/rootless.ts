/**
 * Building as a non-root user, as buildah does: the gantry command enters a user namespace in
 * which the caller is root (uid 0) and the caller's subordinate ranges from /etc/subuid and
 * /etc/subgid are uids and gids 1 to N (newuidmap/newgidmap from Debian's `uidmap`, through
 * util-linux's unshare), with a mount namespace of its own. Inside it, layers are extracted with
 * their owners, RUN runs under the OCI runtime as in a root build (it sees the user namespace and runs
 * rootless), and the layers gantry writes carry the image's owners, root files 0:0: the image is
 * the one a root build makes. On the host, files the image gives to root belong to the caller,
 * others to the subordinate ids.
 *
 * Device nodes cannot be made in a user namespace: a base layer's device nodes are left out of
 * the extracted tree (rootfs/apply.ts), as buildah and podman do rootless; they are in the base's
 * layers, which the image keeps as they are, and a RUN never sees them (its /dev is the runtime's).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { SandboxError } from '../errors/index.js';
import { childProcess } from '../support/process.js';

const UNSHARE = '/usr/bin/unshare';
const SETPRIV = '/usr/bin/setpriv';
const NEWUIDMAP = ['/usr/bin/newuidmap', '/bin/newuidmap'];

interface SubordinateRange {
  start: number;
  count: number;
}

/** The first range of `file` (/etc/subuid or /etc/subgid) for the user, by name or by id. */
function subordinateRange(file: string, name: string, id: number): SubordinateRange | undefined {
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of content.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === name || who === String(id)) && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '') && Number(count) > 0) {
      return { start: Number(start), count: Number(count) };
    }
  }
  return undefined;
}

/**
 * The command line prefix that starts a program in the user namespace (see above), for a
 * non-root caller; undefined when none is needed (for root, and so inside the namespace, where
 * the caller is root), or, unless `required`, when the caller has no range. Without a
 * subordinate range (or newuidmap) a build is an error that says how to get one: a build as an
 * unmapped user would give every file the caller's uid, a silently wrong image.
 */
function userNamespacePrefix(options: { required: boolean }): string[] | undefined {
  const uid = process.getuid?.();
  if (uid === undefined || uid === 0) return undefined;
  // A uid with no passwd entry (docker run --user 1000) has no name: /etc/subuid may name its id.
  let name = String(uid);
  try {
    name = userInfo().username;
  } catch {
    // keep the id
  }
  const subuid = subordinateRange('/etc/subuid', name, uid);
  const subgid = subordinateRange('/etc/subgid', name, uid);
  if ((!subuid || !subgid) && !options.required) return undefined;
  if (!subuid || !subgid) {
    throw new SandboxError(
      'SANDBOX_ROOTLESS',
      `building as ${name} (uid ${uid}) needs a subordinate uid and gid range for it in /etc/subuid and /etc/subgid, so that the image's owners can be kept: as root, run \`usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${name}\` (or pick a free range), or run gantry as root`,
    );
  }
  if (!NEWUIDMAP.some((p) => existsSync(p))) {
    if (!options.required) return undefined;
    throw new SandboxError('SANDBOX_ROOTLESS', `building as ${name} needs newuidmap and newgidmap (apt-get install uidmap)`);
  }
  // setpriv's parent-death signal: what runs inside dies with its starter (a SIGKILL included).
  return [
    '--pdeathsig', 'KILL', '--', UNSHARE,
    '--user', '--mount',
    '--map-user=0', '--map-group=0',
    `--map-users=${subuid.start},1,${subuid.count}`,
    `--map-groups=${subgid.start},1,${subgid.count}`,
    '--',
  ];
}

/**
 * For a non-root caller: run this command again inside the user namespace and resolve to its
 * exit code; undefined when none is needed or possible (userNamespacePrefix).
 */
export async function reexecInUserNamespace(argv: string[], options: { required: boolean }): Promise<number | undefined> {
  const prefix = userNamespacePrefix(options);
  if (!prefix) return undefined;
  const args = [...prefix, process.execPath, ...process.execArgv, ...argv];
  return new Promise((resolve, reject) => {
    const child = childProcess().spawn(SETPRIV, args, { stdio: 'inherit', env: process.env });
    // Signals for the command reach it through the terminal's process group; a signal sent to
    // this process alone is passed on.
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => [sig, forward(sig)] as const);
    for (const [sig, h] of handlers) process.on(sig, h);
    child.on('error', (err) => reject(new SandboxError('SANDBOX_ROOTLESS', `cannot enter a user namespace: ${err.message}`)));
    child.on('close', (code, signal) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code ?? (signal ? 128 + 9 : 1));
    });
  });
}

/** Whether a build by this process must run in the user namespace: the caller is not root. */
export const needsUserNamespace = (): boolean => (process.getuid?.() ?? 0) !== 0;

/**
 * Start the Node module `script` in the user namespace, with an IPC channel (structured clone)
 * to it: how the Node API builds for a non-root caller. Throws the rootless error when the
 * caller cannot have one.
 */
export function startInUserNamespace(script: string): ChildProcess {
  const prefix = userNamespacePrefix({ required: true }) as string[];
  return childProcess().spawn(SETPRIV, [...prefix, process.execPath, script], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    serialization: 'advanced',
    env: process.env,
  });
}
