/**
 * The `# check=` parser directive (BuildKit build checks): `skip=Rule1,Rule2` or
 * `skip=all` drops warnings, `error=true` turns the remaining ones into an error.
 */
import { DockerfileError } from '../errors/index.js';
import type { Directive } from './parser.js';
import type { Warning } from './warnings.js';

export interface CheckConfig {
  skip: Set<string>;
  skipAll: boolean;
  error: boolean;
}

export function parseCheckDirective(value: string, where: { file: string; line: number }): CheckConfig {
  const config: CheckConfig = { skip: new Set(), skipAll: false, error: false };
  for (const part of value.split(';')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (key === 'skip') {
      for (const rule of val.split(',').map((r) => r.trim()).filter(Boolean)) {
        if (rule.toLowerCase() === 'all') config.skipAll = true;
        else config.skip.add(rule);
      }
    } else if (key === 'error') {
      if (!['true', 'false'].includes(val.toLowerCase())) {
        throw new DockerfileError('DOCKERFILE_DIRECTIVE', `invalid check directive error value "${val}" (true or false)`, where);
      }
      config.error = val.toLowerCase() === 'true';
    } else {
      throw new DockerfileError('DOCKERFILE_DIRECTIVE', `invalid check directive "${item}" (use skip=... or error=true)`, where);
    }
  }
  return config;
}

/** Filters warnings by the check directive; with error=true, remaining warnings fail the build. */
export function applyCheckDirective(warnings: Warning[], directives: Directive[], file: string): Warning[] {
  const d = directives.find((x) => x.name === 'check');
  if (!d) return warnings;
  const config = parseCheckDirective(d.value, { file, line: d.line });
  const kept = config.skipAll ? [] : warnings.filter((w) => !config.skip.has(w.rule));
  if (config.error && kept.length > 0) {
    const first = kept[0] as Warning;
    throw new DockerfileError(
      'DOCKERFILE_CHECK_FAILED',
      `lint violations found (check=error=true): ` + kept.map((w) => `${w.rule}: ${w.message}`).join('; '),
      first.location ?? { file, line: d.line },
    );
  }
  return kept;
}
