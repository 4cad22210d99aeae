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

/**
 * The normalised relative name, or '' for the root itself. With `strict`, an absolute
 * name is refused too (image archives never hold one; rootfs tarballs often do).
 */
export function sanitizeMemberName(name: string, what: string, strict = false): string {
  if (strict && name.startsWith('/')) throw new UnsafePathError(name, what);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new UnsafePathError(name, what);
    parts.push(part);
  }
  return parts.join('/');
}
