/**
 * New image configs from old ones, as go-containerregistry's mutate makes them: each function
 * returns a new config and leaves the one it is given as it was, so the config of a base image
 * (shared by every stage built on it) or of a finished stage cannot be changed by another.
 */
import type { Platform } from '../oci/platform.js';
import type { ContainerConfig, HistoryEntry, ImageConfig } from '../oci/types.js';

/** `image` with `fields` of its container config set; a field given as `undefined` is removed. */
export function withContainerConfig(image: ImageConfig, fields: Partial<ContainerConfig>): ImageConfig {
  const config: ContainerConfig = { ...(image.config ?? {}) };
  for (const [k, v] of Object.entries(fields) as [keyof ContainerConfig, unknown][]) {
    if (v === undefined) delete config[k];
    else (config as Record<string, unknown>)[k] = v;
  }
  return { ...image, config };
}

/** `image` with `entry` at the end of its history. */
export function withHistory(image: ImageConfig, entry: HistoryEntry): ImageConfig {
  return { ...image, history: [...(image.history ?? []), entry] };
}

/** `image` with the variable `key` set: in its place when it is there (as docker keeps it), else last. */
export function withEnv(image: ImageConfig, key: string, value: string): ImageConfig {
  const env = [...(image.config?.Env ?? [])];
  const i = env.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i < 0) env.push(`${key}=${value}`);
  else env[i] = `${key}=${value}`;
  return withContainerConfig(image, { Env: env });
}

/** `image` with `labels` added to its labels (a label it has is replaced). */
export function withLabels(image: ImageConfig, labels: Readonly<Record<string, string>>): ImageConfig {
  return withContainerConfig(image, { Labels: { ...(image.config?.Labels ?? {}), ...labels } });
}

/** The config of the empty image for `platform` (FROM scratch): no layers, and WorkingDir "/" as BuildKit's says. */
export function scratchConfig(platform: Platform): ImageConfig {
  return {
    architecture: platform.architecture,
    os: platform.os,
    config: { WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
}
