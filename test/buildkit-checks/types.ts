/**
 * BuildKit's Dockerfile integration tests (moby/buildkit frontend/dockerfile/*_test.go), ported
 * as data: each check is the Dockerfile and context of one of BuildKit's tests and what that test
 * asserts, rewritten for gantry's harness (test/e2e/buildkit-checks.test.ts). Tests that cannot
 * run here are listed with the reason, so the suite can say how many were ported.
 */

/** A context entry: a file's text, or a file with a mode, a symlink, a directory. */
export type ContextEntry = string | { content?: string; mode?: number; symlink?: string; dir?: true };

/** What a build's image must hold or be. Paths are relative to the image's root, no leading slash. */
export interface Expectations {
  /** File contents: exact text, or a pattern the text must match. */
  files?: Record<string, string | RegExp>;
  /** Paths that must not exist. */
  absent?: string[];
  /** Paths that must exist (any type). */
  present?: string[];
  /** Permission bits (mode & 0o7777). */
  modes?: Record<string, number>;
  /** Owners as "uid:gid". */
  owners?: Record<string, string>;
  /** Symlink targets. */
  symlinks?: Record<string, string>;
  /** Entry types: "file", "directory", "symlink", … */
  types?: Record<string, string>;
  /** Fields of the image's config (`Config` in `gantry inspect`), compared with toEqual each. */
  config?: Record<string, unknown>;
  /** Patterns that must appear in the build's output (warnings, RUN output). */
  output?: RegExp[];
  /** Patterns that must not appear in the build's output. */
  notOutput?: RegExp[];
}

export interface BuildSpec {
  dockerfile: string;
  /** The context besides the Dockerfile. */
  context?: Record<string, ContextEntry>;
  buildArgs?: Record<string, string>;
  target?: string;
  /** More command-line arguments for `gantry build`; `{ctx}` and `{work}` are replaced by those paths. */
  args?: string[];
  /** Files written under the work directory before the build (secrets, ssh keys…): name → text. */
  workFiles?: Record<string, string>;
}

/** An entry of a built image's flattened root filesystem. */
export interface ImageEntry {
  /** tar's type: "file", "directory", "symlink", "link", "character-device", … */
  type: string;
  mode: number;
  /** "uid:gid" */
  owner: string;
  linkname: string;
  /** A file's text (a hard link's: its target's). */
  content: string;
}

export interface BuildResult {
  exitCode: number;
  /** stdout and stderr together. */
  output: string;
  /** The image's name in the check's store. */
  tag: string;
  ctx: string;
  /** The check's work directory (workFiles are there). */
  dir: string;
}

/** What a check with its own steps (`custom`) can do. */
export interface Harness {
  /** Build in the check's store; the context is written anew unless `keepContext`. Does not assert the exit code. */
  build(spec: BuildSpec, options?: { keepContext?: boolean; tag?: string }): Promise<BuildResult>;
  /** The image's flattened root filesystem, path (no leading slash) → entry. */
  files(tag: string): Promise<Map<string, ImageEntry>>;
  /** `gantry inspect`'s object for the image. */
  inspect(tag: string): Promise<Record<string, unknown> & { Config: Record<string, unknown> }>;
  /** Any gantry command on the check's store. */
  /** The gantry command in the suite's store; `input` is its standard input. */
  gantry(args: string[], input?: Buffer): Promise<{ exitCode: number; stdout: string; output: string }>;
  /** Assert the expectations of a finished build (exit code 0 included). */
  expectImage(result: BuildResult, exp: Expectations): Promise<void>;
}

export interface Check extends BuildSpec, Expectations {
  /** BuildKit's test function, as named there. */
  name: string;
  /** Which of BuildKit's test files it comes from. */
  file: string;
  /** The build must fail, with output matching this. */
  error?: RegExp;
  /** Needs the Debian base (imported as debian:bookworm) besides busybox. */
  debian?: true;
  /**
   * Further builds in the same store after the first (cache behaviour): each may change the
   * context and states what its build must show.
   */
  then?: (Partial<BuildSpec> & Expectations & { error?: RegExp })[];
  /**
   * Where gantry still differs from what the BuildKit test demands: the check runs and must
   * fail (vitest's test.fails), so the difference is counted and cannot go unnoticed once fixed.
   */
  gap?: string;
  /** Steps of its own instead of one build (then `dockerfile` may be ''). */
  custom?: (h: Harness) => Promise<void>;
}

/** A BuildKit test that is not ported, and why. */
export interface NotPorted {
  name: string;
  file: string;
  reason: string;
}

export interface CheckFile {
  file: string;
  checks: Check[];
  notPorted: NotPorted[];
}
