/**
 * A tar written as a stream: `entry(header, body?)` adds an entry, whose body is given whole or
 * written into the Writable it returns; entries are laid out in the order they were added,
 * one after the other; `finalize()` ends the archive with its two blocks of zeros. A body of
 * another size than its header says fails the entry and the archive.
 */
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encodeHeader, padding, type EntryHeader } from './header.js';

const END_OF_TAR = Buffer.alloc(1024);

type Done = (err?: Error | null) => void;

/** An entry's body, written into the archive once the entries before it are. */
export class PackEntry extends Writable {
  private written = 0;
  private finished = false;
  private opened: Done | null = null;
  /** No body: every type but a file's. */
  private readonly empty: boolean;

  constructor(
    private readonly pack: Pack,
    readonly header: EntryHeader & { size: number },
    private callback: Done | null,
  ) {
    super();
    this.empty = header.type !== 'file' && header.type !== 'contiguous-file';
    // A failed entry fails its callback and the archive, whose reader hears of it.
    this.on('error', () => undefined);
  }

  override _construct(done: Done): void {
    if (this.pack.destroyed) return done(new Error('tar archive destroyed'));
    this.opened = done;
    if (this.pack.isCurrent(this)) this.open();
  }

  /** Its turn: the header goes out (and an entry without a body is done). */
  open(): void {
    const done = this.opened;
    this.opened = null;
    if (!done) return;
    if (this.pack.destroyed) return done(new Error('tar archive destroyed'));
    this.pack.push(encodeHeader(this.header));
    if (this.empty) this.finish();
    done();
  }

  override _write(data: Buffer, _encoding: BufferEncoding, done: Done): void {
    if (this.empty) return done(data.length > 0 ? new Error(`tar entry ${this.header.name}: a ${this.header.type} has no body`) : null);
    this.written += data.length;
    if (this.written > this.header.size) return done(new Error(`tar entry ${this.header.name}: more than its ${this.header.size} bytes`));
    this.pack.send(data, done);
  }

  override _final(done: Done): void {
    if (!this.empty && this.written !== this.header.size) {
      return done(new Error(`tar entry ${this.header.name}: ${this.written} bytes written of ${this.header.size}`));
    }
    this.finish();
    done();
  }

  override _destroy(err: Error | null, done: Done): void {
    if (!this.finished) {
      const failure = err ?? new Error(`tar entry ${this.header.name} destroyed`);
      this.callDone(failure);
      // A torn entry is a torn archive.
      this.pack.destroy(failure);
    }
    this.pack.entryDone(this);
    done(err);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const pad = padding(this.header.size);
    if (pad > 0) this.pack.push(END_OF_TAR.subarray(0, pad));
    this.pack.entryDone(this);
    this.callDone(null);
  }

  private callDone(err: Error | null): void {
    const cb = this.callback;
    this.callback = null;
    cb?.(err);
  }
}

export class Pack extends Readable {
  private queue: PackEntry[] = [];
  private finalizing = false;
  private finalized = false;
  private drain: Done | null = null;

  /**
   * Adds an entry: `body` is all of it, or it is written into the returned Writable (and ended).
   * `callback` is told when the entry is in the archive, or why it could not be.
   */
  entry(header: EntryHeader, body?: Buffer | string | Done, callback?: Done): PackEntry {
    if (this.finalized || this.destroyed) throw new Error('tar archive already finalized or destroyed');
    if (typeof body === 'function') {
      callback = body;
      body = undefined;
    }
    const data = typeof body === 'string' ? Buffer.from(body) : body;
    // Defaults, as the header says them from now on (a caller may read them back).
    header.type ??= 'file';
    header.size = data ? data.length : !header.size || header.type === 'symlink' ? 0 : header.size;
    if (!header.mode) header.mode = header.type === 'directory' ? 0o755 : 0o644;
    header.uid ||= 0;
    header.gid ||= 0;
    header.mtime ??= new Date();
    const entry = new PackEntry(this, header as EntryHeader & { size: number }, callback ?? null);
    this.queue.push(entry);
    if (data) entry.end(data);
    return entry;
  }

  /** Ends the archive once the entries added are written. */
  finalize(): void {
    if (this.queue.length > 0) {
      this.finalizing = true;
      return;
    }
    if (this.finalized) return;
    this.finalized = true;
    this.push(END_OF_TAR);
    this.push(null);
  }

  isCurrent(entry: PackEntry): boolean {
    return this.queue[0] === entry;
  }

  /** A body's bytes; `done` when the reader wants more. */
  send(data: Buffer, done: Done): void {
    if (this.push(data)) done();
    else this.drain = done;
  }

  entryDone(entry: PackEntry): void {
    if (this.queue[0] !== entry) {
      const at = this.queue.indexOf(entry);
      if (at > 0) this.queue.splice(at, 1);
      return;
    }
    this.queue.shift();
    const next = this.queue[0];
    if (next) next.open();
    else if (this.finalizing) this.finalize();
  }

  override _read(): void {
    const drain = this.drain;
    this.drain = null;
    drain?.();
  }

  override _destroy(err: Error | null, done: Done): void {
    const failure = err ?? new Error('tar archive destroyed');
    for (const entry of [...this.queue]) {
      entry.destroy(failure);
      entry.open();
    }
    this.queue = [];
    this._read();
    done(err);
  }
}

export const pack = (): Pack => new Pack();

/** Adds an entry whose body streams from `body`; settles when the entry is in the archive, or is not. */
export function entryFrom(pack: Pack, header: EntryHeader, body: Readable): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    pipeline(body, sink).catch(reject);
  });
}
