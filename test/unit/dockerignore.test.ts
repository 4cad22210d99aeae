import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadIgnore } from '../../src/builder/context.js';

// .dockerignore patterns BuildKit 28.5 refuses fail the build (seen there: "!", "  !  ", "a[",
// "!a["); the others load.

const work = mkdtempSync(path.join(tmpdir(), 'gantry-ignore-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const load = async (text: string) => {
  const dir = mkdtempSync(path.join(work, 'ctx-'));
  writeFileSync(path.join(dir, '.dockerignore'), text);
  return loadIgnore(dir);
};

describe('.dockerignore', () => {
  test.each(['!', '  !  ', 'ok\n!\n'])('%j: an exclusion of nothing is refused, naming the file', async (text) => {
    await expect(load(text)).rejects.toThrow(/\.dockerignore: illegal exclusion pattern: "!"/);
  });

  test.each(['a[', '!a[', '[]a]', '[c-a]', '[a-]', 'x\\', '[^'])('%j: a pattern Go cannot compile is refused', async (text) => {
    await expect(load(text)).rejects.toThrow(/\.dockerignore: syntax error in pattern/);
  });

  test.each(['# a comment', '*.log', '!keep.log', '[a-c]x', '[^z]y', 'a\\*b', '**/tmp', ''])('%j loads', async (text) => {
    const ignore = await load(text);
    expect(typeof ignore).toBe('function');
  });

  test('what the patterns mean', async () => {
    const ignore = await load('*.log\n!keep.log\nbuild/\n');
    expect(ignore('a.log')).toBe(true);
    expect(ignore('keep.log')).toBe(false);
    expect(ignore('sub/a.log')).toBe(false);
    expect(ignore('build')).toBe(true);
  });
});

// What BuildKit's matcher (moby/patternmatcher) answers for these, checked by running it: its
// regular expressions with their quirks (`+` escaped but `|` and `{` not, a class of `[*]` being
// Go's `[[^/]*]`), a match of a parent directory leaving out what is under it, the last matching
// pattern deciding.
describe('.dockerignore matching as moby/patternmatcher matches', () => {
  test.each([
    ['a|b', { 'a|b': true, a: false, b: false }],
    ['*|b', { x: true, 'x/y': true, 'a.c': true }],
    ['a+b', { 'a+b': true, aab: false, ab: false }],
    ['a{2}*', { aa: true, aax: true, a: false, 'a{2}': false }],
    ['[*]', { '*': false, ']': true, '[]': true, 'a]': false, x: false }],
    ['**/**/b', { b: true, 'x/b': true, 'x/y/b': true, 'b/c': true, ab: false, 'x/ab': false }],
    ['**foo', { foo: true, xfoo: true, 'a/xfoo': true, foox: false }],
    ['\\d*', { '5x': true, x5: false, d: false }],
    ['*.log\n!keep.log\nbuild/', { 'a.log': true, 'keep.log': false, 'sub/a.log': false, build: true, 'build/x': true }],
    ['a^b\n^c', { 'a^b': true, c: false, '^c': true }],
    ['dir/*\n!dir/keep', { 'dir/x': true, 'dir/keep': false, 'dir/keep/y': false }],
  ])('%j', async (text, expected) => {
    const ignore = await load(text);
    expect(Object.fromEntries(Object.keys(expected).map((p) => [p, ignore(p)]))).toEqual(expected);
  });

  test('"**/" thirty times against a path 40 directories deep: linear, not exponential', async () => {
    const ignore = await load(`${Array(30).fill('**').join('/')}/b\n`);
    const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join('/');
    const started = Date.now();
    expect(ignore(`${deep}/x`)).toBe(false);
    expect(ignore(`${deep}/b`)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
