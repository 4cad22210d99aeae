/**
 * Phase timings for performance work. With `GANTRY_TRACE=1`, `trace(label)` writes the time
 * since the process started and since the previous mark to stderr; without it, a call costs
 * one comparison. docs/performance.md says how to read it.
 */
import { settings } from './settings.js';

let on: boolean | undefined;
let last = 0;

export function trace(label: string): void {
  if (on === undefined) on = settings().trace;
  if (!on) return;
  const now = performance.now();
  process.stderr.write(`trace ${now.toFixed(1).padStart(8)} ms  +${(now - last).toFixed(1).padStart(7)} ms  ${label}\n`);
  last = now;
}
