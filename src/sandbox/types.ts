/** What a RUN in the sandbox is given, and what it gives back. */

export type Isolation = 'auto' | 'oci' | 'chroot';

export type SandboxMount =
  | { type: 'bind'; source: string; target: string; readOnly: boolean }
  | { type: 'tmpfs'; target: string; size?: number };

export interface RunSpec {
  rootfs: string;
  /** Extra mounts (RUN --mount), targets absolute inside the rootfs; directories made for them stay, as in BuildKit. */
  mounts?: SandboxMount[];
  argv: string[];
  /**
   * Files the command reads from /dev/pipes/<name>, read-only (BuildKit's place for a RUN's
   * here-document that starts with `#!`, run as a program).
   */
  pipes?: { name: string; content: string; mode: number }[];
  env: string[];
  /** Working directory inside the rootfs (created when missing). */
  cwd: string;
  /** Numeric user and group to run as. */
  uid: number;
  gid: number;
  /** Supplementary groups (the primary group first, as BuildKit passes them). */
  groups?: number[];
  /** `host` only when the build allows it (`--allow network.host`): the caller checks. */
  network?: 'default' | 'none' | 'host';
  isolation?: Isolation;
  /** A seccomp profile file in Docker's format, or 'unconfined' for none; default: Debian's (seccomp.ts). */
  seccomp?: string;
  /** Where a compiled seccomp program is kept for later builds, by its key (the store's cache). */
  keepProgram?: (key: string) => ProgramPlace;
  /** The RUN's host name (and its /etc/hosts line); default buildkitsandbox, as BuildKit's. */
  hostname?: string;
  /** Extra /etc/hosts entries (`--add-host`). */
  extraHosts?: { name: string; ip: string }[];
  /** The size of /dev/shm in bytes (`--shm-size`); default 64 MiB, as Docker's. */
  shmSize?: number;
  /** Resource limits of the RUN's processes (`--ulimit`). */
  ulimits?: Ulimit[];
  /** The run's private work directory (bundle, runtime state, /etc files), made here and removed after; default: one in the system's temp directory. */
  workDir?: string;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** The caller's own streams given to the command (`gantry run`), instead of onStdout/onStderr. */
  attach?: Attach;
  signal?: AbortSignal;
}

/**
 * How `gantry run` gives the command its caller's streams: standard output and error always,
 * standard input with `stdin` (else /dev/null), relayed through pipes; with `tty`, on a
 * pseudo-terminal of its own that the OCI runtime (or, under chroot, util-linux's script(1))
 * makes and relays to the caller's (never the caller's terminal itself, whose input a command
 * could otherwise fake with TIOCSTI). launch.ts's `attachWith` says which.
 */
export interface Attach {
  stdin: boolean;
  tty: boolean;
}

export interface RunResult {
  exitCode: number;
  /** The sandbox that ran the command. */
  isolation: 'oci' | 'chroot';
}

/** A resource limit, as `--ulimit NAME=SOFT[:HARD]` gives it; -1 is unlimited. */
export interface Ulimit {
  /** docker's name: nofile, nproc, core, stack, memlock... (RLIMIT_ without the prefix, lower case). */
  name: string;
  soft: number;
  hard: number;
}

/** The limits `--ulimit` takes (setrlimit(2)'s, as docker names them). */
export const ULIMIT_NAMES = ['as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack'] as const;

/** Where a compiled seccomp program is kept (`file`), and the temp file it is written to first. */
export interface ProgramPlace {
  file: string;
  temp: string;
}
