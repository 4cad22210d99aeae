/**
 * node:child_process, loaded when a process is first started: a no-op rebuild starts none, and
 * loading it (with net and dgram) costs every command 1.2 ms. It lives here, beside the crash
 * points and the trace, because every module may import errors and each of them starts helpers.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

type ChildProcess = typeof import('node:child_process');

let loaded: ChildProcess | undefined;

export function childProcess(): ChildProcess {
  return (loaded ??= createRequire(import.meta.url)('node:child_process') as ChildProcess);
}

/** `promisify(execFile)`, with child_process loaded on the first call. */
export function execFileAsync(file: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(childProcess().execFile)(file, args);
}
