import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { resolveSources } from '../../src/builder/context.js';
import { redactUrl } from '../../src/builder/sources.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gantry-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('COPY sources', () => {
  test('with --parents, ** spans directories and each match comes once, however many ways reach it', async () => {
    mkdirSync(path.join(dir, 'a/b/c'), { recursive: true });
    writeFileSync(path.join(dir, 'a/top.txt'), '');
    writeFileSync(path.join(dir, 'a/b/c/deep.txt'), '');
    const found = await resolveSources(dir, ['**/**/*.txt'], () => false, 'COPY', true, true);
    expect(found.map((f) => f.rel).sort()).toEqual(['a/b/c/deep.txt', 'a/top.txt']);
    // Without --parents, ** is *, as in Docker 28.5's COPY: one component.
    const flat = await resolveSources(dir, ['**/*.txt'], () => false, 'COPY', true, false);
    expect(flat.map((f) => f.rel)).toEqual(['a/top.txt']);
  });
});

describe('URLs in messages', () => {
  test('credentials in a URL are hidden, the rest kept', () => {
    expect(redactUrl('cannot clone https://user:tok3n@git.example/r.git#main: fatal: x')).toBe('cannot clone https://***@git.example/r.git#main: fatal: x');
    expect(redactUrl('http://a@b/c and git://x:y@h/r')).toBe('http://***@b/c and git://***@h/r');
    expect(redactUrl('https://git.example/r.git')).toBe('https://git.example/r.git');
  });
});
