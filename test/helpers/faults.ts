/**
 * What the fault tests (SIGKILL, a full disk, concurrent use) share: a base image big enough
 * for a kill to land inside each phase, a seeded random source whose seed is reported, and
 * checks for what a dead process may leave behind (processes, mounts, temp entries).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeBusyboxRootfs } from './rootfs.js';

/**
 * A busybox rootfs with more applets and a /data tree: `random` files of 24 KiB that do not
 * compress (so writing their layer takes a while) and `small` text files (so extracting it
 * has many entries). Contents follow from `seed`, so two calls give the same tree.
 */
export function makeFatRootfs(dir: string, options: { random: number; small: number; seed: string }): string {
  const root = makeBusyboxRootfs(dir);
  for (const applet of ['rm', 'mkdir', 'sleep', 'head', 'seq', 'touch', 'true']) symlinkSync('busybox', path.join(root, 'bin', applet));
  mkdirSync(path.join(root, 'data', 'text'), { recursive: true });
  for (let i = 0; i < options.random; i++) writeFileSync(path.join(root, 'data', `r${i}`), pseudoRandom(`${options.seed}/${i}`, 24 * 1024));
  for (let i = 0; i < options.small; i++) writeFileSync(path.join(root, 'data', 'text', `t${i}`), `line ${i} of ${options.seed}\n`.repeat(8));
  return root;
}

/** `size` bytes that look random, from a SHA-256 counter stream over `seed`. */
export function pseudoRandom(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, n = 0; off < size; off += 32, n++) createHash('sha256').update(`${seed}:${n}`).digest().copy(out, off);
  return out;
}

/** mulberry32: a small seeded generator, so a failing run can be repeated with its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Processes whose command line or environment holds `mark` (besides this one). */
export function processesWith(mark: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    if (Number(pid) === process.pid) continue;
    for (const f of ['cmdline', 'environ']) {
      try {
        const text = readFileSync(`/proc/${pid}/${f}`);
        if (text.includes(mark)) {
          found.push(`${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()}`);
          break;
        }
      } catch {
        // gone, or not ours to read
      }
    }
  }
  return found;
}

/** Wait up to `ms` for processes holding `mark` to end; returns those still there. */
export async function waitForNoProcesses(mark: string, ms = 3000): Promise<string[]> {
  const until = Date.now() + ms;
  for (;;) {
    const left = processesWith(mark);
    if (left.length === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Mount points of this mount namespace at or below `dir`. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(dir + '/'));
}
