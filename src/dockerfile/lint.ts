/**
 * BuildKit's build checks configuration: the `# check=` parser directive (or the build argument
 * BUILDKIT_DOCKERFILE_CHECK, which replaces it), `skip=Rule1,Rule2` or `skip=all` drops
 * warnings, `experimental=Rule|all` turns experimental rules on, `error=true` makes the
 * remaining warnings fail the build. As in Docker 28.5 (BuildKit 0.25), a `# check=` comment
 * above an instruction is only a comment (later BuildKit releases read it for that instruction).
 */
import { DockerfileError, type SourceLocation } from '../errors/index.js';
import type { Warning } from './warnings.js';

export interface CheckConfig {
  skip: Set<string>;
  skipAll: boolean;
  experimental: Set<string>;
  experimentalAll: boolean;
  error: boolean;
}

/** Rules reported only when `experimental=` names them (BuildKit's Experimental rules). */
export const EXPERIMENTAL_RULES: ReadonlySet<string> = new Set(['InvalidDefinitionDescription']);

/** gantry's own warnings: never a lint violation under error=true (BuildKit has no such rules). */
const GANTRY_RULES: ReadonlySet<string> = new Set(['UnusedBuildArg', 'SyntaxDirectiveIgnored']);

/** The build argument that replaces the `# check=` directive. */
export const CHECK_BUILD_ARG = 'BUILDKIT_DOCKERFILE_CHECK';

const emptyConfig = (): CheckConfig => ({ skip: new Set(), skipAll: false, experimental: new Set(), experimentalAll: false, error: false });

/** `Rule1,Rule2` or `all` into the set and the all-flag of a config. */
function addRules(val: string, rules: Set<string>): boolean {
  let all = false;
  for (const rule of val.split(',').map((r) => r.trim()).filter(Boolean)) {
    if (rule.toLowerCase() === 'all') all = true;
    else rules.add(rule);
  }
  return all;
}

export function parseCheckDirective(value: string, where: { file: string; line: number }): CheckConfig {
  const config = emptyConfig();
  for (const part of value.split(';')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).trim().toLowerCase();
    const val = eq < 0 ? '' : item.slice(eq + 1).trim();
    if (key === 'skip') {
      config.skipAll = addRules(val, config.skip) || config.skipAll;
    } else if (key === 'experimental') {
      config.experimentalAll = addRules(val, config.experimental) || config.experimentalAll;
    } else if (key === 'error') {
      if (!['true', 'false'].includes(val.toLowerCase())) {
        throw new DockerfileError('DOCKERFILE_DIRECTIVE', `invalid check directive error value "${val}" (true or false)`, where);
      }
      config.error = val.toLowerCase() === 'true';
    } else {
      throw new DockerfileError('DOCKERFILE_DIRECTIVE', `invalid check directive "${item}" (use skip=..., experimental=... or error=true)`, where);
    }
  }
  return config;
}

/** The file's configuration: the `# check=` directive's. */
export function fileCheckConfig(directive: { value: string; line: number } | undefined, file: string): CheckConfig {
  return directive ? parseCheckDirective(directive.value, { file, line: directive.line }) : emptyConfig();
}

/** The scope with the build argument BUILDKIT_DOCKERFILE_CHECK's configuration in place of the file's, when given. */
export function withCheckBuildArg(scope: CheckScope, buildArgs: Readonly<Record<string, string>> | undefined): CheckScope {
  const value = buildArgs?.[CHECK_BUILD_ARG];
  return value === undefined ? scope : { ...scope, config: parseCheckDirective(value, { file: scope.file, line: 1 }) };
}

/** Whether a rule is reported under a configuration: experimental rules only when enabled, others unless skipped. */
export function isReported(rule: string, config: CheckConfig): boolean {
  if (EXPERIMENTAL_RULES.has(rule)) return config.experimentalAll || config.experimental.has(rule);
  return !config.skipAll && !config.skip.has(rule);
}

export interface CheckScope {
  file: string;
  config: CheckConfig;
}

/** The warnings the configuration lets through. */
export function filterWarnings(warnings: readonly Warning[], scope: CheckScope): Warning[] {
  return warnings.filter((w) => isReported(w.rule, scope.config));
}

/** With error=true, the error the reported warnings make (BuildKit's "lint violation found for rules"); else undefined. */
export function checkViolation(warnings: readonly Warning[], scope: CheckScope): DockerfileError | undefined {
  const violations = warnings.filter((w) => !GANTRY_RULES.has(w.rule));
  const first = violations[0];
  if (!scope.config.error || !first) return undefined;
  const rules = [...new Set(violations.map((w) => w.rule))];
  const where: SourceLocation = first.location ?? { file: scope.file, line: 1 };
  const err = new DockerfileError('DOCKERFILE_CHECK_FAILED', `lint violation found for rules: ${rules.join(', ')}`, where);
  return withWarnings(err, warnings);
}

/** The error, carrying the warnings found before it (printed with it, as BuildKit prints them). */
export function withWarnings<E extends Error>(err: E, warnings: readonly Warning[]): E {
  if (warnings.length > 0 && !('warnings' in err)) Object.assign(err, { warnings: [...warnings] });
  return err;
}

/** The warnings an error carries (see withWarnings). */
export function warningsOf(err: unknown): Warning[] {
  const w = (err as { warnings?: unknown } | null)?.warnings;
  return Array.isArray(w) ? (w as Warning[]) : [];
}
