/** The variables in scope while a stage is planned: its environment (ENV, the base's) and its ARGs. */
import type { EnvLookup } from '../dockerfile/shell.js';

export class Scope {
  readonly env = new Map<string, string>();
  readonly args = new Map<string, string | undefined>();

  lookup: EnvLookup = (name) => {
    if (this.env.has(name)) return this.env.get(name);
    return this.args.get(name);
  };

  /** Every name in scope, for suggestions. */
  names = (): string[] => [...new Set([...this.env.keys(), ...this.args.keys()])];
}

/** Set `KEY=value` (a bare `KEY` sets it empty) in `map`. */
export function setKV(map: Map<string, string>, kv: string): void {
  const eq = kv.indexOf('=');
  if (eq < 0) map.set(kv, '');
  else map.set(kv.slice(0, eq), kv.slice(eq + 1));
}
