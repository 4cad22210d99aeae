import type { Readable } from 'node:stream';
import type { Descriptor } from '../oci/types.js';

/**
 * What pull needs of a local store. The store module implements it; the registry
 * module does not depend on the store (the architecture's arrows).
 */
export interface BlobStore {
  hasBlob(digest: string): Promise<boolean>;
  lease(digest: string): Promise<void>;
  writeBlob(data: Buffer | Readable | AsyncIterable<Buffer>, expected?: { digest?: string; size?: number }): Promise<{ digest: string; size: number }>;
  openBlob(digest: string, size?: number): Readable;
  tag(name: string, descriptor: Descriptor): Promise<void>;
  addUntagged(descriptor: Descriptor): Promise<void>;
}
