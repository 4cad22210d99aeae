/**
 * Instruction flags (`--from=x`, `--link`, `--mount=...` repeated), checked the way
 * BuildKit's BFlags checks them: unknown flags, missing values, bad booleans and
 * repeats of single-valued flags are errors.
 */

export type FlagKind = 'string' | 'bool' | 'list';

export class FlagError extends Error {
  constructor(
    message: string,
    readonly flag?: string,
  ) {
    super(message);
  }
}

export interface ParsedFlags {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  lists: Map<string, string[]>;
}

export function parseFlags(raw: readonly string[], spec: Readonly<Record<string, FlagKind>>): ParsedFlags {
  const out: ParsedFlags = { strings: new Map(), bools: new Map(), lists: new Map() };
  for (const item of raw) {
    if (!item.startsWith('--')) throw new FlagError(`invalid flag: ${item}`);
    const body = item.slice(2);
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const value = eq < 0 ? undefined : body.slice(eq + 1);
    const kind = spec[name];
    if (!kind) throw new FlagError(`unknown flag: ${name}`, name);
    switch (kind) {
      case 'bool': {
        if (out.bools.has(name)) throw new FlagError(`duplicate flag specified: ${name}`, name);
        if (value === undefined || value.toLowerCase() === 'true') out.bools.set(name, true);
        else if (value.toLowerCase() === 'false') out.bools.set(name, false);
        else throw new FlagError(`expecting boolean value for flag ${name}, not: ${value}`, name);
        break;
      }
      case 'string': {
        if (value === undefined) throw new FlagError(`missing a value on flag: ${name}`, name);
        if (out.strings.has(name)) throw new FlagError(`duplicate flag specified: ${name}`, name);
        out.strings.set(name, value);
        break;
      }
      case 'list': {
        if (value === undefined) throw new FlagError(`missing a value on flag: ${name}`, name);
        const list = out.lists.get(name) ?? [];
        list.push(value);
        out.lists.set(name, list);
        break;
      }
    }
  }
  return out;
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] as number;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j] as number;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      prev[j] = Math.min((prev[j] as number) + 1, (prev[j - 1] as number) + 1, diag + cost);
      diag = tmp;
    }
  }
  return prev[b.length] as number;
}

/** The closest candidate, if it is within about half the shorter word (case-insensitive). */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    const limit = Math.ceil(Math.min(w.length, c.length) / 2);
    if (d <= limit && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}
