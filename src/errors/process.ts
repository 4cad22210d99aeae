/**
 * Built-in modules a no-op rebuild never uses, loaded on first use. node:child_process, when a
 * process is first started: loading it (with net and dgram) costs every command 1.2 ms.
 * node:zlib, when a layer is first compressed or decompressed: 0.5 to 0.8 ms. They live here,
 * beside the crash points and the trace, because every module may import errors.
 */
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

type ChildProcess = typeof import('node:child_process');
type Zlib = typeof import('node:zlib');

let loaded: ChildProcess | undefined;
let loadedZlib: Zlib | undefined;

export function childProcess(): ChildProcess {
  return (loaded ??= createRequire(import.meta.url)('node:child_process') as ChildProcess);
}

export function zlib(): Zlib {
  return (loadedZlib ??= createRequire(import.meta.url)('node:zlib') as Zlib);
}

/** `promisify(execFile)`, with child_process loaded on the first call. */
export function execFileAsync(file: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  return promisify(childProcess().execFile)(file, args);
}
