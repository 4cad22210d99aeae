/**
 * A persistent stat cache for build contexts: a file's content sum is reused while its size,
 * modification and change times and inode stay the same, so an unchanged context is not read
 * again on the next build (a 70 MB context costs its stats, not its bytes).
 *
 * One file per context directory, `<store>/cache/stat-<sha256 of the path>.json`, replaced
 * atomically; it goes with the rest of the build cache (`prune --all`). A file changed within
 * the clock tick of the scan that hashed it could keep its times: such "racy" entries (modified
 * less than RACY_MS before the scan began) are hashed again every time, as git does.
 *
 * A row also keeps, once a COPY has read them, the file's layer xattrs (its capabilities, as
 * rootfs/xattr.ts's LAYER_XATTRS picks them): setting or removing one changes the file's ctime,
 * so they are as valid as the sum, and a COPY of an unchanged context starts no getfattr.
 */
import { createHash } from 'node:crypto';
import { readFileSync, type Stats } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

const RACY_MS = 1000;
const VERSION = 1;

/** The layer xattrs a file had (name → hex value; empty: none), once read. */
type Xattrs = Record<string, string>;
type Row = [size: number, mtimeMs: number, ctimeMs: number, ino: number, sum: string, xattrs?: Xattrs];

export class StatCache {
  private readonly rows: Map<string, Row>;
  private changed = false;
  /** Files whose sum came from the cache, and files hashed, since opening. */
  hits = 0;
  misses = 0;
  private readonly started = Date.now();

  private constructor(
    private readonly file: string | undefined,
    private readonly tmp: string | undefined,
    private readonly root: string,
    rows: Map<string, Row>,
  ) {
    this.rows = rows;
  }

  /**
   * The cache for the context at `root`, kept at `fileOf(<sha256 of root's path>)` (the store's
   * layout names it: cache/stat-<hex>.json); `tmp` is where a new copy is written first.
   */
  static async open(fileOf: (key: string) => string, root: string, tmp: string): Promise<StatCache> {
    const file = fileOf(createHash('sha256').update(path.resolve(root)).digest('hex'));
    let rows = new Map<string, Row>();
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { version?: number; rows?: Record<string, Row> };
      if (doc.version === VERSION && doc.rows) rows = new Map(Object.entries(doc.rows));
    } catch {
      // none yet, or unreadable: start empty
    }
    return new StatCache(file, tmp, path.resolve(root), rows);
  }

  /** A cache that remembers nothing (sources outside the context). */
  static none(): StatCache {
    return new StatCache(undefined, undefined, '/', new Map());
  }

  private key(host: string): string | undefined {
    if (this.file === undefined) return undefined;
    const rel = path.relative(this.root, host);
    return rel.startsWith('..') || path.isAbsolute(rel) ? undefined : rel;
  }

  /** The row of `host` when there is one and `st` says the file has not changed since. */
  private valid(host: string, st: Stats): Row | undefined {
    const k = this.key(host);
    const row = k === undefined ? undefined : this.rows.get(k);
    return row && row[0] === st.size && row[1] === st.mtimeMs && row[2] === st.ctimeMs && row[3] === st.ino ? row : undefined;
  }

  /** The content sum of `host` with stats `st`, when known and still valid. */
  lookup(host: string, st: Stats): string | undefined {
    const row = this.valid(host, st);
    if (!row) {
      if (this.key(host) !== undefined) this.misses++; // a file outside the context is not the cache's
      return undefined;
    }
    this.hits++;
    return row[4];
  }

  /** The layer xattrs of `host` (none: an empty map), when a COPY read them and the file is unchanged since. */
  xattrs(host: string, st: Stats): Map<string, Buffer> | undefined {
    const x = this.valid(host, st)?.[5];
    return x === undefined ? undefined : new Map(Object.entries(x).map(([name, hex]) => [name, Buffer.from(hex, 'hex')]));
  }

  /** Keep the layer xattrs read from `host` beside its sum (a file without a valid row keeps nothing). */
  recordXattrs(host: string, st: Stats, found: ReadonlyMap<string, Buffer>): void {
    const row = this.valid(host, st);
    if (!row) return;
    row[5] = Object.fromEntries([...found].map(([name, value]) => [name, value.toString('hex')]));
    this.changed = true;
  }

  record(host: string, st: Stats, sum: string): void {
    const k = this.key(host);
    if (k === undefined) return;
    if (Math.max(st.mtimeMs, st.ctimeMs) >= this.started - RACY_MS) return; // racy: hash again next time
    this.rows.set(k, [st.size, st.mtimeMs, st.ctimeMs, st.ino, sum]);
    this.changed = true;
  }

  /** Write what this build hashed, beside what earlier builds did, when anything was new. */
  async save(): Promise<void> {
    if (this.file === undefined || this.tmp === undefined || !this.changed) return;
    // What earlier builds hashed and this one did not look at stays (another COPY may need it).
    const rows = Object.fromEntries(this.rows);
    try {
      await mkdir(path.dirname(this.file), { recursive: true });
      await writeFile(this.tmp, JSON.stringify({ version: VERSION, rows }), { flag: 'wx' });
      await rename(this.tmp, this.file);
    } catch {
      // A cache that cannot be written only costs the next build a re-read.
      await rm(this.tmp, { force: true });
    }
  }
}
