import os from 'node:os';
import path from 'node:path';

/**
 * Where the store lives: `--root`, else `$GANTRY_ROOT`, else `$XDG_DATA_HOME/gantry`,
 * else `~/.local/share/gantry` (the XDG default for XDG_DATA_HOME).
 */
export function resolveRoot(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return path.resolve(explicit);
  if (env.GANTRY_ROOT) return path.resolve(env.GANTRY_ROOT);
  const data = env.XDG_DATA_HOME || path.join(env.HOME || os.homedir(), '.local', 'share');
  return path.resolve(data, 'gantry');
}
