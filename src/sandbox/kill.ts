/**
 * Stopping a sandbox as a whole: its launcher and every process below it.
 */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Kill a launcher and every process below it. Killing the launcher alone can miss the
 * command: the launcher forks the sandbox's first process, which arms its parent-death signal
 * a moment later; a launcher killed in between leaves that process, and the RUN, to run on. So
 * the launcher is stopped first (a stopped process forks nothing more), its descendants are
 * found through /proc and killed (the first process of the sandbox's PID namespace among them:
 * its death takes every process of the namespace down), then the launcher itself.
 */
export function killTree(pid: number): void {
  const signal = (p: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(p, sig);
    } catch {
      // already gone
    }
  };
  signal(pid, 'SIGSTOP');
  // kill() returns once the signal is queued; on another CPU the launcher may still be
  // forking. Its children are counted only when it has really stopped (or is gone).
  for (const until = Date.now() + 1000; Date.now() < until && !stoppedOrGone(pid); );
  for (const p of descendants(pid)) signal(p, 'SIGKILL');
  signal(pid, 'SIGKILL');
}

/**
 * The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or undefined when
 * the process is gone. The name may hold spaces and parentheses, so they start after the last ')'.
 */
export function procStat(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The process is stopped (T), traced (t) or dead (Z, X), or it is gone. */
function stoppedOrGone(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state === undefined || /^[TtZX]$/.test(state);
}

/** Every process below `pid`, from the parent pids in /proc/<pid>/stat. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const n of names) {
    if (!/^\d+$/.test(n)) continue;
    const fields = procStat(n);
    if (!fields) continue; // gone meanwhile
    const ppid = Number(fields[1]);
    const list = children.get(ppid);
    if (list) list.push(Number(n));
    else children.set(ppid, [Number(n)]);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift() as number) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
