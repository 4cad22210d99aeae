/**
 * Build progress for people and machines: an ora spinner over the steps running on a terminal, plain
 * `#N ...` lines in CI and pipes, one JSON object a line on request (its schema is in
 * docs/cli.md), nothing with --quiet. Each build is told from its header to its end: the
 * pulls, the steps, the outputs, the total time, and how it ended (finished, failed, cancelled).
 */
import type { Ora } from 'ora';
import type { GantryError, ProgressEvent, Warning } from '../index.js';
import { formatWarning } from './output.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';

/** How a build ended, for the last line. */
export type Outcome = { status: 'finished' } | { status: 'failed'; error: GantryError | Error } | { status: 'cancelled' };

/** What the first line tells. */
export interface BuildHeader {
  version: string;
  context: string;
  dockerfile?: string;
}

export interface Reporter {
  /** The first line: what builds what. */
  start(h: BuildHeader): void;
  event(e: ProgressEvent): void;
  warning(w: Warning): void;
  /** The last line: total time and how the build ended. Spinners still turning are stopped. */
  end(outcome: Outcome): void;
}

export function chooseMode(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): Exclude<ProgressMode, 'auto'> {
  // A terminal that reports no width (some ptys) makes spinners redraw forever, and a dumb one
  // cannot move its cursor: lines. Asked for (tty, or auto on a terminal outside CI), the
  // spinner draws whatever ora would guess.
  const usable = stream.isTTY && (stream.columns ?? 0) > 0 && process.env.TERM !== 'dumb';
  if (mode === 'tty') return usable ? 'tty' : 'plain';
  if (mode !== 'auto') return mode;
  return usable && !process.env.CI ? 'tty' : 'plain';
}

/** The step counts of the last line: `(done/total)`, as BuildKit's `[+] Building 3.2s (8/8)`. */
class Tally {
  private readonly started = performance.now();
  private total = 0;
  private readonly done = new Set<number>();

  count(e: ProgressEvent): void {
    if (e.type === 'plan') this.total = e.plan.stages.reduce((n, s) => n + s.steps.length, 0);
    else if (e.type === 'step' && e.status !== 'start') this.done.add(e.id);
  }

  seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  line(outcome: Outcome): string {
    const word = outcome.status === 'finished' ? 'FINISHED' : outcome.status === 'cancelled' ? 'CANCELED' : 'ERROR';
    return `[+] Building ${this.seconds().toFixed(1)}s (${this.done.size}/${this.total}) ${word}`;
  }
}

const MB = 1_000_000;
const size = (bytes: number): string => (bytes >= MB ? `${(bytes / MB).toFixed(1)} MB` : `${(bytes / 1000).toFixed(1)} kB`);

/** The JSON object of an event (the plan shortened to its stage names). */
function jsonOf(e: ProgressEvent): object {
  return e.type === 'plan' ? { type: 'plan', stages: e.plan.stages.map((s) => s.name ?? s.index) } : e;
}

export async function reporter(mode: Exclude<ProgressMode, 'auto'>, out: NodeJS.WriteStream = process.stderr): Promise<Reporter> {
  const tally = new Tally();
  if (mode === 'quiet') {
    return { start: () => undefined, event: () => undefined, warning: (w) => out.write(formatWarning(w) + '\n'), end: () => undefined };
  }
  if (mode === 'json') {
    const write = (o: object): void => void out.write(JSON.stringify(o) + '\n');
    return {
      start: (h) => write({ type: 'start', ...h }),
      event: (e) => {
        tally.count(e);
        write(jsonOf(e));
      },
      warning: (w) => write({ type: 'warning', ...w }),
      end: (o) => {
        const seconds = Number(tally.seconds().toFixed(3));
        if (o.status === 'failed') {
          const err = o.error as GantryError & { location?: unknown };
          write({ type: 'error', code: err.code ?? 'INTERNAL', message: err.message, ...(err.location ? { location: err.location } : {}), seconds });
        } else write({ type: o.status, seconds });
      },
    };
  }
  if (mode === 'plain') return plainReporter(out, tally);
  return ttyReporter(out, tally);
}

/** `#N ...` lines, as BuildKit's plain progress. */
function plainReporter(out: NodeJS.WriteStream, tally: Tally): Reporter {
  return {
    start: (h) => out.write(`#0 building with gantry ${h.version}: ${headerText(h)}\n`),
    event: (e) => {
      tally.count(e);
      plainLine(e, out);
    },
    warning: (w) => out.write(formatWarning(w) + '\n'),
    end: (o) => out.write(tally.line(o) + '\n'),
  };
}

/** `context DIR, Dockerfile FILE`. */
function headerText(h: BuildHeader): string {
  return `context ${h.context}${h.dockerfile ? `, Dockerfile ${h.dockerfile}` : ''}`;
}

/** A plain line for an event, as BuildKit's plain progress: `#N [stage i/n] ...`, `#N DONE 0.3s`. */
function plainLine(e: ProgressEvent, out: NodeJS.WriteStream): void {
  switch (e.type) {
    case 'step':
      if (e.status === 'start') out.write(`#${e.id} ${e.name}\n`);
      // The step's line came with its start, as BuildKit prints it: `#N [stage i/n] ...` then `#N CACHED`.
      else if (e.status === 'cached') out.write(`#${e.id} CACHED\n`);
      else if (e.seconds !== undefined && e.seconds > 0) out.write(`#${e.id} DONE ${e.seconds.toFixed(1)}s\n`);
      break;
    case 'output':
      for (const line of e.text.split('\n').filter((l) => l !== '')) out.write(`#${e.id} ${line}\n`);
      break;
    case 'pull':
      if (e.status === 'start') out.write(`#0 pulling ${e.ref}\n`);
      else out.write(`#0 pulled ${e.ref}: ${e.layers} layers, ${size(e.bytes)} in ${e.seconds.toFixed(1)}s\n`);
      break;
    case 'export':
      if (e.status === 'start') out.write(`#0 ${e.name}\n`);
      else if (e.status === 'blob') out.write(`#0 ${e.name}: ${e.digest} ${e.result}\n`);
      else out.write(`#0 ${e.name}: DONE ${e.seconds.toFixed(1)}s\n`);
      break;
    case 'image':
      out.write(`#0 writing image ${e.configDigest}${e.tags.length ? `, named ${e.tags.join(', ')}` : ''}\n`);
      break;
    case 'notice':
      out.write(`notice: ${e.text}\n`);
      break;
    case 'plan':
      break;
  }
}

/**
 * Spinners on a terminal: a line for each step, pull and output running, under one spinner (the
 * stages that run side by side each have a step running; two ora spinners on one terminal
 * would draw over each other); a step's line stays, with its time, once it is done; the last
 * line has the total time.
 */
async function ttyReporter(out: NodeJS.WriteStream, tally: Tally): Promise<Reporter> {
  // ora only for a terminal: loading it costs a plain or JSON build time for nothing.
  const { default: ora } = await import('ora');
  /** A spinner for `text`: drawn wherever tty progress was chosen (ora alone would not, with CI set). */
  const line = (text: string): Ora => ora({ text, stream: out, discardStdin: false, isEnabled: true });
  /** What is running, by key, in the order it started: the spinner's lines. */
  const running = new Map<string, string>();
  let spinner: Ora | undefined;
  const show = (): void => {
    const text = [...running.values()].join('\n  ');
    if (text === '') {
      spinner?.stop();
      spinner = undefined;
    } else if (spinner) {
      spinner.text = text;
      spinner.render(); // now, not at the next frame
    } else spinner = line(text).start();
  };
  const begin = (key: string, text: string): void => {
    running.set(key, text);
    show();
  };
  const update = (key: string, text: string): void => {
    if (running.has(key)) begin(key, text);
  };
  /** `key` done: its line stays, with a tick, above what is still running. */
  const succeed = (key: string, text: string): void => {
    running.delete(key);
    spinner?.stop();
    spinner = undefined;
    line(text).succeed();
    show();
  };
  /** Print above the spinner. */
  const above = (text: string): void => {
    spinner?.clear();
    out.write(text);
    spinner?.render();
  };
  return {
    start: (h) => out.write(`[+] Building with gantry ${h.version}: ${headerText(h)}\n`),
    event: (e) => {
      tally.count(e);
      if (e.type === 'step') {
        const key = `step ${e.id}`;
        if (e.status === 'start') begin(key, `#${e.id} ${e.name}`);
        else if (e.status === 'cached') succeed(key, `#${e.id} ${e.name} CACHED`);
        else succeed(key, `#${e.id} ${e.name}${e.seconds ? ` ${e.seconds.toFixed(1)}s` : ''}`);
      } else if (e.type === 'pull') {
        if (e.status === 'start') begin(`pull ${e.ref}`, `pulling ${e.ref}`);
        else succeed(`pull ${e.ref}`, `pulled ${e.ref}: ${e.layers} layers, ${size(e.bytes)} ${e.seconds.toFixed(1)}s`);
      } else if (e.type === 'export') {
        if (e.status === 'start') begin(`export ${e.name}`, e.name);
        else if (e.status === 'blob') update(`export ${e.name}`, `${e.name}: ${e.digest.slice(0, 19)} ${e.result}`);
        else succeed(`export ${e.name}`, `${e.name} ${e.seconds.toFixed(1)}s`);
      } else if (e.type === 'output') {
        above(
          e.text
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => `#${e.id} ${l}\n`)
            .join(''),
        );
      } else if (e.type === 'notice') above(`notice: ${e.text}\n`);
    },
    warning: (w) => above(formatWarning(w) + '\n'),
    end: (o) => {
      spinner?.stop();
      spinner = undefined;
      const cancelled = o.status === 'cancelled';
      for (const text of running.values()) line(text).stopAndPersist({ symbol: cancelled ? '✗' : '✖', suffixText: cancelled ? 'CANCELED' : 'ERROR' });
      running.clear();
      out.write(tally.line(o) + '\n');
    },
  };
}
