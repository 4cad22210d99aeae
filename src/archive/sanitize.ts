/**
 * Archive member names from strangers: strip leading `/` and `./` (as tar does) and
 * refuse any name that climbs out with `..`. The result never starts with `/`.
 */
import { GantryError } from '../errors/index.js';

export class UnsafePathError extends GantryError {
  constructor(
    readonly member: string,
    what: string,
  ) {
    super('ARCHIVE_UNSAFE_PATH', `${what}: archive member "${member}" escapes the root`);
  }
}

/** The normalised relative name, or '' for the root itself. */
export function sanitizeMemberName(name: string, what: string): string {
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafePathError(name, what);
    parts.push(part);
  }
  return parts.join('/');
}
