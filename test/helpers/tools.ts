import { execFileSync } from 'node:child_process';

/**
 * A system tool a test needs. Under CI (CI=true) a missing tool fails the test; on a
 * developer machine the test is skipped with the reason. .ci/run installs them all.
 */
export function haveTool(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`${name} is required by this test but is not installed (.ci/run installs it)`);
    return false;
  }
}

/** Where a system tool is (haveTool's rules when it is missing: an error under CI). */
export function toolPath(name: string): string | undefined {
  if (!haveTool(name)) return undefined;
  return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
}
