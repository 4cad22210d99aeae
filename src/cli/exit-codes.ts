/** Exit codes of the gantry command. Only the CLI turns errors into these. */
export const EXIT = {
  ok: 0,
  /** The input (Dockerfile, image, archive) is wrong, or lint found errors. */
  failure: 1,
  /** The command line is wrong. */
  usage: 2,
  /** A bug or an unexpected environment problem. */
  internal: 70,
  /** Cancelled by SIGINT or SIGTERM (128 + SIGINT, as a shell reports it). */
  interrupted: 130,
} as const;
