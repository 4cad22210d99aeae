import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadIgnore } from '../../src/build/context.js';

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
