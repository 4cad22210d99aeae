import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory of gantry's package.json above this file (also when compiled into dist-bench/). */
export const projectRoot = ((): string => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

/**
 * The peer conformance data lives beside the project in ../shared/conformance (never copied
 * in). GANTRY_CONFORMANCE_DIR may point elsewhere. A missing directory fails the suite.
 */
export function conformanceDir(): string {
  const dir = process.env.GANTRY_CONFORMANCE_DIR ?? path.join(projectRoot, '..', 'shared', 'conformance');
  if (!existsSync(dir)) {
    throw new Error(`conformance data not found at ${dir}; check out ../shared beside the project`);
  }
  return dir;
}

export function readConformance(...parts: string[]): string {
  return readFileSync(path.join(conformanceDir(), ...parts), 'utf8');
}
