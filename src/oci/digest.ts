/**
 * Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`), parsed strictly because they
 * become file names: no uppercase, no other lengths, no other algorithms.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { GantryError } from '../errors/index.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

export class DigestError extends GantryError {
  constructor(message: string) {
    super('DIGEST_INVALID', message);
  }
}

export function parseDigest(digest: string): ParsedDigest {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const hex = digest.slice(colon + 1);
  if (colon < 0 || !(algorithm in HEX_LENGTH)) {
    throw new DigestError(`invalid digest "${digest}": unsupported algorithm (sha256 and sha512 are)`);
  }
  const len = HEX_LENGTH[algorithm as DigestAlgorithm];
  if (hex.length !== len || !/^[0-9a-f]+$/.test(hex)) {
    throw new DigestError(`invalid digest "${digest}": expected ${len} lowercase hexadecimal characters`);
  }
  return { algorithm: algorithm as DigestAlgorithm, hex };
}

export function isDigest(digest: string): boolean {
  try {
    parseDigest(digest);
    return true;
  } catch {
    return false;
  }
}

export function digestOf(data: Buffer | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

export class DigestMismatchError extends GantryError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    what = 'content',
  ) {
    super('DIGEST_MISMATCH', `${what} does not match its digest: expected ${expected}, got ${actual}`);
  }
}

export class SizeMismatchError extends GantryError {
  constructor(
    readonly digest: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super('SIZE_MISMATCH', `blob ${digest}: expected ${expected} bytes, got ${actual}${actual > expected ? ' or more' : ''}`);
  }
}

/**
 * A pass-through stream that hashes what flows and, at the end, fails if the bytes do not
 * match the expected digest and size (go-containerregistry's verify.ReadCloser). It also
 * stops as soon as more bytes arrive than the size allows.
 */
export class VerifyStream extends Transform {
  private readonly hash: Hash;
  private readonly expected?: ParsedDigest;
  private bytes = 0;
  /** The digest of what went through, once the stream has ended. */
  digest = '';

  constructor(
    private readonly options: { digest?: string; size?: number; algorithm?: DigestAlgorithm } = {},
  ) {
    super();
    if (options.digest !== undefined) this.expected = parseDigest(options.digest);
    this.hash = createHash(this.expected?.algorithm ?? options.algorithm ?? 'sha256');
  }

  get size(): number {
    return this.bytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    const { size, digest } = this.options;
    if (size !== undefined && this.bytes > size) {
      done(new SizeMismatchError(digest ?? '(unknown digest)', size, this.bytes));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }

  override _flush(done: TransformCallback): void {
    const { size, digest } = this.options;
    this.digest = `${this.expected?.algorithm ?? this.options.algorithm ?? 'sha256'}:${this.hash.digest('hex')}`;
    if (size !== undefined && this.bytes !== size) {
      done(new SizeMismatchError(digest ?? this.digest, size, this.bytes));
      return;
    }
    if (digest !== undefined && this.digest !== digest) {
      done(new DigestMismatchError(digest, this.digest, `blob ${digest}`));
      return;
    }
    done();
  }
}
