/** WORKDIR: config, and the directory made when missing (a layer only when it was). */
import { ensureDir } from '../copy.js';
import type { StageState } from '../state.js';
import { resolveUser } from '../users.js';
import type { FsStep, WorkdirStep } from './step.js';
import { withContainerConfig } from '../../image/mutate.js';

export function workdirStepOf(step: WorkdirStep, state: StageState): FsStep {
  return {
    inputs: async () => '',
    async exec(rootfs) {
      // Every level it makes is the USER's, as BuildKit's mkdir with parents makes them.
      const ids = step.state.user ? await resolveUser(rootfs, step.state.user).catch(() => undefined) : undefined;
      await ensureDir(rootfs, step.path, ids);
      state.config = withContainerConfig(state.config, { WorkingDir: step.path });
      return { capsKnownNone: false };
    },
  };
}
