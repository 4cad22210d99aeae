import type { ErrorCode } from './codes.js';

export { ERROR_CODES, type ErrorCode } from './codes.js';

/**
 * Every error gantry raises derives from GantryError and carries a stable `code`
 * (node-tar style; the list is codes.ts), so callers and the CLI can branch on it without
 * parsing messages.
 */
export class GantryError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Where in a Dockerfile something happened. Lines and columns are 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
  column?: number;
  endLine?: number;
}

export function formatLocation(loc: SourceLocation): string {
  return loc.column !== undefined ? `${loc.file}:${loc.line}:${loc.column}` : `${loc.file}:${loc.line}`;
}

/** A Dockerfile that cannot be parsed or planned; names the file, line and instruction. */
export class DockerfileError extends GantryError {
  readonly location: SourceLocation;
  readonly instruction: string | undefined;
  /** The message without the location prefix. */
  readonly detail: string;
  constructor(
    code: ErrorCode,
    detail: string,
    location: SourceLocation,
    instruction?: string,
    options?: { cause?: unknown },
  ) {
    const where = formatLocation(location);
    const what = instruction ? ` ${instruction}:` : '';
    super(code, `${where}:${what} ${detail}`, options);
    this.location = location;
    this.instruction = instruction;
    this.detail = detail;
  }
}

/** An error in a user-supplied option (build arg syntax, unknown target, ...). */
export class OptionError extends GantryError {}

export class RegistryError extends GantryError {
  readonly status: number | undefined;
  readonly url: string | undefined;
  readonly temporary: boolean;
  constructor(
    code: ErrorCode,
    message: string,
    details: { status?: number; url?: string; temporary?: boolean } = {},
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.status = details.status;
    this.url = details.url;
    this.temporary = details.temporary ?? false;
  }
}

export class SandboxError extends GantryError {}
export class StoreError extends GantryError {}

/** An error of an operating-system call (ENOSPC, EIO, EACCES...), as Node reports them. */
export function isSystemError(err: unknown): err is NodeJS.ErrnoException & Error {
  const e = err as NodeJS.ErrnoException | undefined;
  return typeof e?.code === 'string' && /^E[A-Z0-9]+$/.test(e.code) && typeof e.syscall === 'string';
}

/** An error as it crosses a process boundary (a structured clone keeps neither class nor fields). */
export interface ErrorRecord {
  name: string;
  message: string;
  stack?: string;
  /** Its own fields: `code`, a Dockerfile error's `location`, a registry error's `status`... */
  fields: Record<string, unknown>;
}

export function errorRecord(err: unknown): ErrorRecord {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(err)) if (k !== 'cause' && typeof v !== 'function') fields[k] = v;
  return { name: err.name, message: err.message, ...(err.stack ? { stack: err.stack } : {}), fields };
}

/** The error a record was made from, as an instance of the class of `classes` it named (else Error). */
export function reviveError(record: ErrorRecord, classes: readonly (abstract new (...args: never[]) => Error)[]): Error {
  const cls = classes.find((c) => c.name === record.name) ?? Error;
  const err = Object.create(cls.prototype as object) as Error;
  Object.assign(err, record.fields);
  Object.defineProperty(err, 'message', { value: record.message, writable: true, configurable: true });
  if (record.stack) Object.defineProperty(err, 'stack', { value: record.stack, writable: true, configurable: true });
  return err;
}
