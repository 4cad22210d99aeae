import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { DockerfileError } from '../../src/errors/index.js';
import { dump, parse } from '../../src/dockerfile/parser.js';
import { conformanceDir } from '../helpers/conformance.js';

// ../shared/conformance/buildkit-parser: BuildKit's parser golden files, read where they are.

const root = path.join(conformanceDir(), 'buildkit-parser');
const positive = readdirSync(path.join(root, 'testfiles')).sort();
const negative = readdirSync(path.join(root, 'testfiles-negative')).sort();
const tally = { ran: 0, passed: 0 };

describe('buildkit-parser testfiles', () => {
  test('all 33 cases are present', () => {
    expect(positive.length).toBe(33);
  });

  test.each(positive)('%s', (name) => {
    tally.ran++;
    const dir = path.join(root, 'testfiles', name);
    const text = readFileSync(path.join(dir, 'Dockerfile'), 'utf8');
    const expected = readFileSync(path.join(dir, 'result'), 'utf8');
    expect(dump(parse(text, { file: `${name}/Dockerfile` }))).toBe(expected);
    tally.passed++;
  });
});

describe('buildkit-parser testfiles-negative', () => {
  test('all 4 cases are present', () => {
    expect(negative.length).toBe(4);
  });

  test.each(negative)('%s is rejected with a located error', (name) => {
    tally.ran++;
    const text = readFileSync(path.join(root, 'testfiles-negative', name, 'Dockerfile'), 'utf8');
    let caught: unknown;
    try {
      parse(text, { file: `${name}/Dockerfile` });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DockerfileError);
    const err = caught as DockerfileError;
    expect(err.message).toMatch(new RegExp(`^${name}/Dockerfile:\\d+`));
    expect(err.location.file).toBe(`${name}/Dockerfile`);
    tally.passed++;
  });
});

afterAll(() => console.log(`conformance buildkit-parser: ${tally.passed}/${tally.ran} cases passed`));
