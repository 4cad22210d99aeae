/**
 * `COPY --chmod` / `ADD --chmod`: an octal mode, or a symbolic one as chmod(1) takes it
 * (`u+x`, `go-w`, `u=rwx,go=rx`, `a+X`, `g=u`), applied to every file and directory copied, as
 * BuildKit applies it (BSD setmode semantics with a umask of 0: a clause without `u`, `g`, `o`
 * or `a` changes all three classes). Pure: the caller applies the result with chmod.
 */
import { GantryError } from '../errors/index.js';

/**
 * The new permission bits (07777) of an entry, from its current mode and whether it is a
 * directory; `octal` is set for an octal value, which BuildKit also gives the directories the
 * copy creates on the way to its destination.
 */
export type ModeChange = ((mode: number, isDir: boolean) => number) & { octal?: number };

const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_ISVTX = 0o1000;
const RWXU = 0o700;
const RWXG = 0o070;
const RWXO = 0o007;
const ALL_X = 0o111;

/** One action of a clause: `op` with permission letters, or with another class's bits (`g=u`). */
type Action = { op: '+' | '-' | '='; who: number; bits: number; x: boolean; copyFrom?: 'u' | 'g' | 'o'; sticky: boolean };

/**
 * Parse a `--chmod` value. Octal values above 07777 and any other text that is not a symbolic
 * mode are errors worded as BuildKit words them.
 */
export function parseChmod(text: string): ModeChange {
  const nonOctal = (): GantryError => new GantryError('COPY_CHMOD', `invalid chmod parameter: '${text}'. it should be octal string and between 0 and 07777`);
  if (/^[0-9]/.test(text)) {
    if (!/^[0-7]+$/.test(text)) throw nonOctal();
    const v = Number.parseInt(text, 8);
    if (v > 0o7777) throw nonOctal();
    return Object.assign(() => v, { octal: v });
  }
  const actions = parseSymbolic(text);
  if (!actions) throw new GantryError('COPY_CHMOD', `invalid chmod parameter: '${text}': invalid syntax (expected an octal mode like 0755 or a symbolic one like u+x,go-w)`);
  return (mode, isDir) => applySymbolic(actions, mode & 0o7777, isDir);
}

function parseSymbolic(text: string): Action[] | undefined {
  const actions: Action[] = [];
  for (const clause of text.split(',')) {
    let i = 0;
    let who = 0;
    for (; i < clause.length && 'ugoa'.includes(clause[i] as string); i++) {
      const c = clause[i];
      who |= c === 'u' ? S_ISUID | RWXU : c === 'g' ? S_ISGID | RWXG : c === 'o' ? RWXO : S_ISUID | S_ISGID | RWXU | RWXG | RWXO;
    }
    if (i >= clause.length) return undefined; // a clause needs an operator
    while (i < clause.length) {
      const op = clause[i] as Action['op'];
      if (op !== '+' && op !== '-' && op !== '=') return undefined;
      i++;
      let bits = 0;
      let x = false;
      let sticky = false;
      let copyFrom: Action['copyFrom'];
      for (; i < clause.length && !'+-='.includes(clause[i] as string); i++) {
        const p = clause[i];
        if (copyFrom || ((p === 'u' || p === 'g' || p === 'o') && (bits !== 0 || x || sticky))) return undefined; // `g=u` takes one class, alone
        if (p === 'r') bits |= 0o444;
        else if (p === 'w') bits |= 0o222;
        else if (p === 'x') bits |= ALL_X;
        else if (p === 'X') {
          if (op === '-') bits |= ALL_X;
          else x = true;
        } else if (p === 's') {
          if (who === 0 || (who & ~RWXO) !== 0) bits |= S_ISUID | S_ISGID;
        } else if (p === 't') {
          if (who === 0 || (who & ~RWXO) !== 0) sticky = true;
        } else if (p === 'u' || p === 'g' || p === 'o') copyFrom = p;
        else return undefined;
      }
      actions.push({ op, who, bits, x, sticky, ...(copyFrom ? { copyFrom } : {}) });
    }
  }
  return actions;
}

function applySymbolic(actions: Action[], original: number, isDir: boolean): number {
  let mode = original;
  for (const a of actions) {
    // Which bits the clause may touch: its classes (all of them when none was named).
    const who = a.who === 0 ? S_ISUID | S_ISGID | RWXU | RWXG | RWXO : a.who;
    const scope = who | (a.sticky ? S_ISVTX : 0);
    let bits: number;
    if (a.copyFrom) {
      const shift = a.copyFrom === 'u' ? 6 : a.copyFrom === 'g' ? 3 : 0;
      const v = (mode >> shift) & 0o7;
      bits = ((v << 6) | (v << 3) | v) & who & (RWXU | RWXG | RWXO);
    } else {
      bits = (a.bits | (a.sticky ? S_ISVTX : 0)) & scope;
      // X: execute where it is a directory or already executable by someone (before this --chmod).
      if (a.x && (isDir || (original & ALL_X) !== 0)) bits |= ALL_X & who;
    }
    if (a.op === '+') mode |= bits;
    else if (a.op === '-') mode &= ~bits;
    else if (a.copyFrom) mode = (mode & ~(who & (RWXU | RWXG | RWXO))) | bits; // `g=u`: the class's rwx only
    else mode = (mode & ~(who & (RWXU | RWXG | RWXO | S_ISUID | S_ISGID)) & ~(a.sticky ? S_ISVTX : 0)) | bits;
  }
  return mode & 0o7777;
}
