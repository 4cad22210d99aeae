/**
 * The command line a RUN step runs, here-documents included, as BuildKit makes it (and writes
 * it in the history):
 * - `RUN <<EOF` alone: the document is the script, given to the shell (`<<-` strips its leading
 *   tabs); one that starts with `#!` is a program instead, put at /dev/pipes/<name> (0755) and
 *   run by the shell from there.
 * - a command with documents as its files (`RUN cat <<EOF > f`, `RUN python3 <<EOF`,
 *   `RUN <<A <<B cmd`): the command line and each document with its terminator, one script for
 *   the shell, which reads them as here-documents.
 */
import type { Step } from '../plan/planner.js';
import { BuildError } from './errors.js';

export interface RunCommand {
  argv: string[];
  /** Files for /dev/pipes (a `#!` document). */
  pipes: { name: string; content: string; mode: number }[];
}

/** A here-document that is the whole command: `<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`. */
const ALONE = /^\d*<<-?\s*(["']?)([^\s"'<>|&;]+)\1$/;

/**
 * The longest one argument of a process may be on Linux: MAX_ARG_STRLEN, 32 pages of 4 KiB,
 * its terminating NUL included. BuildKit gives a RUN's command line to the shell as one
 * argument too (`/bin/sh -c '...'`, here-documents included), so there a longer one fails at
 * exec ("argument list too long"); gantry says so before it starts anything.
 */
export const MAX_ARGUMENT_BYTES = 32 * 4096 - 1;

export function runCommand(step: Extract<Step, { op: 'run' }>): RunCommand {
  const command = commandOf(step);
  for (const arg of command.argv) {
    const bytes = Buffer.byteLength(arg);
    if (bytes > MAX_ARGUMENT_BYTES) {
      throw new BuildError(
        'BUILD_RUN_TOO_LONG',
        `the command is ${bytes} bytes, more than the ${MAX_ARGUMENT_BYTES} Linux takes in one argument (MAX_ARG_STRLEN); BuildKit fails it too (argument list too long). Put the script in a file (COPY it, or a here-document starting with #!) and run that`,
      );
    }
  }
  return command;
}

function commandOf(step: Extract<Step, { op: 'run' }>): RunCommand {
  const shell = step.state.shell;
  if (step.heredocs.length === 0) {
    return { argv: step.command.form === 'shell' ? [...shell, step.command.args.join(' ')] : [...step.command.args], pipes: [] };
  }
  const text = step.command.args.join(' ');
  if (step.command.form !== 'shell') throw new BuildError('BUILD_RUN', `${step.location.file}:${step.location.line}: here-documents need the shell form of RUN`);
  const only = step.heredocs.length === 1 ? ALONE.exec(text.trim()) : null;
  const first = step.heredocs[0];
  if (only && first && only[2] === first.name) {
    const data = first.chomp ? first.content.replace(/^\t+/gm, '') : first.content;
    if (data.startsWith('#!')) return { argv: [...shell, `/dev/pipes/${first.name}`], pipes: [{ name: first.name, content: data, mode: 0o755 }] };
    return { argv: [...shell, data], pipes: [] };
  }
  return { argv: [...shell, text + step.heredocs.map((h) => `\n${h.content}${h.name}`).join('')], pipes: [] };
}
