import { DockerfileError, GantryError } from '../errors/index.js';
import type { Step } from '../plan/planner.js';

/** A build that cannot go on: a RUN that failed, a step gantry cannot do, a missing stage or image. */
export class BuildError extends GantryError {}

/** Where a step is, for its errors: `Dockerfile:LINE: INSTRUCTION`. */
export function stepWhere(step: Step): string {
  const l = step.location;
  return `${l.file}:${l.line}: ${step.original.replace(/\s+/g, ' ').trim().split(' ')[0]}`;
}

/**
 * The errors atStep has said at a step's line: one error may reach several steps (a memoised
 * failure awaited by stages running side by side), and is said at the first one's only.
 */
const located = new WeakSet<Error>();

/** An error a step's work raised, said at the step's line (a system call's error becomes a BuildError). */
export function atStep(step: Step, err: unknown): unknown {
  const where = `${step.location.file}:${step.location.line}:`;
  if (err instanceof GantryError && !(err instanceof DockerfileError) && !located.has(err) && !err.message.startsWith(where)) {
    err.message = `${stepWhere(step)}: ${err.message}`;
    located.add(err);
  }
  if (!(err instanceof GantryError) && err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall) {
    return new BuildError('BUILD_STEP_IO', `${stepWhere(step)}: ${err.message}`, { cause: err });
  }
  return err;
}
