/**
 * Processes running inside a root filesystem: what a RUN of the chroot isolation left behind
 * (it has no PID namespace whose end would take them down), found by their root directory.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/** Kill every process whose root directory is `dir` or below it; how many were found. */
export function killRootedIn(dir: string): number {
  const want = path.resolve(dir);
  let total = 0;
  // A process may fork while the list is read: read again until a round finds none.
  for (let round = 0; round < 5; round++) {
    let found = 0;
    let names: string[];
    try {
      names = readdirSync('/proc');
    } catch {
      return total;
    }
    for (const n of names) {
      if (!/^\d+$/.test(n) || Number(n) === process.pid) continue;
      let root: string;
      try {
        root = readlinkSync(`/proc/${n}/root`);
      } catch {
        continue;
      }
      if (root !== want && !root.startsWith(`${want}/`)) continue;
      found++;
      try {
        process.kill(Number(n), 'SIGKILL');
      } catch {
        // gone
      }
    }
    total += found;
    if (found === 0) break;
  }
  return total;
}
