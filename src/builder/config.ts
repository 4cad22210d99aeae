/**
 * What a step writes into the image config, as BuildKit writes it: the config-only
 * instructions applied (also used by `gantry import --change`), and each step's history entry.
 */
import { withContainerConfig, withEnv, withLabels } from '../image/mutate.js';
import type { ImageConfig } from '../oci/types.js';
import { heredocRefName, type Step } from '../plan/planner.js';
import { runCommand } from './run-command.js';

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
      // ArgsEscaped as BuildKit sets it on every CMD (a field Docker's image spec kept for Windows).
      return withContainerConfig(image, { Cmd: step.command.form === 'exec' ? [...step.command.args] : shellForm(step.command.args), ArgsEscaped: true });
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

// --- the history entry a step writes -----------------------------------------------------------

/**
 * The history entries a build writes, worded as BuildKit's Dockerfile frontend words them
 * (the text `docker history` shows), so that gantry's images and BuildKit's read the same.
 * Go's formatting is reproduced where BuildKit prints Go values: %q of string lists, %v of
 * lists and port maps, and the odd `HEALTHCHECK &{...}` of a struct.
 */

/** BuildKit's comment on every history entry its Dockerfile frontend writes. */
export const HISTORY_COMMENT = 'buildkit.dockerfile.v0';

/** Go's %q of a string (strconv.Quote): JSON's escaping is the same for what Dockerfiles hold. */
const goQuote = (s: string): string =>
  JSON.stringify(s).replace(/\\u00([0-9a-f]{2})/g, (_m, h: string) => `\\x${h}`).replace(/\\b/g, '\\x08');

/** Go's %q of an int: a quoted rune. */
function goQuoteRune(n: number): string {
  const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (named[n] !== undefined) return `'${named[n]}'`;
  if (n >= 0x20 && n < 0x7f) return `'${String.fromCharCode(n)}'`;
  if (n >= 0 && n < 0x100) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  return `'${String.fromCodePoint(n)}'`;
}

/** Go's time.Duration.String() of nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const sign = ns < 0 ? '-' : '';
  const abs = Math.abs(ns);
  if (abs < 1e3) return `${sign}${abs}ns`;
  if (abs < 1e6) return `${sign}${trim(abs / 1e3)}µs`;
  if (abs < 1e9) return `${sign}${trim(abs / 1e6)}ms`;
  const h = Math.floor(abs / 3.6e12);
  const m = Math.floor((abs % 3.6e12) / 6e10);
  const s = (abs % 6e10) / 1e9;
  if (h > 0) return `${sign}${h}h${m}m${trim(s)}s`;
  if (m > 0) return `${sign}${m}m${trim(s)}s`;
  return `${sign}${trim(s)}s`;
}
const trim = (x: number): string => String(Number(x.toFixed(9)));

const goList = (xs: readonly string[]): string => `[${xs.join(' ')}]`;
const goQuotedList = (xs: readonly string[]): string => `[${xs.map(goQuote).join(' ')}]`;

/** The command line a CMD or ENTRYPOINT or RUN ends up as. */
const commandOf = (step: Extract<Step, { op: 'run' | 'cmd' | 'entrypoint' }>): string[] =>
  step.command.form === 'exec' ? [...step.command.args] : [...step.state.shell, step.command.args.join(' ')];

/** created_by for a step, or undefined when BuildKit writes no history entry for it (ONBUILD). */
export function createdBy(step: Step): string | undefined {
  switch (step.op) {
    case 'run': {
      const args = step.historyArgs.length ? [`|${step.historyArgs.length}`, ...step.historyArgs] : [];
      return `RUN ${[...args, ...runCommand(step).argv].join(' ')} # buildkit`;
    }
    case 'copy': {
      // BuildKit 28: --parents, --chown and --chmod kept (--from, --link, --exclude not); the
      // paths, then the here-documents by name, then the destination.
      const names = new Set(step.inline.map((d) => d.name));
      const heredoc = (src: string): string | undefined => heredocRefName(src, names);
      const flags = [...(step.parents ? ['--parents'] : []), ...(step.chown !== undefined ? [`--chown=${step.chown}`] : []), ...(step.chmod !== undefined ? [`--chmod=${step.chmod}`] : [])];
      const paths = step.sources.filter((src) => heredoc(src) === undefined);
      const docs = step.sources.map(heredoc).filter((n): n is string => n !== undefined).map((n) => `<<${n}`);
      return `${step.kind} ${[...flags, ...paths, ...docs, step.dest].join(' ')} # buildkit`;
    }
    case 'cmd':
    case 'entrypoint':
      return `${step.op.toUpperCase()} ${goQuotedList(commandOf(step))}`;
    case 'env':
      return `ENV ${step.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    case 'label':
      return `LABEL ${step.pairs.map((p) => `${p.key}=${p.value}`).join(' ')}`;
    case 'arg':
      // With the value the ARG has (a build arg's, its default, the global one), as BuildKit 28 writes it.
      return `ARG ${step.args.map((a) => (a.value !== undefined ? `${a.name}=${a.value}` : a.name)).join(' ')}`;
    case 'maintainer':
      return `MAINTAINER ${step.maintainer}`;
    case 'expose':
      return `EXPOSE ${goList([...new Set(step.ports)].sort())}`;
    case 'volume':
      return `VOLUME ${goList(step.volumes)}`;
    case 'user':
      return `USER ${step.user}`;
    case 'workdir':
      return `WORKDIR ${step.path}`;
    case 'stopsignal':
      return `STOPSIGNAL ${step.signal}`;
    case 'shell':
      return `SHELL ${goList(step.shell)}`;
    case 'healthcheck': {
      // Test, Interval, Timeout, StartPeriod, StartInterval, Retries (BuildKit 28).
      if (step.test[0] === 'NONE') return `HEALTHCHECK &{${goQuotedList(['NONE'])} "0s" "0s" "0s" "0s" '\\x00'}`;
      const d = (n: number | undefined) => goQuote(goDuration(n ?? 0));
      return `HEALTHCHECK &{${goQuotedList(step.test)} ${d(step.interval)} ${d(step.timeout)} ${d(step.startPeriod)} ${d(step.startInterval)} ${goQuoteRune(step.retries ?? 0)}}`;
    }
    case 'onbuild':
      return undefined;
  }
}
