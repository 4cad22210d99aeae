import { createRequire } from 'node:module';
import type { CacheSharing } from '../dockerfile/mounts.js';

/**
 * How a RUN holds a cache mount's directory, by the mount's `sharing` (as BuildKit):
 * - `shared`: as it is; any number of RUNs (of this and other builds) write it at once.
 * - `locked`: one RUN at a time: the RUN waits until the one holding it is done.
 * - `private`: the RUN holds it when it is free; when another RUN holds it, the RUN gets a
 *   directory of its own, made anew and thrown away afterwards.
 * The hold is a lock directory beside the cache's (proper-lockfile's protocol), refreshed while
 * held, so a build killed while holding it stops delaying others once the lock is stale.
 */
export interface CacheHold {
  /** The directory to mount, or undefined when the RUN must use one of its own (private). */
  dir: string | undefined;
  release(): Promise<void>;
}

const STALE_MS = 10_000;
const UPDATE_MS = 2_000;

export async function holdCacheMount(
  dir: string,
  sharing: CacheSharing,
  options: { onWait?: () => void; signal?: AbortSignal } = {},
): Promise<CacheHold> {
  if (sharing === 'shared') return { dir, release: async () => undefined };
  const lockfile = createRequire(import.meta.url)('proper-lockfile') as typeof import('proper-lockfile');
  // Taken over by another build while held (this process was paused past the stale time):
  // the RUN goes on, its exclusivity lost; never an exception thrown from a timer.
  const onCompromised = (): void => undefined;
  const attempt = async (): Promise<(() => Promise<void>) | undefined> => {
    try {
      return await lockfile.lock(dir, { lockfilePath: `${dir}.lock`, realpath: false, stale: STALE_MS, update: UPDATE_MS, retries: 0, onCompromised });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ELOCKED') return undefined;
      throw err;
    }
  };
  let release = await attempt();
  if (!release && sharing === 'private') return { dir: undefined, release: async () => undefined };
  let delay = 50;
  let told = false;
  while (!release) {
    if (!told) options.onWait?.();
    told = true;
    options.signal?.throwIfAborted();
    await waitFor(delay, options.signal);
    delay = Math.min(delay * 2, 1_000);
    release = await attempt();
  }
  const held = release;
  return { dir, release: () => held().catch(() => undefined) };
}

function waitFor(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
