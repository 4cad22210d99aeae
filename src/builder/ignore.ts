/**
 * `.dockerignore` and `COPY --exclude` patterns as BuildKit reads and matches them (moby's
 * patternmatcher and ignorefile, which BuildKit's context transfer uses), in time linear in the
 * path for each pattern.
 *
 * patternmatcher turns each pattern into a Go regular expression (`*` → `[^/]*`, `**` →
 * `(.*\/)?`, ...) and matches it with Go's RE2, which never backtracks. JavaScript's engine does,
 * and `**\/**\/**\/…\/b` against a deep path then takes time exponential in the number of `**`.
 * So the same regular expression is built here, text for text, and run as a Thompson automaton:
 * the set of states the path can be in, advanced one character at a time. Its quirks come
 * with it (`a+b` is three characters, `[*]` is what Go makes of `[[^/]*]`).
 *
 * A path is ignored as patternmatcher's MatchesOrParentMatches says: the patterns in order, the
 * last one that matches the path or one of its parent directories decides (`!` ones keep it).
 * So the patterns are tried from the last, and only those that can match: each pattern's literal
 * start (or, without one, its literal end) files it under a character the path must start (end)
 * with. What decided each directory is kept, so a path costs the few patterns filed under its
 * characters, not every pattern for it and each of its parents: a .dockerignore of 100,000
 * patterns is read and applied in well under a second.
 */

import { GantryError } from '../errors/index.js';

/** A pattern BuildKit refuses (or, for a few Go regular-expression escapes, gantry does not take); the message says which. */
export class IgnorePatternError extends GantryError {
  constructor(message: string) {
    super('IGNORE_PATTERN', message);
  }
}

/** Go's filepath.Clean for slash-separated paths. */
export function goClean(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/**
 * The patterns of an ignore file as ignorefile.ReadAll gives them: the BOM of the first line
 * dropped, `#` lines skipped, each line trimmed and cleaned, a leading `/` removed, `!` kept.
 */
export function readIgnoreLines(lines: string[]): string[] {
  const out: string[] = [];
  for (const [i, line] of lines.entries()) {
    let pattern = i === 0 && line.startsWith('\uFEFF') ? line.slice(1) : line;
    if (pattern.startsWith('#')) continue;
    pattern = pattern.trim();
    if (pattern === '') continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = goClean(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  }
  return out;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface Pattern {
  exclusion: boolean;
  cleaned: string;
  type: MatchType;
  /** For `regexp`: its text, and the automaton, made when first needed. */
  regexp: string;
  nfa?: Nfa;
  /** Literal text every match starts / ends with (for `suffix`, what HasSuffix looks for). */
  prefix: string;
  suffix: string;
}


/**
 * What patternmatcher escapes. Its list is `.+()|{}$`, but its bitmap (one byte per `b % 8`, bit
 * `b / 8`) has no bit for characters from 64 up: `|`, `{` and `}` reach Go's regexp as they are,
 * so `a|b` is an alternation there, and `a{2}` a repetition. BuildKit matches so; so does gantry.
 */
const ESCAPED = new Set(['.', '+', '(', ')', '$']);

/**
 * patternmatcher's Pattern.compile: the match type and, for `regexp`, the regular expression's
 * text; and the literal text every match starts and ends with (what the expression has as plain
 * characters before its first and after its last other token).
 */
function compile(cleaned: string): { type: MatchType; regexp: string; prefix: string; suffix: string } {
  let re = '^';
  let type: MatchType = 'exact';
  const chars = Array.from(cleaned);
  /** The plain characters of the expression, as runs: a non-plain token ends the current run. */
  let runs: string[] = [''];
  /** An alternation or a repetition was seen (see ESCAPED): any literal text may be optional. */
  let loose = false;
  const plain = (ch: string): void => {
    runs[runs.length - 1] += ch;
  };
  const token = (): void => {
    runs.push('');
  };
  let k = 0;
  const peek = (): string | undefined => chars[k];
  for (let i = 0; k < chars.length; i++) {
    const ch = chars[k++] as string;
    if (ch === '*') {
      if (peek() === '*') {
        k++;
        if (peek() === '/') k++; // `**/` is `**`
        if (peek() === undefined) {
          // `**` at the end matches everything below, as in .gitignore.
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (i === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
      token();
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
      token();
    } else if (ESCAPED.has(ch)) {
      re += `\\${ch}`;
      plain(ch);
    } else if (ch === '\\') {
      if (peek() !== undefined) {
        re += `\\${chars[k++] as string}`;
        type = 'regexp';
      } else re += '\\';
      token(); // \d is a class in Go's syntax, \t a tab
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = 'regexp';
      token();
    } else if (ch === '^') {
      // Go's start-of-text assertion: what came before it matched nothing.
      re += ch;
      runs = [''];
    } else if (ch === '|' || ch === '{' || ch === '}') {
      re += ch;
      loose = true;
    } else {
      re += ch;
      plain(ch);
    }
  }
  if (type === 'regexp') re += '$';
  // In a class (`[a]`), or past an escape, characters are not literal text: those expressions'
  // ends are read from the expression itself (Nfa).
  const ends = !loose && runs.length > 1 && !/[[\]\\]/.test(cleaned);
  return { type, regexp: re, prefix: ends ? (runs[0] as string) : '', suffix: ends ? (runs[runs.length - 1] as string) : '' };
}

function patternMatches(p: Pattern, path: string): boolean {
  switch (p.type) {
    case 'exact':
      return path === p.cleaned;
    case 'prefix':
      return path.startsWith(p.prefix);
    case 'suffix':
      // `**/foo` matches "foo"
      return path.endsWith(p.suffix) || (p.suffix.startsWith('/') && path === p.suffix.slice(1));
    case 'regexp':
      if (!path.startsWith(p.prefix) || !path.endsWith(p.suffix)) return false;
      p.nfa ??= new Nfa(p.regexp);
      return p.nfa.matches(path);
  }
}

/** Parse patterns as patternmatcher.New does (each trimmed and cleaned; `!` alone refused). */
export function parsePatterns(patterns: readonly string[]): Pattern[] {
  const out: Pattern[] = [];
  for (const raw of patterns) {
    let p = raw.trim();
    if (p === '') continue;
    p = goClean(p);
    let exclusion = false;
    if (p.startsWith('!')) {
      if (p.length === 1) throw new IgnorePatternError('illegal exclusion pattern: "!"');
      exclusion = true;
      p = p.slice(1);
    }
    const { type, regexp, ...ends } = compile(p);
    const pattern: Pattern = {
      exclusion,
      cleaned: p,
      type,
      regexp,
      prefix: type === 'exact' ? p : type === 'prefix' ? p.slice(0, -2) : type === 'regexp' ? ends.prefix : '',
      suffix: type === 'suffix' ? p.slice(2) : type === 'regexp' ? ends.suffix : '',
    };
    // Only classes and escapes can make an expression Go refuses: those are read now, so that the
    // error comes with the file, not in the middle of a walk. The rest are made when first needed.
    if (type === 'regexp' && /[[\]\\]/.test(p)) {
      try {
        pattern.nfa = new Nfa(regexp);
      } catch (err) {
        throw new IgnorePatternError(`syntax error in pattern: ${JSON.stringify(raw.trim())}: ${(err as Error).message}`);
      }
      pattern.prefix = pattern.nfa.literalPrefix;
      pattern.suffix = pattern.nfa.literalSuffix;
    }
    out.push(pattern);
  }
  return out;
}

/**
 * A matcher for `patterns` (already read from their file, see readIgnoreLines): whether a
 * slash-separated path relative to the context is left out.
 */
export function ignoreMatcher(patterns: readonly string[]): (path: string) => boolean {
  const list = parsePatterns(patterns);
  if (list.length === 0) return () => false;
  // Each pattern filed under the first character of its literal start, else the last of its
  // literal end, else with those that may match anything; each list in pattern order.
  const byFirst = new Map<string, number[]>();
  const byLast = new Map<string, number[]>();
  const anyPath: number[] = [];
  for (const [k, p] of list.entries()) {
    if (p.prefix !== '') push(byFirst, p.prefix[0] as string, k);
    else if (p.suffix !== '') push(byLast, p.suffix[p.suffix.length - 1] as string, k);
    else anyPath.push(k);
  }
  /** The last pattern after `after` that matches `path`, or `after`. */
  const lastMatch = (path: string, after: number): number => {
    const lists = [byFirst.get(path[0] as string) ?? [], byLast.get(path[path.length - 1] as string) ?? [], anyPath];
    const at = lists.map((l) => l.length - 1);
    for (;;) {
      // The highest index left among the three lists.
      let best = -1;
      let from = -1;
      for (let l = 0; l < 3; l++) {
        const k = (lists[l] as number[])[at[l] as number];
        if (k !== undefined && k > best) {
          best = k;
          from = l;
        }
      }
      if (best <= after) return after;
      at[from] = (at[from] as number) - 1;
      if (patternMatches(list[best] as Pattern, path)) return best;
    }
  };
  /** For each directory looked at: the last pattern that matches it or one of its parents (-1: none). */
  const decided = new Map<string, number>();
  const lastForDir = (dir: string): number => {
    const known = decided.get(dir);
    if (known !== undefined) return known;
    // The directories not yet known, nearest first, then worked out from the top (no recursion).
    const todo: string[] = [];
    let d = dir;
    for (; d !== '.' && !decided.has(d); d = dirname(d)) todo.push(d);
    let above = d === '.' ? -1 : (decided.get(d) as number);
    for (let i = todo.length - 1; i >= 0; i--) {
      above = lastMatch(todo[i] as string, above);
      decided.set(todo[i] as string, above);
    }
    return above;
  };
  return (path: string): boolean => {
    const file = goClean(path);
    if (file === '.') return false;
    const parent = dirname(file);
    const k = lastMatch(file, parent === '.' ? -1 : lastForDir(parent));
    return k >= 0 && !(list[k] as Pattern).exclusion;
  };
}

function push(map: Map<string, number[]>, key: string, value: number): void {
  const l = map.get(key);
  if (l) l.push(value);
  else map.set(key, [value]);
}

/** The parent of a relative path, "." at the top. */
function dirname(p: string): string {
  const i = p.lastIndexOf('/');
  return i <= 0 ? '.' : p.slice(0, i);
}

// ---------------------------------------------------------------------------------------------
// The regular expressions patternmatcher writes, as Go's regexp/syntax reads them, run as a
// Thompson automaton: O(path length × states) for any pattern.

type CharTest = (c: number) => boolean;

type Node =
  | { t: 'char'; test: CharTest; literal?: string }
  | { t: 'assert'; kind: 'bot' | 'eot' | 'wb' | 'nwb' }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; options: Node[] }
  | { t: 'star' | 'plus' | 'quest'; sub: Node }
  | { t: 'repeat'; sub: Node; min: number; max: number };

type State =
  | { k: 'char'; test: CharTest; out: number }
  | { k: 'split'; a: number; b: number }
  | { k: 'assert'; kind: 'bot' | 'eot' | 'wb' | 'nwb'; out: number }
  | { k: 'match' };

const isWord = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
const isAlnum = (ch: string): boolean => /^[0-9A-Za-z]$/.test(ch);

/** Go's POSIX classes (ASCII), as in [[:alpha:]]. */
const POSIX: Record<string, CharTest> = {
  alnum: (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122),
  alpha: (c) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122),
  ascii: (c) => c <= 0x7f,
  blank: (c) => c === 9 || c === 32,
  cntrl: (c) => c <= 31 || c === 127,
  digit: (c) => c >= 48 && c <= 57,
  graph: (c) => c >= 33 && c <= 126,
  lower: (c) => c >= 97 && c <= 122,
  print: (c) => c >= 32 && c <= 126,
  punct: (c) => (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126),
  space: (c) => c === 32 || (c >= 9 && c <= 13),
  upper: (c) => c >= 65 && c <= 90,
  word: isWord,
  xdigit: (c) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102),
};

/** Perl classes: \d \s \w and their negations (ASCII, as in Go). */
const PERL: Record<string, CharTest> = {
  d: (c) => c >= 48 && c <= 57,
  s: (c) => c === 9 || c === 10 || c === 12 || c === 13 || c === 32,
  w: isWord,
};

const CONTROL: Record<string, number> = { a: 7, f: 12, t: 9, n: 10, r: 13, v: 11 };

class Nfa {
  private readonly states: State[] = [];
  private readonly start: number;
  /** Literal text every match starts / ends with: what follows its leading `^`, what precedes its closing `$`. */
  readonly literalPrefix: string = '';
  readonly literalSuffix: string = '';

  constructor(source: string) {
    const root = new RegexParser(source).parse();
    this.start = this.build(root, this.add({ k: 'match' }));
    if (root.t !== 'seq') return;
    const items = root.items;
    const literal = (n: Node | undefined): string | undefined => (n?.t === 'char' ? n.literal : undefined);
    let i = 0;
    if (items[0]?.t === 'assert' && items[0].kind === 'bot') {
      for (i = 1; literal(items[i]) !== undefined; i++) this.literalPrefix += literal(items[i]) as string;
    }
    const last = items[items.length - 1];
    if (last?.t === 'assert' && last.kind === 'eot') {
      for (let j = items.length - 2; j >= i && literal(items[j]) !== undefined; j--) this.literalSuffix = (literal(items[j]) as string) + this.literalSuffix;
    }
  }

  private add(s: State): number {
    this.states.push(s);
    return this.states.length - 1;
  }

  /** The state that starts `node`, leading to `next` when it has matched. */
  private build(node: Node, next: number): number {
    switch (node.t) {
      case 'char':
        return this.add({ k: 'char', test: node.test, out: next });
      case 'assert':
        return this.add({ k: 'assert', kind: node.kind, out: next });
      case 'seq': {
        let at = next;
        for (let i = node.items.length - 1; i >= 0; i--) at = this.build(node.items[i] as Node, at);
        return at;
      }
      case 'alt': {
        let at = this.build(node.options[node.options.length - 1] as Node, next);
        for (let i = node.options.length - 2; i >= 0; i--) at = this.add({ k: 'split', a: this.build(node.options[i] as Node, next), b: at });
        return at;
      }
      case 'repeat': {
        // x{2,4} is x x (x (x)?)?, x{2,} is x x x*.
        let at = next;
        if (node.max < 0) at = this.build({ t: 'star', sub: node.sub }, at);
        else for (let i = node.min; i < node.max; i++) at = this.add({ k: 'split', a: this.build(node.sub, at), b: next });
        for (let i = 0; i < node.min; i++) at = this.build(node.sub, at);
        return at;
      }
      case 'quest': {
        const body = this.build(node.sub, next);
        return this.add({ k: 'split', a: body, b: next });
      }
      case 'star':
      case 'plus': {
        const loop = this.add({ k: 'split', a: -1, b: next });
        const body = this.build(node.sub, loop);
        (this.states[loop] as { a: number }).a = body;
        return node.t === 'star' ? loop : body;
      }
    }
  }

  /** Whether the expression matches somewhere in `text` (Go's MatchString). */
  matches(text: string): boolean {
    const chars = Array.from(text, (ch) => ch.codePointAt(0) as number);
    const n = this.states.length;
    const seen = new Int32Array(n).fill(-1);
    let current: number[] = [];
    let next: number[] = [];
    const stack: number[] = [];
    const close = (from: number, pos: number, into: number[]): boolean => {
      stack.push(from);
      while (stack.length > 0) {
        const s = stack.pop() as number;
        if (seen[s] === pos) continue;
        seen[s] = pos;
        const st = this.states[s] as State;
        switch (st.k) {
          case 'match':
            stack.length = 0;
            return true;
          case 'char':
            into.push(s);
            break;
          case 'split':
            stack.push(st.b, st.a);
            break;
          case 'assert':
            if (assertion(st.kind, chars, pos)) stack.push(st.out);
            break;
        }
      }
      return false;
    };
    // A match may start anywhere (most expressions start with ^, which only holds at 0; one with
    // an alternation at its top, `^a|b$`, need not).
    if (close(this.start, 0, current)) return true;
    for (let pos = 0; pos < chars.length; pos++) {
      const c = chars[pos] as number;
      next.length = 0;
      for (const s of current) {
        const st = this.states[s] as { test: CharTest; out: number };
        if (st.test(c) && close(st.out, pos + 1, next)) return true;
      }
      if (close(this.start, pos + 1, next)) return true;
      [current, next] = [next, current];
    }
    return false;
  }
}

function assertion(kind: 'bot' | 'eot' | 'wb' | 'nwb', chars: number[], pos: number): boolean {
  switch (kind) {
    case 'bot':
      return pos === 0;
    case 'eot':
      return pos === chars.length;
    default: {
      const before = pos > 0 && isWord(chars[pos - 1] as number);
      const after = pos < chars.length && isWord(chars[pos] as number);
      return (before !== after) === (kind === 'wb');
    }
  }
}

/** The part of Go's regexp/syntax (Perl flags) that patternmatcher's expressions can hold. */
class RegexParser {
  private readonly chars: string[];
  private i = 0;

  constructor(source: string) {
    this.chars = Array.from(source);
  }

  parse(): Node {
    const node = this.alternation(false);
    if (this.i < this.chars.length) throw new Error('unexpected )');
    return node;
  }

  /** Sequences separated by `|`, up to a `)` of the group (inGroup) or the end. */
  private alternation(inGroup: boolean): Node {
    const options = [this.sequence(inGroup)];
    while (this.chars[this.i] === '|') {
      this.i++;
      options.push(this.sequence(inGroup));
    }
    return options.length === 1 ? (options[0] as Node) : { t: 'alt', options };
  }

  /** `{n}`, `{n,}` or `{n,m}` at the cursor (Go: up to 1000), or undefined when it is a literal `{`. */
  private repeatCount(): { min: number; max: number } | undefined {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.chars.slice(this.i, this.i + 12).join(''));
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === '' ? -1 : Number(m[3]);
    if (min > 1000 || max > 1000 || (max >= 0 && max < min)) throw new Error(`invalid repeat count: ${m[0]}`);
    this.i += m[0].length;
    return { min, max };
  }

  private sequence(inGroup: boolean): Node {
    const items: Node[] = [];
    /** Whether the last token was a repetition operator (Perl syntax refuses `a**`). */
    let repeated = false;
    while (this.i < this.chars.length) {
      const ch = this.chars[this.i] as string;
      if (ch === '|') break;
      if (ch === ')') {
        if (!inGroup) throw new Error('unexpected )');
        break;
      }
      const count = ch === '{' ? this.repeatCount() : undefined;
      if (count || ch === '*' || ch === '+' || ch === '?') {
        if (!count) this.i++;
        const last = items.pop();
        if (last === undefined) throw new Error(`missing argument to repetition operator: ${ch}`);
        if (repeated) throw new Error(`invalid nested repetition operator: ${ch}`);
        items.push(count ? { t: 'repeat', sub: last, ...count } : { t: ch === '*' ? 'star' : ch === '+' ? 'plus' : 'quest', sub: last });
        if (this.chars[this.i] === '?') this.i++; // non-greedy: the same matches
        repeated = true;
        continue;
      }
      repeated = false;
      this.i++;
      switch (ch) {
        case '(': {
          if (this.chars[this.i] === '?') throw new Error('groups with flags are not supported');
          const sub = this.alternation(true);
          if (this.chars[this.i] !== ')') throw new Error('missing closing )');
          this.i++;
          items.push(sub);
          break;
        }
        case '.':
          items.push({ t: 'char', test: (c) => c !== 10 });
          break;
        case '^':
          items.push({ t: 'assert', kind: 'bot' });
          break;
        case '$':
          items.push({ t: 'assert', kind: 'eot' });
          break;
        case '[':
          items.push({ t: 'char', test: this.charClass() });
          break;
        case '\\':
          items.push(this.escapeOutside());
          break;
        default: {
          const code = ch.codePointAt(0) as number;
          items.push({ t: 'char', test: (c) => c === code, literal: ch });
        }
      }
    }
    return { t: 'seq', items };
  }

  private escapeOutside(): Node {
    const ch = this.chars[this.i];
    if (ch === undefined) throw new Error('trailing backslash at end of expression');
    if (ch === 'A' || ch === 'z' || ch === 'b' || ch === 'B') {
      this.i++;
      return { t: 'assert', kind: ch === 'A' ? 'bot' : ch === 'z' ? 'eot' : ch === 'b' ? 'wb' : 'nwb' };
    }
    const perl = this.perlClass();
    if (perl) return { t: 'char', test: perl };
    const code = this.escapedChar();
    return { t: 'char', test: (c) => c === code, literal: String.fromCodePoint(code) };
  }

  /** \d \D \s \S \w \W at the cursor (after the backslash), or undefined. */
  private perlClass(): CharTest | undefined {
    const ch = this.chars[this.i] as string;
    const base = PERL[ch.toLowerCase()];
    if (!base || !/[dswDSW]/.test(ch)) return undefined;
    this.i++;
    return ch === ch.toLowerCase() ? base : (c) => !base(c);
  }

  /** One escaped character (after the backslash): punctuation, or \a \f \t \n \r \v. */
  private escapedChar(): number {
    const ch = this.chars[this.i++];
    if (ch === undefined) throw new Error('trailing backslash at end of expression');
    const code = ch.codePointAt(0) as number;
    if (code < 0x80 && !isAlnum(ch)) return code;
    const control = CONTROL[ch];
    if (control !== undefined) return control;
    // \x.., octal, \p{..}, \Q..\E are Go escapes gantry does not take; other letters Go refuses.
    throw new Error(`invalid or unsupported escape sequence: \\${ch}`);
  }

  /** A class after its `[`: Go's parseClass (Perl flags: `-` is literal anywhere a range cannot be). */
  private charClass(): CharTest {
    let negate = false;
    if (this.chars[this.i] === '^') {
      negate = true;
      this.i++;
    }
    const parts: CharTest[] = [];
    for (let first = true; ; first = false) {
      const ch = this.chars[this.i];
      if (ch === undefined) throw new Error('missing closing ]');
      if (ch === ']' && !first) {
        this.i++;
        break;
      }
      if (ch === '[' && this.chars[this.i + 1] === ':') {
        const rest = this.chars.slice(this.i + 2).join('');
        const m = /^(\^?)([a-z]*):\]/.exec(rest);
        if (m) {
          const test = POSIX[m[2] as string];
          if (!test) throw new Error(`invalid character class range: [:${m[1] as string}${m[2] as string}:]`);
          parts.push(m[1] ? (c) => !test(c) : test);
          this.i += 2 + Array.from(m[0]).length;
          continue;
        }
      }
      if (ch === '\\') {
        this.i++;
        const perl = this.chars[this.i] !== undefined ? this.perlClass() : undefined;
        if (perl) {
          parts.push(perl);
          continue;
        }
        this.i--;
      }
      const lo = this.classChar();
      if (this.chars[this.i] === '-' && this.chars[this.i + 1] !== undefined && this.chars[this.i + 1] !== ']') {
        this.i++;
        const hi = this.classChar();
        if (hi < lo) throw new Error('invalid character class range');
        parts.push((c) => c >= lo && c <= hi);
      } else {
        parts.push((c) => c === lo);
      }
    }
    return negate ? (c) => !parts.some((p) => p(c)) : (c) => parts.some((p) => p(c));
  }

  private classChar(): number {
    const ch = this.chars[this.i];
    if (ch === undefined) throw new Error('missing closing ]');
    this.i++;
    if (ch === '\\') return this.escapedChar();
    return ch.codePointAt(0) as number;
  }
}
