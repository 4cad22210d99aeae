/**
 * `--format`: the part of Go's text/template that docker's documentation uses, with docker's
 * handling around it (docker/cli's formatter package), so `gantry images --format ...` prints
 * what `docker images --format ...` prints:
 *
 * - `table` first: a header row, then the rows, aligned as Go's tabwriter does (minimum width
 *   10, padding 3); `\t` and `\n` written in the format are a tab and a newline; spaces around
 *   the format are trimmed;
 * - actions: `{{.Field}}`, `{{.Field.Sub}}`, `{{.}}`, literals (`"text"`, `` `raw` ``, numbers,
 *   `true`, `false`), function calls and pipes (`{{.Tag | printf "%-10s"}}`), `{{- ` and ` -}}`
 *   trimming, comments `{{/* ... *\/}}`;
 * - functions: docker's `json`, `join`, `split`, `lower`, `upper`, `title`, `pad`, `truncate`,
 *   and Go's `printf` (verbs `%s %v %d %q %x %f %t %%`, with flags and widths), `print`,
 *   `println`, `len`, `index`.
 *
 * Anything else (`if`, `range`, `with`, variables, parentheses, other functions) is refused with
 * an error that says so, before anything is printed: never a partial or different output. A
 * field a row type does not have is refused too, naming the ones it has.
 */
import { OptionError } from '../index.js';

export type Row = Record<string, unknown>;

const FUNCTIONS = ['json', 'join', 'split', 'lower', 'upper', 'title', 'pad', 'truncate', 'printf', 'print', 'println', 'len', 'index'] as const;
type FunctionName = (typeof FUNCTIONS)[number];
const KEYWORDS = ['if', 'else', 'end', 'range', 'with', 'define', 'template', 'block', 'break', 'continue', 'nil'];

type Operand =
  | { kind: 'field'; path: string[]; text: string }
  | { kind: 'literal'; value: unknown; text: string }
  | { kind: 'function'; name: FunctionName };

type Command = Operand[];
type Node = { kind: 'text'; text: string } | { kind: 'action'; pipeline: Command[]; text: string };

/** What a listing offers its templates: its fields and their table headers. */
export interface RowType {
  /** Singular noun for errors: `image`, `history entry`. */
  what: string;
  /** Field → header (docker's column title). */
  headers: Record<string, string>;
}

export class TemplateError extends OptionError {
  constructor(message: string) {
    super('FORMAT_INVALID', message);
  }
}

const SUPPORTED = 'supported: {{.Field}}, {{json .}}, {{json .Field}}, pipes (|) and the functions ' + FUNCTIONS.join(', ');

/** A parsed format: `table` or not, and its template. */
export interface Format {
  table: boolean;
  nodes: Node[];
}

/** docker's treatment of a format string before Go parses it: `table` prefix, trim, `\t` `\n`. */
export function parseFormat(format: string, type?: RowType): Format {
  let text = format;
  const table = text.startsWith('table');
  if (table) text = text.slice('table'.length);
  text = text.replace(/^ +| +$/g, '').replace(/\\t|\\n/g, (m) => (m === '\\t' ? '\t' : '\n'));
  const nodes = parseTemplate(text);
  if (type) checkFields(nodes, type);
  return { table, nodes };
}

function parseTemplate(src: string): Node[] {
  const nodes: Node[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      nodes.push({ kind: 'text', text: src.slice(i) });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src.startsWith('- ', start) || src.startsWith('-\t', start) || src.startsWith('-\n', start)) {
      text = text.replace(/\s+$/, '');
      start++;
    }
    if (text) nodes.push({ kind: 'text', text });
    const { end, close } = findClose(src, start, open);
    let body = src.slice(start, end);
    let next = close;
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      while (next < src.length && /\s/.test(src[next] as string)) next++;
    }
    const trimmed = body.trim();
    if (!(trimmed.startsWith('/*') && trimmed.endsWith('*/'))) {
      nodes.push({ kind: 'action', pipeline: parsePipeline(trimmed, `{{${body}}}`), text: `{{${trimmed}}}` });
    }
    i = next;
  }
  return nodes;
}

/** The end of the action opened at `open`: `}}` outside string literals. */
function findClose(src: string, start: number, open: number): { end: number; close: number } {
  let quote: string | undefined;
  for (let j = start; j < src.length; j++) {
    const c = src[j] as string;
    if (quote) {
      if (c === '\\' && quote === '"') j++;
      else if (c === quote) quote = undefined;
      else if (c === '\n' && quote === '"') throw new TemplateError(`template: unterminated quoted string in ${src.slice(open, j)}`);
    } else if (c === '"' || c === '`') quote = c;
    else if (c === '}' && src[j + 1] === '}') return { end: j, close: j + 2 };
  }
  throw new TemplateError(`template: unclosed action: ${src.slice(open)}`);
}

function parsePipeline(body: string, action: string): Command[] {
  if (body === '') throw new TemplateError(`template: missing value in ${action}`);
  const tokens = tokenize(body, action);
  const commands: Command[] = [[]];
  for (const t of tokens) {
    if (t === '|') {
      if ((commands[commands.length - 1] as Command).length === 0) throw new TemplateError(`template: missing command before | in ${action}`);
      commands.push([]);
      continue;
    }
    (commands[commands.length - 1] as Command).push(operand(t, action));
  }
  commands.forEach((c, n) => {
    if (c.length === 0) throw new TemplateError(`template: missing command after | in ${action}`);
    const [head, ...args] = c as [Operand, ...Operand[]];
    if (head.kind !== 'function') {
      if (args.length > 0) throw new TemplateError(`template: ${head.text} is not a function and takes no arguments, in ${action} (${SUPPORTED})`);
      if (n > 0) throw new TemplateError(`template: a pipe must go into a function, not ${head.text}, in ${action}`);
    }
    for (const a of args) if (a.kind === 'function') throw new TemplateError(`template: ${a.name} as an argument needs parentheses, which gantry does not support, in ${action}`);
  });
  return commands;
}

function tokenize(body: string, action: string): string[] {
  const tokens: string[] = [];
  let i = 0;
  while (i < body.length) {
    const c = body[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '|') {
      tokens.push('|');
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < body.length && body[j] !== c) j += body[j] === '\\' && c === '"' ? 2 : 1;
      if (j >= body.length) throw new TemplateError(`template: unterminated quoted string in ${action}`);
      tokens.push(body.slice(i, j + 1));
      i = j + 1;
    } else if (c === '(' || c === ')') {
      throw new TemplateError(`template: parentheses are not supported, in ${action} (${SUPPORTED})`);
    } else {
      let j = i;
      while (j < body.length && !/[\s|()"`]/.test(body[j] as string)) j++;
      tokens.push(body.slice(i, j));
      i = j;
    }
  }
  return tokens;
}

function operand(t: string, action: string): Operand {
  if (t === '.') return { kind: 'field', path: [], text: t };
  if (t.startsWith('.')) {
    const path = t.slice(1).split('.');
    if (path.some((p) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(p))) throw new TemplateError(`template: bad field reference ${t} in ${action}`);
    return { kind: 'field', path, text: t };
  }
  if (t.startsWith('"')) {
    try {
      return { kind: 'literal', value: JSON.parse(t.replace(/\\([abfnrtv'])/g, (_m, e: string) => goEscape(e))) as unknown, text: t };
    } catch {
      throw new TemplateError(`template: bad string ${t} in ${action}`);
    }
  }
  if (t.startsWith('`')) return { kind: 'literal', value: t.slice(1, -1), text: t };
  if (/^-?\d+$/.test(t)) return { kind: 'literal', value: Number(t), text: t };
  if (t === 'true' || t === 'false') return { kind: 'literal', value: t === 'true', text: t };
  if (t.startsWith('$')) throw new TemplateError(`template: variables (${t}) are not supported, in ${action} (${SUPPORTED})`);
  if (KEYWORDS.includes(t)) throw new TemplateError(`template: {{${t}}} is not supported, in ${action} (${SUPPORTED})`);
  if ((FUNCTIONS as readonly string[]).includes(t)) return { kind: 'function', name: t as FunctionName };
  throw new TemplateError(`template: function "${t}" is not supported, in ${action} (${SUPPORTED})`);
}

function goEscape(e: string): string {
  const map: Record<string, string> = { a: '\\u0007', b: '\\b', f: '\\f', n: '\\n', r: '\\r', t: '\\t', v: '\\u000b', "'": "'" };
  return map[e] as string;
}

/** Every field reference that starts at the row must be one of the row type's fields. */
function checkFields(nodes: Node[], type: RowType): void {
  const known = Object.keys(type.headers);
  for (const n of nodes) {
    if (n.kind !== 'action') continue;
    for (const c of n.pipeline) {
      for (const o of c) {
        if (o.kind !== 'field' || o.path.length === 0) continue;
        const name = o.path[0] as string;
        if (known.includes(name)) continue;
        const same = known.find((k) => k.toLowerCase() === name.toLowerCase());
        throw new TemplateError(
          `template: ${type.what} has no field .${name}${same ? ` (did you mean .${same}?)` : ''}; ` + `its fields: ${known.map((k) => '.' + k).join(', ')}`,
        );
      }
    }
  }
}

// --- execution ---------------------------------------------------------------------------

/** Go's json.Marshal of a value: HTML characters and line separators escaped as Go does. */
export function goJSON(v: unknown): string {
  const s = JSON.stringify(v === undefined ? null : v) ?? 'null';
  return s.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'no value';
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'a list';
  return typeof v === 'object' ? 'a structure' : `a ${typeof v}`;
}

/** Go's %v of a value, where gantry can be sure to print what Go would; structures are refused. */
function printValue(v: unknown, what: string): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `[${v.map((e) => printValue(e === undefined ? null : e, what)).join(' ')}]`;
  const field = /^\{\{(\.[\w.]*)\}\}$/.exec(what)?.[1];
  throw new TemplateError(`template: ${what} is a structure, which gantry prints only as JSON: ${field ? `{{json ${field}}}` : 'use the json function'}`);
}

function asString(v: unknown, fn: string): string {
  if (typeof v === 'string') return v;
  throw new TemplateError(`template: ${fn} takes a string, not ${describe(v)}`);
}

function asInt(v: unknown, fn: string): number {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  throw new TemplateError(`template: ${fn} takes a whole number, not ${describe(v)}`);
}

function arity(fn: string, args: unknown[], n: number): void {
  if (args.length !== n) throw new TemplateError(`template: wrong number of arguments for ${fn}: want ${n}, got ${args.length}`);
}

/** Go's fmt.Sprintf for the verbs templates use. */
export function goSprintf(format: string, args: unknown[]): string {
  let n = 0;
  const out = format.replace(/%([-+# 0]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g, (_m, flags: string, width: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    if (n >= args.length) return `%!${verb}(MISSING)`;
    const a = args[n++];
    let s: string;
    switch (verb) {
      case 's':
      case 'v':
        s = typeof a === 'string' ? a : printValue(a, 'a printf argument');
        if (prec !== undefined && verb === 's') s = [...s].slice(0, Number(prec)).join('');
        break;
      case 'q':
        s = typeof a === 'string' ? goJSON(a) : `%!q(${describe(a)})`;
        break;
      case 'd':
        s = typeof a === 'number' && Number.isInteger(a) ? String(a) : `%!d(${typeof a === 'string' ? 'string=' + a : describe(a)})`;
        if (flags.includes('+') && typeof a === 'number' && a >= 0) s = '+' + s;
        break;
      case 'x':
        s = typeof a === 'number' && Number.isInteger(a) ? a.toString(16) : typeof a === 'string' ? Buffer.from(a).toString('hex') : `%!x(${describe(a)})`;
        break;
      case 'f':
        s = typeof a === 'number' ? a.toFixed(prec === undefined ? 6 : Number(prec)) : `%!f(${describe(a)})`;
        break;
      case 't':
        s = typeof a === 'boolean' ? String(a) : `%!t(${describe(a)})`;
        break;
      default:
        throw new TemplateError(`template: printf verb %${verb} is not supported (%s %v %d %q %x %f %t %%)`);
    }
    const w = width === undefined ? 0 : Number(width);
    const len = [...s].length;
    if (len >= w) return s;
    if (flags.includes('-')) return s + ' '.repeat(w - len);
    if (flags.includes('0') && /^[dfx]$/.test(verb)) return s.startsWith('-') ? '-' + s.slice(1).padStart(w - 1, '0') : s.padStart(w, '0');
    return ' '.repeat(w - len) + s;
  });
  return n < args.length ? out + `%!(EXTRA ${args.slice(n).map((a) => printValue(a, 'a printf argument')).join(', ')})` : out;
}

function call(name: FunctionName, args: unknown[], header: boolean): unknown {
  // docker's header functions: in a table's header row these give the header text back.
  if (header && ['json', 'split', 'join', 'title', 'lower', 'upper', 'truncate'].includes(name)) {
    return typeof args[0] === 'string' ? args[0] : '';
  }
  switch (name) {
    case 'json':
      arity(name, args, 1);
      return goJSON(args[0]);
    case 'join': {
      arity(name, args, 2);
      const list = args[0];
      if (!Array.isArray(list) || !list.every((e) => typeof e === 'string')) throw new TemplateError(`template: join takes a list of strings, not ${describe(list)}`);
      return list.join(asString(args[1], name));
    }
    case 'split':
      arity(name, args, 2);
      return asString(args[0], name).split(asString(args[1], name));
    case 'lower':
      arity(name, args, 1);
      return asString(args[0], name).toLowerCase();
    case 'upper':
      arity(name, args, 1);
      return asString(args[0], name).toUpperCase();
    case 'title':
      arity(name, args, 1);
      return asString(args[0], name).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, pre: string, c: string) => pre + c.toUpperCase());
    case 'pad': {
      arity(name, args, 3);
      const s = asString(args[0], name);
      return s === '' ? s : ' '.repeat(Math.max(0, asInt(args[1], name))) + s + ' '.repeat(Math.max(0, asInt(args[2], name)));
    }
    case 'truncate': {
      arity(name, args, 2);
      const s = asString(args[0], name);
      const n = asInt(args[1], name);
      return Buffer.byteLength(s) < n ? s : Buffer.from(s).subarray(0, Math.max(0, n)).toString();
    }
    case 'printf':
      if (args.length === 0) throw new TemplateError('template: printf needs a format');
      return goSprintf(asString(args[0], name), args.slice(1));
    case 'print':
    case 'println': {
      const parts = args.map((a) => printValue(a, `a ${name} argument`));
      if (name === 'println') return parts.join(' ') + '\n';
      return parts.reduce((s, p, i) => s + (i > 0 && typeof args[i] !== 'string' && typeof args[i - 1] !== 'string' ? ' ' : '') + p, '');
    }
    case 'len': {
      arity(name, args, 1);
      const v = args[0];
      if (typeof v === 'string') return Buffer.byteLength(v);
      if (Array.isArray(v)) return v.length;
      if (v && typeof v === 'object') return Object.keys(v).length;
      throw new TemplateError(`template: len of ${describe(v)}`);
    }
    case 'index': {
      if (args.length < 2) throw new TemplateError('template: index needs a list or map and an index');
      let v = args[0];
      for (const k of args.slice(1)) {
        if (Array.isArray(v)) {
          const i = asInt(k, name);
          if (i < 0 || i >= v.length) throw new TemplateError(`template: index out of range: ${i}`);
          v = v[i];
        } else if (v && typeof v === 'object') v = (v as Row)[asString(k, name)];
        else throw new TemplateError(`template: cannot index ${describe(v)}`);
      }
      return v;
    }
  }
}

function fieldOf(value: unknown, path: string[], text: string): unknown {
  let v = value;
  for (const [n, key] of path.entries()) {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v)) {
      throw new TemplateError(`template: can't evaluate field ${key} in ${describe(v)} (${['', ...path.slice(0, n)].join('.') || '.'}), in ${text}`);
    }
    v = (v as Row)[key];
  }
  return v;
}

function execute(nodes: Node[], dot: unknown, header: boolean): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') {
      out += n.text;
      continue;
    }
    let value: unknown;
    n.pipeline.forEach((c, i) => {
      const [head, ...rest] = c as [Operand, ...Operand[]];
      const evalOperand = (o: Operand) => (o.kind === 'field' ? fieldOf(dot, o.path, n.text) : o.kind === 'literal' ? o.value : undefined);
      if (head.kind !== 'function') {
        value = evalOperand(head);
        return;
      }
      const args = rest.map(evalOperand);
      if (i > 0) args.push(value);
      value = call(head.name, args, header);
    });
    out += printValue(value, n.text);
  }
  return out;
}

/** The text one row gives under a (non-table) template: no newline added. */
export function renderRow(format: Format, row: unknown): string {
  return execute(format.nodes, row, false);
}

/**
 * Rows under a format, as docker writes them: each row's text and a newline; a table gets its
 * header row first (the row type's headers as the row) and goes through a tabwriter. Every row
 * is rendered before anything is returned, so an error prints nothing.
 */
export function renderRows(format: Format, rows: readonly unknown[], type: RowType): string {
  const body = rows.map((r) => execute(format.nodes, r, false) + '\n').join('');
  if (!format.table) return body;
  const head = execute(format.nodes, type.headers, true) + '\n';
  return tabwrite(head + body);
}

/**
 * Go's text/tabwriter as docker sets it up (minwidth 10, tabwidth 1, padding 3, spaces): a
 * cell is text ended by a tab; a column of consecutive lines is as wide as its widest cell
 * plus 3, at least 10; text after a line's last tab is not aligned.
 */
export function tabwrite(text: string, minwidth = 10, padding = 3): string {
  const lines = text.split('\n').map((l) => l.split('\t'));
  const widths: number[][] = lines.map((cells) => cells.map(() => 0));
  const maxCols = Math.max(0, ...lines.map((c) => c.length - 1));
  for (let col = 0; col < maxCols; col++) {
    let i = 0;
    while (i < lines.length) {
      if ((lines[i] as string[]).length - 1 <= col) {
        i++;
        continue;
      }
      let j = i;
      let w = minwidth;
      while (j < lines.length && (lines[j] as string[]).length - 1 > col) {
        w = Math.max(w, [...((lines[j] as string[])[col] as string)].length + padding);
        j++;
      }
      for (let k = i; k < j; k++) (widths[k] as number[])[col] = w;
      i = j;
    }
  }
  return lines
    .map((cells, li) =>
      cells.map((c, ci) => (ci === cells.length - 1 ? c : c + ' '.repeat(Math.max(0, ((widths[li] as number[])[ci] as number) - [...c].length)))).join(''),
    )
    .join('\n');
}

/**
 * A `--format` value for a listing: `table` (the default table), a Go template, or `table `
 * and a template. `json` is gantry's own JSON document and is handled by the caller.
 */
export function listingFormat(value: string, defaultTable: string, type: RowType): Format {
  return parseFormat(value === 'table' ? defaultTable : value, type);
}

/** Whether a format reads `field` of its rows (or the whole row, `{{.}}`, `{{json .}}`). */
export function usesField(format: Format, field: string): boolean {
  return format.nodes.some(
    (n) => n.kind === 'action' && n.pipeline.some((c) => c.some((o) => o.kind === 'field' && (o.path.length === 0 || o.path[0] === field))),
  );
}
