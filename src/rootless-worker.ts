/**
 * The worker of build() for a non-root caller (index.ts, buildInUserNamespace): started in the
 * user namespace, where the caller is root, it runs one build() and relays its progress, its
 * credential look-ups and its result over the IPC channel. The caller going away (the channel
 * closing) aborts the build.
 */
import { build, GantryError, type Credentials } from './index.js';
import { errorRecord, reviveError } from './errors/index.js';
import type { WorkerReply, WorkerRequest } from './rootless-protocol.js';

const controller = new AbortController();
const pending = new Map<number, { resolve: (c: Credentials | undefined) => void; reject: (e: Error) => void }>();
let asked = 0;

const send = (m: WorkerReply): Promise<void> =>
  new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send?.(m, undefined, {}, () => resolve());
  });

const askCredentials = (registry: string): Promise<Credentials | undefined> =>
  new Promise((resolve, reject) => {
    const id = ++asked;
    pending.set(id, { resolve, reject });
    void send({ type: 'credentials', id, registry });
  });

async function run(request: Extract<WorkerRequest, { type: 'build' }>): Promise<void> {
  try {
    const result = await build({
      ...request.options,
      onProgress: (event) => void send({ type: 'event', event }),
      signal: controller.signal,
      ...(request.credentials ? { credentials: askCredentials } : {}),
    });
    await send({ type: 'done', result });
  } catch (err) {
    await send({ type: 'failed', error: errorRecord(err) });
  }
  process.disconnect?.();
}

process.on('message', (m: WorkerRequest) => {
  if (m.type === 'build') void run(m);
  else if (m.type === 'abort') controller.abort();
  else {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p?.reject(reviveError(m.error, [GantryError]));
    else p?.resolve(m.value);
  }
});
process.on('disconnect', () => controller.abort());
