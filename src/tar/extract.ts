/**
 * A tar read as a stream: write the archive into an `Extract`, iterate it for its entries.
 * Each entry is a Readable of its body with the `header` it came with (PAX records and GNU
 * long names applied). The next entry is read when the iterator is asked for it; a body left
 * unread then is drained. An archive that ends inside an entry or a header is an error, as is
 * a header with a wrong checksum; blocks of zeros are skipped wherever they are.
 */
import { Readable, Writable } from 'node:stream';
import { BLOCK, decodeHeader, padding, readString, type TarHeader } from './header.js';
import { decodePax } from './pax.js';

/** The largest PAX or GNU long-name body read (4 MiB): a longer one is refused, not buffered. */
const MAX_LONG_HEADER = 4 << 20;

/** An entry of the archive: its body, and its header. */
export class TarEntry extends Readable {
  constructor(
    private readonly extract: Extract,
    readonly header: TarHeader,
    /** Where the body starts in the archive, in bytes (for a reader that reads it again in place). */
    readonly offset: number,
  ) {
    super({ highWaterMark: 64 << 10 });
    // Torn down with the archive: the reader sees that through the iterator, not here.
    this.on('error', () => undefined);
  }

  override _read(): void {
    this.extract.bodyWanted();
  }
}

type Stage = 'header' | 'long' | 'body' | 'skip';

export class Extract extends Writable implements AsyncIterable<TarEntry> {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Bytes of the archive taken so far. */
  private position = 0;
  private stage: Stage = 'header';
  /** Bytes of the current long header, body or padding still to come. */
  private missing = 0;
  /** The header whose long body (PAX records, a GNU name) is being read. */
  private long: TarHeader | null = null;
  private body: TarEntry | null = null;
  private bodyPaused = false;
  /** An entry was handed out: the next header waits until the iterator is asked again. */
  private locked = false;
  private writeDone: ((err?: Error | null) => void) | null = null;
  private finalDone: ((err?: Error | null) => void) | null = null;
  private ended = false;
  private failure: Error | null = null;
  private gnuPath: string | null = null;
  private gnuLinkPath: string | null = null;
  private pax: Record<string, string> | null = null;
  private paxGlobal: Record<string, string> | null = null;
  /** An entry read before the iterator asked for it. */
  private ready: TarEntry | null = null;
  private waiting: { resolve: (r: IteratorResult<TarEntry>) => void; reject: (e: Error) => void } | null = null;
  /** The last entry handed out. */
  private current: TarEntry | null = null;

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.writeDone = done;
    this.update();
  }

  override _final(done: (err?: Error | null) => void): void {
    this.finalDone = done;
    this.update();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (err || !this.ended) this.failure = err ?? new Error('tar archive closed before its end');
    if (this.body && !this.body.readableEnded) this.body.destroy(this.failure ?? undefined);
    this.settle();
    done(err ?? undefined);
  }

  /** An entry's reader wants more of its body. */
  bodyWanted(): void {
    if (!this.bodyPaused) return;
    this.bodyPaused = false;
    this.update();
  }

  /** The first `n` buffered bytes (n <= buffered), as one buffer. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0] as Buffer;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0] as Buffer;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    this.position += n;
    return out;
  }

  /** Up to `n` bytes from the first buffered chunk. */
  private takeSome(n: number): Buffer {
    return this.take(Math.min(n, (this.chunks[0] as Buffer).length));
  }

  private fail(err: Error): void {
    this.destroy(err);
  }

  /** Reads what the buffered bytes allow, and asks for more input when they are used up. */
  private update(): void {
    try {
      this.step();
    } catch (err) {
      // A fault of this reader is the archive's failure, never an exception out of a write.
      this.fail(err as Error);
    }
  }

  private step(): void {
    while (!this.destroyed) {
      if (this.stage === 'body') {
        if (this.bodyPaused) return;
        if (this.buffered === 0) break;
        const body = this.body as TarEntry;
        const data = this.takeSome(this.missing);
        this.missing -= data.length;
        // A body its reader gave up on (destroyed) is skipped.
        const more = body.destroyed || body.push(data);
        if (this.missing === 0) {
          body.push(null);
          this.body = null;
          this.stage = 'skip';
          this.missing = padding(body.header.size);
        } else if (!more) {
          this.bodyPaused = true;
          return;
        }
        continue;
      }
      if (this.stage === 'skip') {
        if (this.missing === 0) {
          this.stage = 'header';
          continue;
        }
        if (this.buffered === 0) break;
        this.missing -= this.takeSome(this.missing).length;
        continue;
      }
      if (this.stage === 'long') {
        if (this.buffered < this.missing) break;
        this.readLong(this.take(this.missing));
        this.stage = 'skip';
        this.missing = padding(this.missing);
        continue;
      }
      if (this.locked) return;
      if (this.buffered < BLOCK) break;
      if (!this.readHeader(this.take(BLOCK))) return;
    }
    if (this.destroyed) return;
    // Everything buffered is read: more input, or the end.
    const done = this.writeDone;
    this.writeDone = null;
    if (this.finalDone) this.endArchive();
    done?.();
  }

  /** The archive's end: well-formed only between entries, with nothing left over. */
  private endArchive(): void {
    const done = this.finalDone as (err?: Error | null) => void;
    this.finalDone = null;
    if (this.stage !== 'header' || this.buffered > 0 || this.long) {
      done(new Error('unexpected end of tar archive (truncated inside an entry or a header)'));
      return;
    }
    this.ended = true;
    this.settle();
    done();
  }

  /** Reads one header block; false when the archive failed. */
  private readHeader(block: Buffer): boolean {
    let header: TarHeader | null;
    try {
      header = decodeHeader(block);
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
    if (!header) return true;
    switch (header.type) {
      case 'gnu-long-path':
      case 'gnu-long-link-path':
      case 'pax-global-header':
      case 'pax-header':
        if (!(header.size >= 0) || header.size > MAX_LONG_HEADER) {
          this.fail(new Error(`tar ${header.type} of ${header.size} bytes: over the ${MAX_LONG_HEADER} gantry reads`));
          return false;
        }
        this.long = header;
        this.stage = 'long';
        this.missing = header.size;
        return true;
    }
    this.applyLong(header);
    if (!(header.size >= 0 && Number.isSafeInteger(header.size))) {
      this.fail(new Error(`tar entry ${JSON.stringify(header.name)}: invalid size`));
      return false;
    }
    const entry = new TarEntry(this, header, this.position);
    if (header.size === 0 || header.type === 'directory') {
      entry.push(null);
    } else {
      this.body = entry;
      this.stage = 'body';
      this.missing = header.size;
    }
    this.locked = true;
    this.hand(entry);
    return true;
  }

  private readLong(data: Buffer): void {
    const header = this.long as TarHeader;
    this.long = null;
    if (header.type === 'gnu-long-path') this.gnuPath = readString(data, 0, data.length);
    else if (header.type === 'gnu-long-link-path') this.gnuLinkPath = readString(data, 0, data.length);
    else if (header.type === 'pax-global-header') this.paxGlobal = decodePax(data);
    else this.pax = { ...(this.paxGlobal ?? {}), ...decodePax(data) };
  }

  /** The long names and PAX records read before `header`, applied to it. */
  private applyLong(header: TarHeader): void {
    // An empty long name names nothing (as tar-stream and GNU tar read it).
    if (this.gnuPath) header.name = this.gnuPath;
    if (this.gnuLinkPath) header.linkname = this.gnuLinkPath;
    this.gnuPath = this.gnuLinkPath = null;
    const pax = this.pax;
    this.pax = null;
    if (!pax) return;
    if (pax.path) header.name = pax.path;
    if (pax.linkpath) header.linkname = pax.linkpath;
    if (pax.size) header.size = /^\d+$/.test(pax.size) ? Number(pax.size) : Number.NaN;
    header.pax = pax;
  }

  private hand(entry: TarEntry): void {
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = null;
      this.current = entry;
      resolve({ value: entry, done: false });
    } else {
      this.ready = entry;
    }
  }

  /** Answers a waiting iterator with the end or the failure. */
  private settle(): void {
    if (!this.waiting) return;
    const { resolve, reject } = this.waiting;
    if (this.failure) {
      this.waiting = null;
      reject(this.failure);
    } else if (this.ended) {
      this.waiting = null;
      resolve({ value: undefined, done: true });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<TarEntry> {
    return {
      next: () =>
        new Promise<IteratorResult<TarEntry>>((resolve, reject) => {
          // A body not read is drained: the archive goes on past it.
          if (this.current && !this.current.readableEnded && !this.current.destroyed) this.current.resume();
          if (this.body?.destroyed) this.bodyPaused = false;
          this.current = null;
          if (this.ready) {
            this.current = this.ready;
            this.ready = null;
            resolve({ value: this.current, done: false });
            return;
          }
          this.waiting = { resolve, reject };
          this.settle();
          if (!this.waiting) return;
          this.locked = false;
          this.update();
        }),
      return: async () => {
        if (!this.ended) this.destroy();
        return { value: undefined, done: true };
      },
    };
  }
}

export const extract = (): Extract => new Extract();
