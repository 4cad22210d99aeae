import type { SourceLocation } from '../errors/index.js';

/**
 * Lint findings are data (BuildKit returns them beside the result): the parser, the
 * instruction layer and the planner collect them; the CLI decides how to show them.
 * Rule names follow BuildKit's build checks where one exists.
 */
export interface Warning {
  rule: string;
  message: string;
  location?: SourceLocation;
}

export class WarningSink {
  readonly items: Warning[] = [];
  add(rule: string, message: string, location?: SourceLocation): void {
    this.items.push(location ? { rule, message, location } : { rule, message });
  }
}
