/**
 * Build progress for people and machines: an ora spinner per step on a terminal, plain
 * `#N ...` lines in CI and pipes, JSON events on request.
 */
import type { Ora } from 'ora';
import type { ProgressEvent } from '../index.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json';

export function chooseMode(mode: ProgressMode, stream: NodeJS.WriteStream = process.stderr): Exclude<ProgressMode, 'auto'> {
  // A terminal that reports no width (some ptys) makes spinners redraw forever: use lines.
  const usable = stream.isTTY && (stream.columns ?? 0) > 0;
  if (mode === 'tty') return usable ? 'tty' : 'plain';
  if (mode !== 'auto') return mode;
  return usable && !process.env.CI ? 'tty' : 'plain';
}

export async function progressPrinter(mode: Exclude<ProgressMode, 'auto'>, out: NodeJS.WriteStream = process.stderr): Promise<(e: ProgressEvent) => void> {
  if (mode === 'json') {
    return (e) => out.write(JSON.stringify(e.type === 'plan' ? { type: 'plan', stages: e.plan.stages.map((s) => s.name ?? s.index) } : e) + '\n');
  }
  if (mode === 'plain') {
    return (e) => {
      if (e.type === 'step') {
        if (e.status === 'start') out.write(`#${e.id} ${e.name}\n`);
        // The step's line came with its start, as BuildKit prints it: `#N [stage i/n] ...` then `#N CACHED`.
        else if (e.status === 'cached') out.write(`#${e.id} CACHED\n`);
        else if (e.seconds !== undefined && e.seconds > 0) out.write(`#${e.id} DONE ${e.seconds.toFixed(1)}s\n`);
      } else if (e.type === 'output') {
        for (const line of e.text.split('\n').filter((l) => l !== '')) out.write(`#${e.id} ${line}\n`);
      } else if (e.type === 'notice') out.write(`notice: ${e.text}\n`);
    };
  }
  // ora only for a terminal: loading it costs a plain or JSON build time for nothing.
  const { default: ora } = await import('ora');
  const spinners = new Map<number, Ora>();
  return (e) => {
    if (e.type === 'step') {
      let s = spinners.get(e.id);
      if (e.status === 'start' || !s) {
        s = ora({ text: `#${e.id} ${e.name}`, stream: out, discardStdin: false }).start();
        spinners.set(e.id, s);
      }
      if (e.status === 'cached') s.succeed(`#${e.id} ${e.name} CACHED`);
      else if (e.status === 'done') s.succeed(`#${e.id} ${e.name}${e.seconds ? ` ${e.seconds.toFixed(1)}s` : ''}`);
    } else if (e.type === 'output') {
      const s = spinners.get(e.id);
      s?.clear();
      for (const line of e.text.split('\n').filter((l) => l !== '')) out.write(`  ${line}\n`);
      s?.render();
    } else if (e.type === 'notice') out.write(`notice: ${e.text}\n`);
  };
}
