import { OptionError } from '../index.js';

/**
 * `--build-arg K=V` sets K; `--build-arg K` takes K's value from the environment and is
 * ignored when K is not set there, as docker does.
 */
export function parseBuildArgs(items: readonly string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = eq < 0 ? item : item.slice(0, eq);
    if (key === '') throw new OptionError('BUILD_ARG_INVALID', `invalid --build-arg "${item}": expected KEY=VALUE`);
    if (eq >= 0) out[key] = item.slice(eq + 1);
    else if (env[key] !== undefined) out[key] = env[key] as string;
  }
  return out;
}

/**
 * yargs option for a flag that may repeat but takes one value each time (like docker's
 * --build-arg): `array: true` would swallow the positional CONTEXT after it.
 */
export const repeatable = (describe: string) =>
  ({
    type: 'string',
    requiresArg: true,
    default: [] as string[],
    describe,
    coerce: (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]),
  }) as const;
