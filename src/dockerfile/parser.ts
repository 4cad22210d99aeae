/**
 * The Dockerfile parser: text → untyped nodes with line ranges, exactly as BuildKit's
 * frontend/dockerfile/parser produces them (its `Dump()` format is reproduced by `dump`).
 *
 * dockerfile-ast indexes the source (keyword and flag positions, for columns in errors
 * and warnings). The logical lines themselves are joined here with BuildKit's rules,
 * because they differ from dockerfile-ast in details that change meaning: whitespace
 * kept on continuation lines, `\\` before end of line, and heredoc bodies.
 */
import { createRequire } from 'node:module';
import type { Instruction as AstInstruction } from 'dockerfile-ast';
import { DockerfileError } from '../errors/index.js';
import { expandWords, ShellSyntaxError } from './shell.js';
import { WarningSink, type Warning } from './warnings.js';

export interface Heredoc {
  /** The delimiter word, quotes removed. */
  name: string;
  /** `3<<EOF` → 3; 0 when not given. */
  fileDescriptor: number;
  /** False when any part of the delimiter was quoted: the body is then not expanded. */
  expand: boolean;
  /** `<<-`: leading tabs are removed from the body and the terminator. */
  chomp: boolean;
  /** The body, each line with its newline, leading tabs not yet removed. */
  content: string;
}

export interface Node {
  /** The instruction keyword, lower-cased (`run`, `copy`, ...). */
  keyword: string;
  /** The keyword as written. */
  rawKeyword: string;
  /** The logical line after joining continuations. */
  original: string;
  /** `--name=value` flags before the arguments, as written. */
  flags: string[];
  /** The arguments as BuildKit's line parsers split them. */
  args: string[];
  /** The arguments came from a JSON array (exec form). */
  json: boolean;
  /** ONBUILD's trigger instruction. */
  sub?: Node;
  heredocs: Heredoc[];
  /** 1-based first and last line in the file, heredoc bodies included. */
  startLine: number;
  endLine: number;
  /** 1-based column of the keyword. */
  column: number;
  /** Comment lines directly above the instruction. */
  comments: string[];
}

export interface Directive {
  name: string;
  value: string;
  line: number;
}

export interface ParseResult {
  file: string;
  nodes: Node[];
  escapeToken: string;
  directives: Directive[];
  warnings: Warning[];
  /** Position index of the source, for columns of flags and arguments. */
  positions: SourcePositions;
}

export interface ParseOptions {
  /** The Dockerfile's name, used in every message. */
  file?: string;
}

const VALID_DIRECTIVES = new Set(['escape', 'syntax', 'check']);
const RE_DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$/;
const RE_WHITESPACE = /[\t\v\f\r ]+/;
const RE_HEREDOC = /^(\d*)<<(-?)([^<]*)$/;
const HEREDOC_INSTRUCTIONS = new Set(['run', 'copy', 'add']);

const isUnicodeSpace = (ch: string): boolean => /^\s$/u.test(ch);
const trimLeftSpace = (s: string): string => s.replace(/^\s+/u, '');
const trimNewline = (s: string): string => s.replace(/[\r\n]+$/, '');

class Directives {
  escapeToken = '\\';
  continuation = makeContinuationRegex('\\');
  done = false;
  readonly seen = new Map<string, Directive>();

  /** Looks for `# name=value` until the first line that is not one (BuildKit's possibleParserDirective). */
  consider(line: string, lineNo: number, file: string): void {
    if (this.done) return;
    const m = RE_DIRECTIVE.exec(line);
    const key = m?.[1]?.toLowerCase();
    if (!m || !key || !VALID_DIRECTIVES.has(key)) {
      this.done = true;
      return;
    }
    if (this.seen.has(key)) {
      throw new DockerfileError('DOCKERFILE_DIRECTIVE', `only one ${key} parser directive can be used`, {
        file,
        line: lineNo,
      });
    }
    const value = m[2] as string;
    this.seen.set(key, { name: key, value, line: lineNo });
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new DockerfileError(
          'DOCKERFILE_DIRECTIVE',
          `invalid escape token '${value}' does not match \` or \\`,
          { file, line: lineNo },
        );
      }
      this.escapeToken = value;
      this.continuation = makeContinuationRegex(value);
    }
  }
}

/**
 * The escape token at the end of a line continues it, unless the escape token is itself
 * escaped; a line holding only the escape token continues too (BuildKit's regex).
 */
function makeContinuationRegex(esc: string): RegExp {
  const e = esc === '\\' ? '\\\\' : esc;
  return new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`);
}

function trimContinuation(line: string, d: Directives): { line: string; end: boolean } {
  if (d.continuation.test(line)) return { line: line.replace(d.continuation, '$1'), end: false };
  return { line, end: true };
}

const isComment = (raw: string): boolean => /^#/.test(trimLeftSpace(trimNewline(raw)));

/**
 * The comments above the next instruction once `raw` is read, as BuildKit collects them: an
 * empty comment (`#`) clears them, a parser directive is not one.
 */
function commentsAfter(comments: string[], raw: string, directive: boolean): string[] {
  if (!isComment(raw) || directive) return comments;
  const text = trimLeftSpace(raw).slice(1).trim();
  return text === '' ? [] : [...comments, text];
}

/** Split text into lines that keep their line endings, as BuildKit's scanner does. */
function splitLines(text: string): string[] {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const i = text.indexOf('\n', start);
    if (i < 0) break;
    lines.push(text.slice(start, i + 1));
    start = i + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
}

export function parse(text: string, options: ParseOptions = {}): ParseResult {
  const file = options.file ?? 'Dockerfile';
  const d = new Directives();
  const warnings = new WarningSink();
  const lines = splitLines(text);
  if (lines.length > 0) lines[0] = (lines[0] as string).replace(/^\uFEFF/, '');
  const positions = new SourcePositions(text, lines);
  const nodes: Node[] = [];
  let comments: string[] = [];
  let i = 0; // index of the next line to read (0-based)

  const processLine = (raw: string, stripLeft: boolean, lineNo: number): string => {
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeftSpace(token);
    d.consider(token, lineNo, file);
    return /^#/.test(token) ? '' : token;
  };

  while (i < lines.length) {
    const raw = lines[i] as string;
    const directivesBefore = d.seen.size;
    const first = processLine(raw, true, i + 1);
    comments = commentsAfter(comments, raw, d.seen.size > directivesBefore);
    i++;
    const startLine = i;
    let { line, end } = trimContinuation(first, d);
    if (end && line === '') continue;

    let emptyContinuation = false;
    while (!end && i < lines.length) {
      const rawNext = lines[i] as string;
      const cont = processLine(rawNext, false, i + 1);
      i++;
      if (isComment(rawNext)) continue;
      if (trimLeftSpace(cont) === '') {
        emptyContinuation = true;
        continue;
      }
      const t = trimContinuation(cont, d);
      line += t.line;
      end = t.end;
    }
    if (emptyContinuation) {
      // At the instruction's last line, as BuildKit reports it.
      warnings.add('NoEmptyContinuation', 'Empty continuation line', { file, line: i });
    }

    const node = nodeFromLine(line, d, { file, line: startLine, endLine: i });
    node.startLine = startLine;
    node.comments = comments;
    node.column = positions.keywordColumn(startLine);
    if (node.sub) {
      node.sub.startLine = startLine;
      node.sub.column = positions.subKeywordColumn(startLine);
    }

    const target = node.keyword === 'onbuild' && node.sub ? node.sub : node;
    if (HEREDOC_INSTRUCTIONS.has(target.keyword) && !target.json) {
      for (const doc of heredocsFromLine(line, { file, line: startLine })) {
        let terminated = false;
        while (i < lines.length) {
          const body = lines[i] as string;
          i++;
          let candidate = trimNewline(body);
          if (doc.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === doc.name) {
            terminated = true;
            break;
          }
          doc.content += body;
        }
        if (!terminated) {
          throw new DockerfileError(
            'DOCKERFILE_HEREDOC',
            `unterminated heredoc: no line "${doc.name}" closes the heredoc`,
            { file, line: startLine, endLine: i },
            node.rawKeyword.toUpperCase(),
          );
        }
        target.heredocs.push(doc);
      }
    }
    node.endLine = i;
    if (node.sub) node.sub.endLine = i;
    nodes.push(node);
    comments = [];
  }

  if (nodes.length === 0) {
    throw new DockerfileError('DOCKERFILE_EMPTY', 'file with no instructions', {
      file,
      line: Math.max(lines.length, 1),
    });
  }

  return {
    file,
    nodes,
    escapeToken: d.escapeToken,
    directives: [...d.seen.values()],
    warnings: warnings.items,
    positions,
  };
}

interface Where {
  file: string;
  line: number;
  endLine?: number;
}

function nodeFromLine(line: string, d: Directives, where: Where): Node {
  const { cmd, flags, args } = splitCommand(line);
  const keyword = cmd.toLowerCase();
  const parsed = parseArguments(keyword, args, d, where, cmd);
  return {
    keyword,
    rawKeyword: cmd,
    original: line,
    flags,
    args: parsed.args,
    json: parsed.json,
    ...(parsed.sub ? { sub: parsed.sub } : {}),
    heredocs: [],
    startLine: where.line,
    endLine: where.endLine ?? where.line,
    column: 1,
    comments: [],
  };
}

/** The keyword, the leading `--flags`, and the rest (BuildKit's splitCommand). */
export function splitCommand(line: string): { cmd: string; flags: string[]; args: string } {
  const trimmed = line.trim();
  const m = RE_WHITESPACE.exec(trimmed);
  if (!m) return { cmd: trimmed, flags: [], args: '' };
  const cmd = trimmed.slice(0, m.index);
  const rest = trimmed.slice(m.index + m[0].length);
  const { rest: args, flags } = extractBuilderFlags(rest);
  return { cmd, flags, args: args.trim() };
}

/** Leading words that start with `--` are flags; a lone `--` ends them. */
function extractBuilderFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    const ch = pos < line.length ? (line[pos] as string) : '';
    if (phase === 'spaces') {
      if (pos === line.length) break;
      if (isUnicodeSpace(ch)) continue;
      if (ch !== '-' || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = 'word';
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === 'word') {
      if (isUnicodeSpace(ch)) {
        phase = 'spaces';
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        pos++;
        word += line[pos];
        continue;
      }
      word += ch;
      continue;
    }
    // in a quote
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += line[pos];
      continue;
    }
    word += ch;
  }
  return { rest: '', flags };
}

interface ParsedArgs {
  args: string[];
  json: boolean;
  sub?: Node;
}

class NotStringArrayError extends Error {}

function parseArguments(keyword: string, rest: string, d: Directives, where: Where, cmd: string): ParsedArgs {
  const fail = (detail: string): never => {
    throw new DockerfileError('DOCKERFILE_SYNTAX', detail, where, cmd.toUpperCase());
  };
  switch (keyword) {
    case 'add':
    case 'copy':
    case 'volume':
      return maybeJSONToList(rest, fail);
    case 'cmd':
    case 'entrypoint':
    case 'run':
    case 'shell':
      return maybeJSON(rest, fail);
    case 'arg':
      return { args: parseWords(rest, d.escapeToken), json: false };
    case 'env':
    case 'label':
      return { args: parseNameVal(rest, keyword.toUpperCase(), d.escapeToken, fail), json: false };
    case 'expose':
    case 'from':
      return { args: whitespaceDelimited(rest), json: false };
    case 'healthcheck':
      return parseHealthConfig(rest, fail);
    case 'maintainer':
    case 'stopsignal':
    case 'user':
    case 'workdir':
      return { args: rest === '' ? [] : [rest], json: false };
    case 'onbuild':
      if (rest === '') return { args: [], json: false };
      return { args: [], json: false, sub: nodeFromLine(rest, d, where) };
    default:
      // Unknown instructions are kept so the instruction layer can name them with a suggestion.
      return { args: [], json: false };
  }
}

function whitespaceDelimited(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(RE_WHITESPACE);
}

/**
 * A JSON array of strings, as BuildKit's json.Unmarshal reads the whole rest of the line:
 * anything but JSON whitespace after the array (`["a"] junk`) makes it no array, so the
 * instruction is in shell form (BuildKit 28; older releases read `["a"] junk` as `a`).
 */
function parseJSONArray(rest: string): string[] {
  const text = trimLeftSpace(rest);
  if (!text.startsWith('[')) throw new SyntaxError('not a JSON array');
  let depth = 0;
  let inString = false;
  let end = -1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === '[' || ch === '{') depth++;
    else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) {
        end = i + 1;
        break;
      }
    }
  }
  if (end < 0) throw new SyntaxError('unterminated JSON array');
  if (!/^[ \t\r\n]*$/.test(text.slice(end))) throw new SyntaxError('text after the JSON array');
  const value: unknown = JSON.parse(text.slice(0, end));
  if (!Array.isArray(value)) throw new SyntaxError('not a JSON array');
  if (!value.every((v): v is string => typeof v === 'string')) throw new NotStringArrayError();
  return value;
}

const NOT_STRINGS = 'when using JSON array syntax, arrays must be comprised of strings only';

function maybeJSON(rest: string, fail: (m: string) => never): ParsedArgs {
  if (rest === '') return { args: [], json: false };
  try {
    return { args: parseJSONArray(rest), json: true };
  } catch (err) {
    if (err instanceof NotStringArrayError) fail(NOT_STRINGS);
    return { args: [rest], json: false };
  }
}

function maybeJSONToList(rest: string, fail: (m: string) => never): ParsedArgs {
  try {
    return { args: parseJSONArray(rest), json: true };
  } catch (err) {
    if (err instanceof NotStringArrayError) fail(NOT_STRINGS);
    return { args: whitespaceDelimited(rest), json: false };
  }
}

function parseHealthConfig(rest: string, fail: (m: string) => never): ParsedArgs {
  let sep = 0;
  while (sep < rest.length && !isUnicodeSpace(rest[sep] as string)) sep++;
  let next = sep;
  while (next < rest.length && isUnicodeSpace(rest[next] as string)) next++;
  if (sep === 0) return { args: [], json: false };
  const cmd = maybeJSON(rest.slice(next), fail);
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

/**
 * Words separated by whitespace, quotes and escapes kept as written (they are removed
 * later, by expansion). BuildKit's parseWords.
 */
export function parseWords(rest: string, escapeToken: string): string[] {
  const words: string[] = [];
  const chars = Array.from(rest);
  let phase: 'spaces' | 'word' | 'quote' = 'spaces';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= chars.length; pos++) {
    let ch = pos < chars.length ? (chars[pos] as string) : '';
    if (phase === 'spaces') {
      if (pos === chars.length) break;
      if (isUnicodeSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === chars.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isUnicodeSpace(ch)) {
        phase = 'spaces';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      }
      if (ch === escapeToken) {
        if (pos + 1 === chars.length) continue; // an escape at the very end is dropped
        word += ch;
        pos++;
        ch = chars[pos] as string;
      }
      word += ch;
      continue;
    }
    // in a quote; the escape token does nothing inside single quotes
    if (ch === quote) phase = 'word';
    if (ch === escapeToken && quote !== "'") {
      if (pos + 1 === chars.length) {
        phase = 'word';
        continue;
      }
      pos++;
      word += ch;
      ch = chars[pos] as string;
    }
    word += ch;
  }
  return words;
}

/**
 * ENV and LABEL: `KEY value with spaces` (legacy, separator "") or `k=v k2="v 2"`
 * (separator "="). Returned flat as [key, value, separator, ...] like BuildKit's nodes.
 */
function parseNameVal(rest: string, key: string, escapeToken: string, fail: (m: string) => never): string[] {
  const words = parseWords(rest, escapeToken);
  if (words.length === 0) return [];
  if (!(words[0] as string).includes('=')) {
    const m = RE_WHITESPACE.exec(rest);
    if (!m) return fail(`${key} must have two arguments`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''];
  }
  const out: string[] = [];
  for (const word of words) {
    const eq = word.indexOf('=');
    if (eq < 0) fail(`Syntax error - can't find = in "${word}". Must be of the form: name=value`);
    out.push(word.slice(0, eq), word.slice(eq + 1), '=');
  }
  return out;
}

function heredocsFromLine(line: string, where: Where): Heredoc[] {
  const noEnv = (): undefined => undefined;
  let words: string[];
  try {
    words = expandWords(line, noEnv, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch {
    return [];
  }
  const docs: Heredoc[] = [];
  for (const word of words) {
    const m = RE_HEREDOC.exec(word);
    if (!m || m[3] === '') continue;
    const rest = m[3] as string;
    let plain: string[];
    let quoted: string[];
    try {
      plain = expandWords(rest, noEnv, { skipUnsetEnv: true });
      quoted = expandWords(rest, noEnv, { skipUnsetEnv: true, rawQuotes: true });
    } catch (err) {
      const detail = err instanceof ShellSyntaxError ? err.message : String(err);
      throw new DockerfileError('DOCKERFILE_HEREDOC', `bad heredoc delimiter: ${detail}`, where);
    }
    if (plain.length !== 1 || quoted.length !== 1) continue;
    const name = plain[0] as string;
    const countQuotes = (s: string): number => (s.match(/['"]/g) ?? []).length;
    docs.push({
      name,
      fileDescriptor: m[1] ? Number.parseInt(m[1], 10) : 0,
      expand: countQuotes(name) === countQuotes(quoted[0] as string),
      chomp: m[2] === '-',
      content: '',
    });
  }
  return docs;
}

/** `<<-` bodies lose their leading tabs (BuildKit's ChompHeredocContent). */
export function heredocBody(doc: Heredoc): string {
  return doc.chomp ? doc.content.replace(/^\t+/gm, '') : doc.content;
}

/** Go's strconv.Quote, so dumps match BuildKit byte for byte. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (cp >= 0x20 && cp !== 0x7f && /[\p{L}\p{M}\p{N}\p{P}\p{S} ]/u.test(ch)) out += ch;
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\v') out += '\\v';
    else if (cp < 0x80) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
  }
  return out + '"';
}

/** One node as BuildKit's Node.Dump() prints it, e.g. `(copy ["--from=a"] "x" "/y")`. */
export function dumpNode(node: Node): string {
  let s = node.keyword;
  if (node.flags.length > 0) s += ' [' + node.flags.map(goQuote).join(' ') + ']';
  if (node.sub) s += ' (' + dumpNode(node.sub) + ')';
  for (const a of node.args) s += ' ' + goQuote(a);
  return s.trim();
}

/** The whole file in BuildKit's S-expression format: one line per instruction. */
export function dump(result: ParseResult | Node[]): string {
  const nodes = Array.isArray(result) ? result : result.nodes;
  return nodes.map((n) => '(' + dumpNode(n) + ')\n').join('');
}

/**
 * Source positions from dockerfile-ast: where keywords and flags stand, so errors and
 * warnings can give a column. Lines are 1-based here. dockerfile-ast parses the file only
 * when a position beyond a keyword's is asked for (a flag's, an ONBUILD trigger's): that
 * parse costs more than gantry's own, and most builds never need it.
 */
/**
 * dockerfile-ast, loaded on first use (required at run time, so the CLI bundle leaves it out:
 * with vscode-languageserver-types it is 220 kB that most commands would load for nothing).
 */
let astParser: (typeof import('dockerfile-ast'))['DockerfileParser'] | undefined;
const dockerfileAst = (): (typeof import('dockerfile-ast'))['DockerfileParser'] =>
  (astParser ??= (createRequire(import.meta.url)('dockerfile-ast') as typeof import('dockerfile-ast')).DockerfileParser);

export class SourcePositions {
  private indexed: Map<number, AstInstruction> | undefined;

  constructor(
    private readonly text: string,
    /** The file's lines as the parser splits them (without the byte order mark). */
    private readonly lines: readonly string[] = splitLines(text),
  ) {}

  private get byLine(): Map<number, AstInstruction> {
    if (this.indexed) return this.indexed;
    let instructions: AstInstruction[] = [];
    try {
      instructions = dockerfileAst().parse(this.text).getInstructions();
    } catch {
      // Positions are a convenience; the parse above is authoritative.
    }
    this.indexed = new Map(instructions.map((ins) => [ins.getRange().start.line + 1, ins]));
    return this.indexed;
  }

  /** The keyword's column: after the line's leading blanks (spaces and tabs), as dockerfile-ast counts. */
  keywordColumn(line: number): number {
    const raw = this.lines[line - 1];
    const blanks = raw === undefined ? undefined : /^[ \t]*/.exec(raw)?.[0].length;
    // Any other leading character (a form feed, a no-break space) is dockerfile-ast's to place.
    if (raw !== undefined && blanks !== undefined && /^[^\s]/u.test(raw.slice(blanks))) return blanks + 1;
    const ins = this.byLine.get(line);
    return ins ? ins.getInstructionRange().start.character + 1 : 1;
  }

  /** Column of ONBUILD's trigger keyword. */
  subKeywordColumn(line: number): number {
    const ins = this.byLine.get(line);
    const arg = ins?.getArguments()[0];
    return arg ? arg.getRange().start.character + 1 : this.keywordColumn(line);
  }

  /** Line and column of `--name` on the instruction starting at `line`, when it can be found. */
  flag(line: number, name: string): { line: number; column: number } | undefined {
    const ins = this.byLine.get(line) as (AstInstruction & { getFlags?: () => AstFlag[] }) | undefined;
    const flag = ins?.getFlags?.().find((f) => f.getName() === name);
    if (flag) {
      const start = flag.getRange().start;
      return { line: start.line + 1, column: start.character + 1 };
    }
    return undefined;
  }
}

interface AstFlag {
  getName(): string;
  getRange(): { start: { line: number; character: number } };
}
