/**
 * The gantry process's own plumbing, apart from any one job: built-in modules loaded on first
 * use, the fault tests' crash points, and the phase timings of performance work. Each costs a
 * command nothing when it is not used: a module not needed is not loaded, and a crash point or
 * a trace mark that is off is `undefined` (`crashPoint?.(…)` is not even a call). The settings
 * that turn them on are read once, in settings.ts.
 */
import { createRequire } from 'node:module';
import { Transform } from 'node:stream';
import { promisify } from 'node:util';
import { settings } from './settings.js';

// --- built-in modules loaded on first use ------------------------------------------------------

/**
 * Built-in modules a no-op rebuild never uses, loaded on first use. node:child_process, when a
 * process is first started: loading it (with net and dgram) costs every command 1.2 ms.
 * node:zlib, when a layer is first compressed or decompressed: 0.5 to 0.8 ms. They live here,
 * in support/, which every module may import.
 */

type ChildProcess = typeof import('node:child_process');
type Zlib = typeof import('node:zlib');

/** A getter that requires the built-in module `id` on its first call. */
function onFirstUse<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= createRequire(import.meta.url)(id) as T);
}

export const childProcess = onFirstUse<ChildProcess>('node:child_process');
export const zlib = onFirstUse<Zlib>('node:zlib');

/** `promisify(execFile)`, with child_process loaded on the first call. */
export function execFileAsync(
  file: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeout?: number; maxBuffer?: number; cwd?: string } = {},
): Promise<{ stdout: string; stderr: string }> {
  return promisify(childProcess().execFile)(file, args, { encoding: 'utf8', ...options });
}

// --- crash points ------------------------------------------------------------------------------

/**
 * Crash points, for the fault tests (test/hostile/sigkill.test.ts). With
 * `GANTRY_CRASH_AT=<point>` or `<point>@<n>` in the environment, the process kills itself
 * with SIGKILL the n-th time (the first, without `@n`) it reaches that point, so a test can
 * stop gantry exactly between two writes that a timed kill would hit only by luck. Without
 * the variable `crashPoint` is undefined, and `crashPoint?.(point)` is not even a call.
 */

/** Where gantry can be made to crash; each is named for what has just happened. */
export type CrashPoint =
  /** A chunk of a blob went to its temp file. */
  | 'blob-chunk'
  /** A blob's temp file is whole and synced, not yet renamed into place. */
  | 'blob-temp'
  /** A blob is in place, not yet referenced by anything. */
  | 'blob-stored'
  /** The index lock is held, index.json not yet read. */
  | 'index-locked'
  /** index.json was replaced, the lock is still held. */
  | 'index-written'
  /** A layer entry was extracted into a rootfs. */
  | 'apply-entry'
  /** A directory of a rootfs was read by the snapshot walk. */
  | 'snapshot-dir'
  /** A step's cache entry was written. */
  | 'cache-put'
  /** A build's config and manifest are stored, not yet named. */
  | 'commit'
  /** A RUN command was started in the sandbox. */
  | 'run-started'
  /** A chunk of a pulled layer was passed on to the store's temp file. */
  | 'pull-chunk'
  /** A chunk of a pushed blob was read for the upload. */
  | 'push-chunk'
  /** A blob was pushed, the manifest not yet. */
  | 'push-blob'
  /** A new store's index.json is in place; its tmp/ flag and oci-layout are not yet. */
  | 'store-created'
  /** A step's snapshot is staged whole in a temp entry, not yet renamed into snapshots/. */
  | 'snapshot-staged'
  /** A step's snapshot is in place in snapshots/. */
  | 'snapshot-committed'
  /** A commit's layer is stored, its image not yet written nor named. */
  | 'commit-layer-written'
  /** A commit's config and manifest are stored, not yet named. */
  | 'commit-image-written';

const target = settings.crashAt;
let count = 0;

export const crashPoint: ((point: CrashPoint) => void) | undefined = target
  ? (point) => {
      if (target.point === point && ++count === target.n) process.kill(process.pid, 'SIGKILL');
    }
  : undefined;

/**
 * The stages of a stream pipeline that reach `point` once per chunk: a pass-through when
 * that point is the one armed, none otherwise (streams pay nothing outside the fault tests).
 */
export function crashPerChunk(point: CrashPoint): Transform[] {
  if (target?.point !== point) return [];
  return [
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        crashPoint?.(point);
        done(null, chunk);
      },
    }),
  ];
}

// --- trace marks -------------------------------------------------------------------------------

/**
 * Phase timings for performance work. With `GANTRY_TRACE=1`, `trace?.(label)` writes the time
 * since the process started and since the previous mark to stderr; without it, `trace` is
 * undefined and a mark is not even a call. docs/performance.md says how to read it.
 */

let last = 0;

export const trace: ((label: string) => void) | undefined = settings.trace
  ? (label) => {
      const now = performance.now();
      process.stderr.write(`trace ${now.toFixed(1).padStart(8)} ms  +${(now - last).toFixed(1).padStart(7)} ms  ${label}\n`);
      last = now;
    }
  : undefined;
