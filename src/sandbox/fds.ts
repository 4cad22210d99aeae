/**
 * Descriptors this process inherited without close-on-exec (Node opens its own with it): they
 * would pass through a launcher into the command, so the launcher closes them first.
 */
import { readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** The descriptors above stderr that are open without close-on-exec. */
export function inheritedFds(): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const n of names) {
    const fd = Number(n);
    if (!(fd > 2)) continue;
    try {
      const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (Number.parseInt(flags, 8) & O_CLOEXEC) === 0) out.push(fd);
    } catch {
      // closed in between (the directory listing's own descriptor): nothing to pass on
    }
  }
  return out.sort((a, b) => a - b);
}
