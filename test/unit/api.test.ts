import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import * as api from '../../src/index.js';
import { ERROR_CODES } from '../../src/errors/codes.js';
import { projectRoot } from '../helpers/conformance.js';

// The public API is a designed surface: docs/api.md lists it, and every error code it can raise.

const doc = readFileSync(path.join(projectRoot, 'docs', 'api.md'), 'utf8');

/** The backticked names of docs/api.md's section `heading`. */
function namesIn(heading: string): string[] {
  const start = doc.indexOf(`## ${heading}\n`);
  expect(start, `docs/api.md has a section "${heading}"`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/`([A-Za-z_][A-Za-z0-9_]*)`/g)].map((m) => m[1] as string);
}

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = path.join(dir, name);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

describe('the public API', () => {
  test('exports exactly what docs/api.md lists', () => {
    const listed = new Set(namesIn('The whole surface').filter((n) => !['BuildOptions', 'BuildResult', 'ProgressEvent', 'BuildPlan'].includes(n)));
    expect(Object.keys(api).sort()).toEqual([...listed].sort());
  });

  test('no plumbing leaks out: the store class, the executor, crash points, the trace, lazy modules', () => {
    for (const name of ['Store', 'execute', 'crashPoint', 'trace', 'zlib', 'childProcess', 'RegistryClient', 'errorRecord']) {
      expect(api, name).not.toHaveProperty(name);
    }
  });

  test('docs/api.md lists every error code, and only those', () => {
    const start = doc.indexOf('## Errors\n');
    const rows = doc.slice(start, doc.indexOf('\n## ', start + 1)).split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| group'));
    const table = rows.flatMap((l) => [...l.matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1] as string));
    expect([...new Set(table)].sort()).toEqual([...ERROR_CODES].sort());
  });

  test('every error code is raised somewhere in the source', () => {
    const text = sources(path.join(projectRoot, 'src'))
      .filter((f) => !f.endsWith(path.join('errors', 'codes.ts')))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    const unused = ERROR_CODES.filter((c) => !text.includes(`'${c}'`));
    expect(unused).toEqual([]);
  });

  test('error classes carry their code and name', () => {
    const err = new api.OptionError('OPTION_INVALID', 'bad');
    expect(err).toBeInstanceOf(api.GantryError);
    expect(err.name).toBe('OptionError');
    expect(err.code).toBe('OPTION_INVALID');
    expect(api.ERROR_CODES).toContain(err.code);
  });
});

describe('dependencies', () => {
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const text = sources(path.join(projectRoot, 'src'))
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');

  test.each(Object.keys(pkg.dependencies))('the runtime dependency %s is used by the source, not only by tests', (name) => {
    const used = [`from '${name}'`, `import('${name}')`, `('${name}')`].some((form) => text.includes(form));
    expect(used, `src/ never imports ${name}: a devDependency, or none`).toBe(true);
  });
});
