import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Write `files` (relative path → content) and `links` (relative path → target) under `dir`; returns `dir`. */
export function writeTree(dir: string, files: Record<string, string>, links: Record<string, string> = {}): string {
  mkdirSync(dir, { recursive: true });
  for (const [f, body] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    writeFileSync(path.join(dir, f), body);
  }
  for (const [f, target] of Object.entries(links)) {
    mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    symlinkSync(target, path.join(dir, f));
  }
  return dir;
}
