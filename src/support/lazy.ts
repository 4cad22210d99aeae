/**
 * Built-in modules a no-op rebuild never uses, loaded on first use. node:child_process, when a
 * process is first started: loading it (with net and dgram) costs every command 1.2 ms.
 * node:zlib, when a layer is first compressed or decompressed: 0.5 to 0.8 ms. They live here,
 * in support/, which every module may import.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

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
