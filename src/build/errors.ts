import { GantryError } from '../errors/index.js';

/** A build that cannot go on: a RUN that failed, a step gantry cannot do, a missing stage or image. */
export class BuildError extends GantryError {}
