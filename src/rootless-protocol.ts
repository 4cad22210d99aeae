/**
 * The messages between build() for a non-root caller (index.ts, buildInUserNamespace) and its
 * worker in the user namespace (rootless-worker.ts). Not part of the public API.
 */
import type { ErrorRecord } from './errors/index.js';
import type { ExecuteResult, ProgressEvent } from './builder/execute.js';
import type { Credentials } from './registry/client.js';
import type { BuildOptions } from './index.js';

/** What build() sends the worker. */
export type WorkerRequest =
  | { type: 'build'; options: Omit<BuildOptions, 'onProgress' | 'signal' | 'credentials'>; credentials: boolean }
  | { type: 'credentials'; id: number; value?: Credentials; error?: ErrorRecord }
  | { type: 'abort' };
/** What the worker sends back. */
export type WorkerReply =
  | { type: 'event'; event: ProgressEvent }
  | { type: 'credentials'; id: number; registry: string }
  | { type: 'done'; result: ExecuteResult }
  | { type: 'failed'; error: ErrorRecord };
