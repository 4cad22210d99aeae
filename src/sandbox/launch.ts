/**
 * Start a sandbox's launcher and wait for it: the one way both isolations start a RUN. The
 * launcher's own descriptors are only stdin (/dev/null), stdout and stderr; it dies with gantry
 * (setpriv's parent-death signal, unless the command line already starts with setpriv); an
 * abort kills it and everything below it.
 */
import { existsSync } from 'node:fs';
import { SandboxError } from '../errors/index.js';
import { crashPoint, childProcess } from '../support/process.js';
import { inheritedFds } from './fds.js';
import { killTree } from './kill.js';
import type { Attach } from './types.js';

const SETPRIV = '/usr/bin/setpriv';
const HOST_BASH = ['/usr/bin/bash', '/bin/bash'];

export interface Launch {
  /** The command line: the launcher and its arguments. */
  argv: string[];
  env: NodeJS.ProcessEnv;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
  /** More to kill on an abort than the launcher's tree (the chroot isolation's daemons). */
  onAbort?: () => void;
  /** The caller's streams instead of pipes (`gantry run`; types.ts). */
  attach?: Attach;
}

const SCRIPT = '/usr/bin/script';

/** A word for sh -c, quoted. */
const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The launcher run on a pseudo-terminal of its own: util-linux's script(1) makes one, runs the
 * launcher on it as its controlling terminal, and relays it to the caller's terminal (in raw
 * mode, so ^C reaches the command). script runs its command with $SHELL -c: the launcher's
 * environment (the chroot isolation's is the command's own) gets its SHELL back inside.
 */
function onTerminal(argv: string[], env: NodeJS.ProcessEnv): { argv: string[]; env: NodeJS.ProcessEnv } {
  if (!existsSync(SCRIPT)) throw new SandboxError('SANDBOX_SPAWN', `a terminal (-t) needs ${SCRIPT} (util-linux's script, Debian's bsdutils package)`);
  const restore = env.SHELL !== undefined ? `SHELL=${shQuote(env.SHELL)} ` : 'unset SHELL; ';
  return { argv: [SCRIPT, '-q', '-e', '-f', '-c', `${restore}exec ${argv.map(shQuote).join(' ')}`, '/dev/null'], env: { ...env, SHELL: '/bin/sh' } };
}

/** Run the launcher; its exit code (128 + n when a signal ended it). */
export function launch(l: Launch): Promise<number> {
  const { argv, env } = l.attach?.tty ? onTerminal(l.argv, l.env) : l;
  let [cmd, ...args] = argv as [string, ...string[]];
  // Node cannot close a descriptor in the child only, so the host's bash closes the inherited
  // ones and then becomes the launcher.
  const leaked = inheritedFds();
  const bash = HOST_BASH.find((b) => existsSync(b));
  if (leaked.length > 0 && bash) {
    args = ['-c', `exec "$@" ${leaked.map((fd) => `${fd}>&-`).join(' ')}`, 'gantry-sandbox', cmd, ...args];
    cmd = bash;
  }
  if (argv[0] !== SETPRIV && existsSync(SETPRIV)) {
    args = ['--pdeathsig', 'KILL', '--', cmd, ...args];
    cmd = SETPRIV;
  }
  return new Promise((resolve, reject) => {
    const stdio = l.attach ? ([l.attach.stdin || l.attach.tty ? 'inherit' : 'ignore', 'inherit', 'inherit'] as const) : (['ignore', 'pipe', 'pipe'] as const);
    const child = childProcess().spawn(cmd, args, { stdio: [...stdio], env });
    let started = false;
    const output = (d: Buffer, to: ((d: Buffer) => void) | undefined): void => {
      to?.(d);
      if (!started) crashPoint?.('run-started');
      started = true;
    };
    child.stdout?.on('data', (d: Buffer) => output(d, l.onStdout));
    child.stderr?.on('data', (d: Buffer) => output(d, l.onStderr));
    const abort = (): void => {
      if (child.pid !== undefined) killTree(child.pid);
      l.onAbort?.();
    };
    l.signal?.addEventListener('abort', abort, { once: true });
    if (l.signal?.aborted) abort(); // aborted before the listener was there: no event comes
    child.on('error', (err) => {
      // E2BIG: the arguments and environment together are more than Linux takes (ARG_MAX).
      const why = (err as NodeJS.ErrnoException).code === 'E2BIG' ? 'the command line and environment are too long for one process (E2BIG, argument list too long)' : err.message;
      reject(new SandboxError('SANDBOX_SPAWN', `cannot start ${cmd}: ${why}`, { cause: err }));
    });
    child.on('close', (code, sig) => {
      l.signal?.removeEventListener('abort', abort);
      if (l.signal?.aborted) reject(new SandboxError('SANDBOX_ABORTED', 'the build was aborted'));
      else resolve(code ?? 128 + (sig ? 9 : 0));
    });
  });
}
