/**
 * A filesystem step's cache key, apart from running it (BuildKit's CacheMap beside its Exec):
 * the parent's key, the platform, the step as the planner resolved it (not its position, text
 * or id), what it reads beyond its instruction (`inputs`: the sum of its sources, another
 * stage's layers), and for a RUN what it is run with (host name, extra hosts, /dev/shm,
 * ulimits). The same inputs give the same key in every build.
 */
import type { Step } from '../plan/planner.js';
import { sha } from './state.js';
import type { BuildSettings } from './types.js';

/** What of a step decides its layer (not its position, text or id). */
export function layerKeyFields(step: Step): unknown {
  // ADD's --checksum only verifies what is fetched: the content is in the key, not the flag (as BuildKit).
  const { id: _id, position: _p, original: _o, location: _l, onbuild: _b, checksum: _c, state, ...rest } = step as Step & { onbuild?: boolean; checksum?: string };
  if (step.op === 'run') {
    const { proxyEnv: _proxy, ...run } = rest as Extract<Step, { op: 'run' }>;
    return { ...run, user: state.user, workdir: state.workdir, shell: state.shell };
  }
  return { ...rest, user: state.user, workdir: state.workdir };
}

export function stepKey(parent: string, platform: string, step: Step, inputs: string, options: BuildSettings): string {
  const hostname = step.op === 'run' ? options.buildArgs?.BUILDKIT_SANDBOX_HOSTNAME : undefined;
  // What a RUN is run with beyond its instruction, as BuildKit keys its exec op's meta.
  const meta =
    step.op === 'run'
      ? {
          ...(options.extraHosts?.length ? { hosts: options.extraHosts } : {}),
          ...(options.shmSize !== undefined ? { shm: options.shmSize } : {}),
          ...(options.ulimits?.length ? { ulimits: options.ulimits } : {}),
        }
      : {};
  return sha(JSON.stringify({ parent, platform, step: layerKeyFields(step), extra: inputs, ...(hostname ? { hostname } : {}), ...meta }));
}
