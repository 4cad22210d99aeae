import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from './conformance.js';
import { haveTool } from './tools.js';

/** The PATH Debian's official image sets; the test base gets the same. */
export const DEBIAN_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The Debian base the tests build FROM: scripts/debian-base.sh runs `debootstrap
 * --variant=minbase` against the Debian mirror once and caches the tarball (see DEVELOPERS.md).
 * Resolves to the tarball's path, or undefined off CI when debootstrap is missing.
 */
export function debianBaseTarball(): string | undefined {
  if (!haveTool('debootstrap')) return undefined;
  const script = path.join(projectRoot, 'scripts', 'debian-base.sh');
  return execFileSync(script, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 15 * 60_000 }).trim();
}
