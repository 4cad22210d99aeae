/**
 * What the command line says when a word is not one gantry knows: the closest known one, as
 * docker (cobra) suggests: an edit distance of at most 2 (a swap of two neighbours counts
 * as one edit), or a known word that starts with what was typed.
 */

/** Optimal string alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The known word closest to `word`, if one is close enough. */
export function closest(word: string, known: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: { name: string; score: number } | undefined;
  for (const name of known) {
    const distance = editDistance(w, name.toLowerCase());
    const score = distance <= 2 ? distance : w.length >= 2 && name.startsWith(w) ? 3 : Infinity;
    if (score < (best?.score ?? Infinity)) best = { name, score };
  }
  return best?.name;
}

/** A message for a word that is no command: `unknown command "biuld"; did you mean "build"?` */
export function unknownCommandMessage(typed: string, known: readonly string[], prefix = ''): string {
  const hint = closest(typed, known);
  return hint
    ? `unknown command "${prefix}${typed}"; did you mean "${prefix}${hint}"?`
    : `unknown command "${prefix}${typed}" (gantry ${prefix}--help lists the commands)`;
}
