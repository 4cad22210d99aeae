/**
 * Phase timings for performance work. With `GANTRY_TRACE=1`, `trace?.(label)` writes the time
 * since the process started and since the previous mark to stderr; without it, `trace` is
 * undefined and a mark is not even a call. docs/performance.md says how to read it.
 */
import { settings } from './settings.js';

let last = 0;

export const trace: ((label: string) => void) | undefined = settings.trace
  ? (label) => {
      const now = performance.now();
      process.stderr.write(`trace ${now.toFixed(1).padStart(8)} ms  +${(now - last).toFixed(1).padStart(7)} ms  ${label}\n`);
      last = now;
    }
  : undefined;
