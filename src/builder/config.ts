/**
 * Config-only instructions applied to an image config, as BuildKit applies them. Used by
 * the build engine and by `gantry import --change`.
 */
import type { Step } from '../plan/planner.js';
import type { ContainerConfig, ImageConfig } from '../oci/types.js';

export interface ConfigState {
  /** CMD was set in this build; ENTRYPOINT then keeps it instead of clearing it. */
  cmdSet: boolean;
}

/** Replace KEY in place (keeping its position, as docker does) or append it. */
function setEnv(env: string[], key: string, value: string): string[] {
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i < 0) return [...env, `${key}=${value}`];
  const copy = [...env];
  copy[i] = `${key}=${value}`;
  return copy;
}

/** Apply one config-only step; returns false for steps that are not config-only (RUN, COPY, ARG). */
export function applyConfigStep(image: ImageConfig, step: Step, state: ConfigState): boolean {
  const c: ContainerConfig = (image.config ??= {});
  switch (step.op) {
    case 'env':
      for (const { key, value } of step.pairs) c.Env = setEnv(c.Env ?? [], key, value);
      return true;
    case 'label':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const { key, value } of step.pairs) c.Labels[key] = value;
      return true;
    case 'maintainer':
      image.author = step.maintainer;
      return true;
    case 'expose':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of step.ports) c.ExposedPorts[p] = {};
      return true;
    case 'volume':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of step.volumes) c.Volumes[v] = {};
      return true;
    case 'user':
      c.User = step.user;
      return true;
    case 'workdir':
      c.WorkingDir = step.path;
      return true;
    case 'stopsignal':
      c.StopSignal = step.signal;
      return true;
    case 'shell':
      c.Shell = [...step.shell];
      return true;
    case 'cmd':
      c.Cmd = step.command.form === 'exec' ? [...step.command.args] : [...step.state.shell, step.command.args.join(' ')];
      state.cmdSet = true;
      return true;
    case 'entrypoint':
      c.Entrypoint = step.command.form === 'exec' ? [...step.command.args] : [...step.state.shell, step.command.args.join(' ')];
      if (!state.cmdSet) c.Cmd = null;
      return true;
    case 'onbuild':
      c.OnBuild = [...(c.OnBuild ?? []), step.expression];
      return true;
    case 'healthcheck': {
      if (step.test[0] === 'NONE') {
        c.Healthcheck = { Test: ['NONE'] };
        return true;
      }
      c.Healthcheck = {
        Test: [...step.test],
        ...(step.interval !== undefined ? { Interval: step.interval } : {}),
        ...(step.timeout !== undefined ? { Timeout: step.timeout } : {}),
        ...(step.startPeriod !== undefined ? { StartPeriod: step.startPeriod } : {}),
        ...(step.startInterval !== undefined ? { StartInterval: step.startInterval } : {}),
        ...(step.retries !== undefined ? { Retries: step.retries } : {}),
      };
      return true;
    }
    default:
      return false;
  }
}
