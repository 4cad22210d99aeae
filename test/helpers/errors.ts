import { expect } from 'vitest';
import { DockerfileError } from '../../src/errors/index.js';

/** Run fn, expect a DockerfileError, and return it for assertions on message and location. */
export function dockerfileError(fn: () => unknown): DockerfileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DockerfileError);
    return err as DockerfileError;
  }
  throw new Error('expected a DockerfileError, but nothing was thrown');
}
