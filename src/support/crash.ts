/**
 * Crash points, for the fault tests (test/hostile/sigkill.test.ts). With
 * `GANTRY_CRASH_AT=<point>` or `<point>@<n>` in the environment, the process kills itself
 * with SIGKILL the n-th time (the first, without `@n`) it reaches that point, so a test can
 * stop gantry exactly between two writes that a timed kill would hit only by luck. Without
 * the variable `crashPoint` is undefined, and `crashPoint?.(point)` is not even a call.
 */
import { Transform } from 'node:stream';
import { settings } from './settings.js';

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
  | 'snapshot-committed';

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
