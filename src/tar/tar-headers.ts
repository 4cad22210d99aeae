/**
 * tar-stream's `headers` module object, which its pack and extract call through (src/tar/tar.ts
 * replaces two of its functions). tar-stream's package exports do not name the file, so it is
 * found beside the package's main file. The CLI bundle (scripts/bundle.mjs) swaps this module
 * for a direct import of the same file, so the bundled tar-stream and this object are one.
 */
import { createRequire } from 'node:module';
import path from 'node:path';

export interface HeadersModule {
  encode(opts: Record<string, unknown>): Uint8Array | null;
  encodePax(opts: { name?: string; linkname?: string; pax?: Record<string, string> }): Uint8Array;
  decodePax(buf: Uint8Array): Record<string, string>;
}

const require = createRequire(import.meta.url);
const headers = require(path.join(path.dirname(require.resolve('tar-stream')), 'headers.js')) as HeadersModule;

export default headers;
