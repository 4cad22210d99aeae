/**
 * Start a sandbox's launcher and wait for it: the one way both isolations start a RUN. The
 * launcher's own descriptors are only stdin (/dev/null, or a pipe from the caller's), stdout and
 * stderr (pipes), in a session of its own: the command reaches no terminal of gantry's (no
 * controlling terminal to open as /dev/tty, no descriptor of one to type into with TIOCSTI),
 * unless it is given one the runtime or script(1) makes (`gantry run -t`). It dies with gantry
 * (setpriv's parent-death signal, unless the command line already starts with setpriv); an abort
 * kills it and everything below it.
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
  /**
   * The caller's streams (`gantry run`): relayed through pipes (standard input only with
   * `stdin`); with `terminal`, given as they are to a trusted program that makes the command a
   * terminal of its own: the OCI runtime (`runtime`, process.terminal in its spec) or util-linux's
   * script(1) (`script`, wrapped here).
   */
  attach?: { stdin: boolean; terminal?: 'runtime' | 'script' };
}

/** The environment of host programs gantry starts before the command's own (the runtime's launcher, bash below). */
export const HOST_ENV: NodeJS.ProcessEnv = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

/** A run's `Attach` as a launch takes it: with a terminal, the one `maker` makes (the runtime, or script(1)). */
export function attachWith(a: Attach, maker: 'runtime' | 'script'): NonNullable<Launch['attach']> {
  return { stdin: a.stdin, ...(a.tty ? { terminal: maker } : {}) };
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
  const { argv, env: wanted } = l.attach?.terminal === 'script' ? onTerminal(l.argv, l.env) : l;
  let [cmd, ...args] = argv as [string, ...string[]];
  let env = wanted;
  // Node cannot close a descriptor in the child only, so the host's bash closes the inherited
  // ones and then becomes the launcher. The environment is the command's (the chroot isolation
  // passes the image's through): bash must not read it (BASH_ENV, exported functions run code
  // on the host), so bash starts with the host's, reads the command's from descriptor 3 and
  // exports it just before the exec (a name bash cannot export, with `%` or `.` in it, is lost
  // on this path only).
  const leaked = inheritedFds();
  const bash = HOST_BASH.find((b) => existsSync(b));
  let envPipe: string | undefined;
  if (leaked.length > 0 && bash) {
    const close = [...new Set([3, ...leaked])].map((fd) => `${fd}>&-`).join(' ');
    args = ['-c', `while IFS= read -r -d '' kv; do export -- "$kv" 2>/dev/null || :; done <&3; exec "$@" ${close}`, 'gantry-sandbox', cmd, ...args];
    cmd = bash;
    envPipe = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v as string}\0`).join('');
    env = HOST_ENV;
  }
  if (argv[0] !== SETPRIV && existsSync(SETPRIV)) {
    args = ['--pdeathsig', 'KILL', '--', cmd, ...args];
    cmd = SETPRIV;
  }
  return new Promise((resolve, reject) => {
    const terminal = l.attach?.terminal !== undefined;
    const stdio: ('inherit' | 'ignore' | 'pipe')[] = terminal ? ['inherit', 'inherit', 'inherit'] : [l.attach?.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'];
    if (envPipe !== undefined) stdio.push('pipe');
    // A session of its own (setsid) unless it is to use the caller's terminal.
    const child = childProcess().spawn(cmd, args, { stdio, env, detached: !terminal });
    if (envPipe !== undefined) {
      const pipe = child.stdio[3] as import('node:stream').Writable;
      // A launcher killed before it read its environment (an abort) resets the pipe: nothing to report.
      pipe.on('error', () => undefined);
      pipe.end(envPipe);
    }
    if (l.attach && !terminal) {
      // The caller's streams relayed, never handed over.
      child.stdout?.pipe(process.stdout, { end: false });
      child.stderr?.pipe(process.stderr, { end: false });
      if (l.attach.stdin && child.stdin) {
        process.stdin.pipe(child.stdin);
        child.stdin.on('error', () => undefined); // the command exited before reading it all
        child.on('close', () => {
          process.stdin.unpipe(child.stdin ?? undefined);
          process.stdin.pause();
        });
      }
    }
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
