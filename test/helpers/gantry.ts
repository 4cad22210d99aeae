import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type Options } from 'execa';
import { projectRoot } from './conformance.js';

/**
 * The gantry command as the build suites run it: as root (the default), or, when
 * GANTRY_TEST_USER names a user (vitest.config.ts's `rootless` project), as that non-root user,
 * so that the same tests check a rootless build (issue 19: "the build tests run as a non-root
 * user too"). The user and its subordinate range are made here when missing (the tests run as
 * root, as CI does); the user runs a copy of the bundled command it can read, and each suite's
 * work directory is the user's, so its stores and outputs are written as the user.
 */

/** The user the build suites run gantry as; undefined for root. */
export const testUser: string | undefined = process.env.GANTRY_TEST_USER || undefined;

/** The subordinate range of the users the tests make (never one a real user has). */
export const TEST_SUBID_RANGE = '400000-465535';

/** Make `name` (a system user with a home) and give it `range` in /etc/subuid and /etc/subgid, or take away any range it has. */
export function ensureUser(name: string, range?: string): void {
  try {
    execFileSync('id', ['-u', name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', name]);
  }
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    const others = lines.filter((l) => !l.startsWith(`${name}:`));
    // useradd gives a new user a range of its own (login.defs); the user without one loses it.
    if (!range && others.length !== lines.length) writeFileSync(file, others.map((l) => `${l}\n`).join(''));
  }
  if (range && !readFileSync('/etc/subuid', 'utf8').split('\n').some((l) => l.startsWith(`${name}:`))) {
    execFileSync('usermod', ['--add-subuids', range, '--add-subgids', range, name]);
  }
}

/**
 * A work directory for a suite under /tmp: the test user's when there is one (so gantry can make
 * its store and outputs there), readable by it either way.
 */
export function suiteWorkDir(prefix: string): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  if (testUser) {
    ensureUser(testUser, TEST_SUBID_RANGE);
    execFileSync('chown', [`${testUser}:`, dir]);
  }
  chmodSync(dir, 0o755);
  return dir;
}

let copied: string | undefined;

/**
 * A copy of the built project that any user can read (the checkout may not be), made once per
 * test process: bin/, dist/ and the production dependencies, as an install has them.
 */
export function readableCopy(): string {
  if (copied) return copied;
  const dir = mkdtempSync('/tmp/gantry-bin-');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  if (!existsSync(path.join(projectRoot, 'dist', 'cli.cjs'))) throw new Error('dist/cli.cjs is missing: npm run build');
  for (const p of ['bin', 'dist', 'package.json']) cpSync(path.join(projectRoot, p), path.join(dir, p), { recursive: true });
  const deps = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: projectRoot, encoding: 'utf8' }).trim().split('\n').slice(1);
  for (const d of deps) cpSync(d, path.join(dir, path.relative(projectRoot, d)), { recursive: true });
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  chmodSync(dir, 0o755);
  return (copied = dir);
}

/** The command to start: the project's bin/gantry, or (for the test user) the readable copy's. */
export function gantryBin(): string {
  return testUser ? path.join(readableCopy(), 'bin', 'gantry') : path.join(projectRoot, 'bin', 'gantry');
}

/**
 * The argv that runs `gantry args` as the suite's user: `runuser` (which keeps the environment)
 * for the test user, with HOME its own so credentials and caches stay out of root's; else
 * gantry itself.
 */
export function gantryArgv(args: string[]): string[] {
  if (!testUser) return [gantryBin(), ...args];
  return ['runuser', '-u', testUser, '--', 'env', `HOME=/home/${testUser}`, gantryBin(), ...args];
}

export interface GantryResult {
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/** Run gantry (as the suite's user); never rejects on a non-zero exit. */
export async function gantry(args: string[], options: Pick<Options, 'env' | 'timeout' | 'input'> & { reject?: boolean } = {}): Promise<GantryResult> {
  const [cmd, ...argv] = gantryArgv(args) as [string, ...string[]];
  const r = await execa(cmd, argv, { reject: false, ...options, encoding: 'utf8' });
  return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}

/** An example's directory, readable by the suite's user (a copy beside the command's for the test user). */
export function example(name: string): string {
  if (!testUser) return path.join(projectRoot, 'examples', name);
  const dir = path.join(readableCopy(), 'examples', name);
  if (!existsSync(dir)) {
    cpSync(path.join(projectRoot, 'examples', name), dir, { recursive: true });
    execFileSync('chmod', ['-R', 'a+rX', dir]);
  }
  return dir;
}
