/**
 * Config-only instructions applied to an image config, as BuildKit applies them. Used by
 * the build engine and by `gantry import --change`.
 */
import type { Step } from '../plan/planner.js';
import type { ImageConfig } from '../oci/types.js';
import { withContainerConfig, withEnv, withLabels } from '../image/mutate.js';

export interface ConfigState {
  /** CMD was set in this build; ENTRYPOINT then keeps it instead of clearing it. */
  cmdSet: boolean;
}

/**
 * The config after one config-only step (a new object: `image` is left as it was), or undefined
 * for steps that are not config-only (RUN, COPY, ARG...). `state` notes that CMD was set.
 */
export function configAfterStep(image: ImageConfig, step: Step, state: ConfigState): ImageConfig | undefined {
  const c = image.config ?? {};
  const shellForm = (args: readonly string[]): string[] => [...step.state.shell, args.join(' ')];
  switch (step.op) {
    case 'env':
      return step.pairs.reduce((im, { key, value }) => withEnv(im, key, value), image);
    case 'label':
      return withLabels(image, Object.fromEntries(step.pairs.map(({ key, value }) => [key, value])));
    case 'maintainer':
      return { ...image, author: step.maintainer };
    case 'expose':
      return withContainerConfig(image, { ExposedPorts: { ...(c.ExposedPorts ?? {}), ...Object.fromEntries(step.ports.map((p) => [p, {}])) } });
    case 'volume':
      return withContainerConfig(image, { Volumes: { ...(c.Volumes ?? {}), ...Object.fromEntries(step.volumes.map((v) => [v, {}])) } });
    case 'user':
      return withContainerConfig(image, { User: step.user });
    case 'workdir':
      return withContainerConfig(image, { WorkingDir: step.path });
    case 'stopsignal':
      return withContainerConfig(image, { StopSignal: step.signal });
    case 'shell':
      return withContainerConfig(image, { Shell: [...step.shell] });
    case 'cmd':
      state.cmdSet = true;
      return withContainerConfig(image, { Cmd: step.command.form === 'exec' ? [...step.command.args] : shellForm(step.command.args) });
    case 'entrypoint':
      return withContainerConfig(image, {
        Entrypoint: step.command.form === 'exec' ? [...step.command.args] : shellForm(step.command.args),
        ...(state.cmdSet ? {} : { Cmd: null }),
      });
    case 'onbuild':
      return withContainerConfig(image, { OnBuild: [...(c.OnBuild ?? []), step.expression] });
    case 'healthcheck':
      if (step.test[0] === 'NONE') return withContainerConfig(image, { Healthcheck: { Test: ['NONE'] } });
      return withContainerConfig(image, {
        Healthcheck: {
          Test: [...step.test],
          ...(step.interval !== undefined ? { Interval: step.interval } : {}),
          ...(step.timeout !== undefined ? { Timeout: step.timeout } : {}),
          ...(step.startPeriod !== undefined ? { StartPeriod: step.startPeriod } : {}),
          ...(step.startInterval !== undefined ? { StartInterval: step.startInterval } : {}),
          ...(step.retries !== undefined ? { Retries: step.retries } : {}),
        },
      });
    default:
      return undefined;
  }
}
