import { afterAll, describe, expect, test } from 'vitest';
import { envFromMap, expand } from '../../src/dockerfile/shell.js';
import { readConformance } from '../helpers/conformance.js';

// ../shared/conformance/buildkit-shell: BuildKit's own expansion tables, run as they are.

interface Tally {
  ran: number;
  passed: number;
}

function report(name: string, t: Tally): void {
  console.log(`conformance ${name}: ${t.passed}/${t.ran} cases passed`);
}

describe('buildkit-shell envVarTest', () => {
  const env = envFromMap({ PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' });
  const tally: Tally = { ran: 0, passed: 0 };
  const cases = readConformance('buildkit-shell', 'envVarTest')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((line) => {
      const [platform, input, ...rest] = line.split('|');
      return { platform: (platform ?? '').trim(), input: (input ?? '').trim(), expected: rest.join('|').trim(), line };
    })
    .filter((c) => c.platform === 'A' || c.platform === 'U');

  test('has the cases the README describes', () => {
    expect(cases.length).toBeGreaterThan(200);
  });

  test.each(cases)('$platform|$input', ({ input, expected }) => {
    tally.ran++;
    if (expected === 'error') {
      expect(() => expand(input, env)).toThrow();
    } else {
      expect(expand(input, env).word).toBe(expected);
    }
    tally.passed++;
  });

  afterAll(() => report('buildkit-shell/envVarTest', tally));
});

describe('buildkit-shell wordsTest', () => {
  const tally: Tally = { ran: 0, passed: 0 };
  const env = new Map<string, string>();
  type Case = { input: string; expected: string[] | 'error'; env: Map<string, string> };
  const cases: Case[] = [];
  for (const raw of readConformance('buildkit-shell', 'wordsTest').split('\n')) {
    const line = raw.replace(/^ +/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('ENV ')) {
      const kv = line.slice(4).replace(/^ +/, '');
      const eq = kv.indexOf('=');
      env.set(kv.slice(0, eq), kv.slice(eq + 1));
      continue;
    }
    const bar = line.indexOf('|');
    const input = line.slice(0, bar).trim();
    const right = line.slice(bar + 1).replace(/^ +/, '');
    cases.push({ input, expected: right === 'error' ? 'error' : right.split(','), env: new Map(env) });
  }

  test('has the cases the README describes', () => {
    expect(cases.length).toBeGreaterThan(20);
  });

  test.each(cases)('$input', ({ input, expected, env: scope }) => {
    tally.ran++;
    if (expected === 'error') {
      expect(() => expand(input, envFromMap(scope))).toThrow();
    } else {
      expect(expand(input, envFromMap(scope)).words).toEqual(expected);
    }
    tally.passed++;
  });

  afterAll(() => report('buildkit-shell/wordsTest', tally));
});
