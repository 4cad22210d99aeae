/**
 * Word expansion and splitting with the rules of BuildKit's Dockerfile shell lexer
 * (frontend/dockerfile/shell): quotes, the escape character, `$V`, `${V}`, and the
 * `${V:-x} ${V-x} ${V:+x} ${V+x} ${V:?msg} ${V?msg}` modifiers, plus the pattern forms
 * `${V#p} ${V##p} ${V%p} ${V%%p} ${V/p/r} ${V//p/r}`.
 *
 * This is not a POSIX shell: there is no command substitution, no globbing, no tilde.
 * It is what ENV, WORKDIR, COPY, USER, LABEL, FROM ... see before they are used.
 */

/** Looks a variable up; `undefined` means unset (distinct from set-but-empty). */
export type EnvLookup = (name: string) => string | undefined;

export interface ShellOptions {
  /** `\` by default; a Dockerfile's `# escape=` directive can make it a backtick. */
  escapeToken?: string;
  /** Keep quote characters in the output (used to detect quoted heredoc delimiters). */
  rawQuotes?: boolean;
  /** Keep escape characters in the output. */
  rawEscapes?: boolean;
  /** Leave references to unset variables as they were written. */
  skipUnsetEnv?: boolean;
  /** Quotes are ordinary characters (BuildKit's SkipProcessQuotes: the body of an unquoted here-document). */
  skipQuotes?: boolean;
}

export interface ExpandResult {
  /** The expanded text, as one string (what ENV, WORKDIR ... use). */
  word: string;
  /** The expanded text split into words (what EXPOSE, ADD shell form ... use). */
  words: string[];
  /** Variables that were referenced and set. */
  matched: Set<string>;
  /** Variables that were referenced but unset. */
  unmatched: Set<string>;
}

export class ShellSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellSyntaxError';
  }
}

/**
 * How deep `${...}` may nest in one word. The lexer recurses once per level (as BuildKit's does:
 * Go grows its stack, so BuildKit takes 20,000 levels, slowly); Node's stack holds about 1,500,
 * so gantry refuses a word nested deeper than this with an error at its line. Real Dockerfiles
 * nest two or three.
 */
export const EXPANSION_DEPTH_LIMIT = 100;

/** A word nested past EXPANSION_DEPTH_LIMIT. */
class ShellNestingError extends ShellSyntaxError {}

/** The source as an error quotes it: whole as BuildKit quotes it, unless it is very long. */
function quoted(source: string): string {
  return source.length <= 1000 ? `"${source}"` : `"${source.slice(0, 200)}..." (${source.length} characters)`;
}

export function envFromMap(env: ReadonlyMap<string, string> | Record<string, string>): EnvLookup {
  if (env instanceof Map) return (name) => env.get(name);
  const rec = env as Record<string, string>;
  return (name) => (Object.prototype.hasOwnProperty.call(rec, name) ? rec[name] : undefined);
}

/** Expand `source`; throws ShellSyntaxError with BuildKit's wording on bad input. */
export function expand(source: string, env: EnvLookup, options: ShellOptions = {}): ExpandResult {
  const lexer = new Lexer(source, env, options);
  try {
    const { word, words } = lexer.processStopOn(undefined, false);
    return { word, words, matched: lexer.matched, unmatched: lexer.unmatched };
  } catch (err) {
    if (err instanceof ShellSyntaxError) {
      throw new ShellSyntaxError(`failed to process ${quoted(source)}: ${err.message}`);
    }
    throw err;
  }
}

export function expandWord(source: string, env: EnvLookup, options?: ShellOptions): string {
  return expand(source, env, options).word;
}

export function expandWords(source: string, env: EnvLookup, options?: ShellOptions): string[] {
  return expand(source, env, options).words;
}

const isSpace = (ch: string): boolean => /^\s$/u.test(ch);
const isDigit = (ch: string): boolean => /^\p{Nd}$/u.test(ch);
const isLetter = (ch: string): boolean => /^\p{L}$/u.test(ch);
// POSIX special parameters: they are never set in a Dockerfile, so they expand to ''.
const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Accumulates words the way BuildKit does: text from `$` expansions splits on spaces, quoted text does not. */
class WordSplitter {
  word = '';
  words: string[] = [];
  inWord = false;

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  finish(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class Lexer {
  private readonly chars: string[];
  private pos = 0;
  /** How many `${` the lexer is inside. */
  private depth = 0;
  private readonly escape: string;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(
    source: string,
    private readonly env: EnvLookup,
    private readonly options: ShellOptions,
  ) {
    this.chars = Array.from(source);
    this.escape = options.escapeToken ?? '\\';
  }

  private peek(): string | undefined {
    return this.chars[this.pos];
  }
  private next(): string | undefined {
    const ch = this.chars[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  private lookup(name: string): string | undefined {
    const value = this.env(name);
    if (value === undefined) this.unmatched.add(name);
    else this.matched.add(name);
    return value;
  }

  /** Process until `stop` (consumed) or the end; `stop` undefined means the end. */
  processStopOn(stop: string | undefined, rawEscapes: boolean): { word: string; words: string[] } {
    let result = '';
    const words = new WordSplitter();
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) break;
      if (stop !== undefined && ch === stop) {
        this.next();
        return { word: result, words: words.finish() };
      }
      if (((ch === "'" || ch === '"') && !this.options.skipQuotes) || ch === '$') {
        const text =
          ch === "'" ? this.singleQuote() : ch === '"' ? this.doubleQuote() : this.dollar();
        result += text;
        if (ch === '$') words.addString(text);
        else words.addRawString(text);
        continue;
      }
      let c = this.next() as string;
      if (c === this.escape) {
        if (this.options.rawEscapes || rawEscapes) {
          words.addRawChar(c);
          result += c;
        }
        const escaped = this.next();
        // An escape character at the very end is dropped.
        if (escaped === undefined) break;
        c = escaped;
        words.addRawChar(c);
      } else {
        words.addChar(c);
      }
      result += c;
    }
    if (stop !== undefined) {
      throw new ShellSyntaxError(`unexpected end of statement while looking for matching ${stop}`);
    }
    return { word: result, words: words.finish() };
  }

  private singleQuote(): string {
    // Everything up to the next ' is literal; a ' cannot be escaped inside.
    let result = this.options.rawQuotes ? "'" : '';
    this.next();
    for (;;) {
      const ch = this.next();
      if (ch === undefined) {
        throw new ShellSyntaxError('unexpected end of statement while looking for matching single-quote');
      }
      if (ch === "'") return this.options.rawQuotes ? result + "'" : result;
      result += ch;
    }
  }

  private doubleQuote(): string {
    // Literal except `$` and the escape character, which quotes only `"`, `$` and itself.
    let result = this.options.rawQuotes ? '"' : '';
    this.next();
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) {
        throw new ShellSyntaxError('unexpected end of statement while looking for matching double-quote');
      }
      if (ch === '"') {
        this.next();
        return this.options.rawQuotes ? result + '"' : result;
      }
      if (ch === '$') {
        result += this.dollar();
        continue;
      }
      let c = this.next() as string;
      if (c === this.escape) {
        const following = this.peek();
        if (following === undefined) continue; // a trailing escape is ignored
        if (following === '"' || following === '$' || following === this.escape) {
          if (this.options.rawEscapes) result += c;
          c = this.next() as string;
        }
      }
      result += c;
    }
  }

  private dollar(): string {
    this.next(); // '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next(); // '{'
    if (this.depth >= EXPANSION_DEPTH_LIMIT) {
      throw new ShellNestingError(`variable expansions nested more than ${EXPANSION_DEPTH_LIMIT} deep (the most gantry takes; BuildKit takes more)`);
    }
    this.depth++;
    try {
      return this.braced();
    } finally {
      this.depth--;
    }
  }

  /** The rest of `${...}`, after the brace. */
  private braced(): string {
    const first = this.peek();
    if (first === undefined) throw new ShellSyntaxError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') {
      throw new ShellSyntaxError('syntax error: bad substitution');
    }
    const name = this.name();
    let ch = this.next();
    if (ch === undefined) throw new ShellSyntaxError("syntax error: missing '}'");
    if (ch === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.options.skipUnsetEnv) return '${' + name + '}';
      return value ?? '';
    }
    if (name === '') throw new ShellSyntaxError('syntax error: bad substitution');
    let modifier = ch;
    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      if (ch === undefined) throw new ShellSyntaxError("syntax error: missing '}'");
      modifier += ch;
    }
    if (ch === '/' && !nullIsUnset) return this.replace(name);
    if (!['+', '-', '?', '#', '%'].includes(ch)) {
      // Consume the rest so the error is about the modifier, as BuildKit reports it.
      throw new ShellSyntaxError(`unsupported modifier (${modifier}) in substitution`);
    }
    const patternForm = ch === '#' || ch === '%';
    if (nullIsUnset && patternForm) {
      throw new ShellSyntaxError(`unsupported modifier (${modifier}) in substitution`);
    }
    const word = this.wordUntilBrace(patternForm);
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) return '${' + name + modifier + word + '}';
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (ch) {
      case '-':
        return unset ? word : (value as string);
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined) throw new ShellSyntaxError(`${name}: ${word || 'is not allowed to be unset'}`);
        if (unset) throw new ShellSyntaxError(`${name}: ${word || 'is not allowed to be empty'}`);
        return value;
      default: {
        // `#`/`%` remove the shortest matching prefix/suffix, `##`/`%%` the longest.
        const greedy = word.startsWith(ch);
        const pattern = greedy ? word.slice(1) : word;
        return ch === '#'
          ? trimPrefix(value ?? '', pattern, greedy, this.escape)
          : trimSuffix(value ?? '', pattern, greedy, this.escape);
      }
    }
  }

  private wordUntilBrace(rawEscapes: boolean): string {
    try {
      return this.processStopOn('}', rawEscapes).word;
    } catch (err) {
      if (err instanceof ShellSyntaxError && !(err instanceof ShellNestingError) && this.peek() === undefined) {
        throw new ShellSyntaxError("syntax error: missing '}'");
      }
      throw err;
    }
  }

  private replace(name: string): string {
    let all = false;
    if (this.peek() === '/') {
      this.next();
      all = true;
    }
    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).word;
    } catch (err) {
      if (err instanceof ShellSyntaxError && !(err instanceof ShellNestingError) && this.peek() === undefined) {
        throw new ShellSyntaxError("syntax error: missing '/' in ${}");
      }
      throw err;
    }
    const replacement = this.wordUntilBrace(false);
    const value = this.lookup(name);
    if (value === undefined && this.options.skipUnsetEnv) {
      return '${' + name + (all ? '//' : '/') + pattern + '/' + replacement + '}';
    }
    if (value === undefined || pattern === '') return value ?? '';
    const re = new RegExp(shellPatternToRegex(pattern, true, this.escape), all ? 'gsu' : 'su');
    return value.replace(re, () => replacement);
  }

  /** A variable name: letters, digits, `_`; or a run of digits; or one special parameter. */
  private name(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === undefined) break;
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== undefined && isDigit(this.peek() as string)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) {
        this.next();
        return ch;
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }
}

/** Translate a shell pattern (`*`, `?`, `[...]`, escapes) into a regular expression body. */
export function shellPatternToRegex(pattern: string, greedy: boolean, escape = '\\'): string {
  let out = '';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i] as string;
    if (ch === escape && i + 1 < chars.length) {
      out += escapeRegex(chars[++i] as string);
    } else if (ch === '*') {
      out += greedy ? '.*' : '.*?';
    } else if (ch === '?') {
      out += '.';
    } else if (ch === '[') {
      const end = chars.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = chars.slice(i + 1, end).join('');
      if (body.startsWith('!')) body = '^' + body.slice(1);
      out += '[' + body.replace(/\\/g, '\\\\') + ']';
      i = end;
    } else {
      out += escapeRegex(ch);
    }
  }
  return out;
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function trimPrefix(value: string, pattern: string, greedy: boolean, escape: string): string {
  const re = new RegExp('^(?:' + shellPatternToRegex(pattern, true, escape) + ')$', 'su');
  const chars = Array.from(value);
  const order = [...chars.keys(), chars.length];
  if (greedy) order.reverse();
  for (const n of order) {
    if (re.test(chars.slice(0, n).join(''))) return chars.slice(n).join('');
  }
  return value;
}

function trimSuffix(value: string, pattern: string, greedy: boolean, escape: string): string {
  const re = new RegExp('^(?:' + shellPatternToRegex(pattern, true, escape) + ')$', 'su');
  const chars = Array.from(value);
  const order = [...chars.keys(), chars.length];
  if (greedy) order.reverse();
  for (const n of order) {
    if (re.test(chars.slice(chars.length - n).join(''))) return chars.slice(0, chars.length - n).join('');
  }
  return value;
}
