import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { chooseMode, reporter } from '../../src/cli/progress.js';

/** A terminal stand-in: what is written, with the cursor calls ora makes on a TTY. */
function fakeTerminal(): NodeJS.WriteStream & { text: () => string } {
  let written = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      written += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream & { text: () => string };
  Object.assign(stream, {
    isTTY: true,
    columns: 200,
    rows: 50,
    cursorTo: () => true,
    moveCursor: () => true,
    clearLine: () => true,
    text: () => written,
  });
  return stream;
}

const step = (id: number, name: string, status: 'start' | 'done' | 'cached', seconds?: number) => ({ type: 'step' as const, id, name, status, ...(seconds !== undefined ? { seconds } : {}) });
const header = { version: '0', context: '.' };

describe('progress on a terminal', () => {
  let ci: string | undefined;
  beforeEach(() => {
    ci = process.env.CI;
    delete process.env.CI; // ora draws only where it is not in CI
  });
  afterEach(() => {
    if (ci !== undefined) process.env.CI = ci;
  });

  test('steps running side by side are lines under one spinner; each done one stays above with its time', async () => {
    const out = fakeTerminal();
    const r = await reporter('tty', out);
    r.start(header);
    r.event(step(1, '[a 2/2] RUN one', 'start'));
    r.event(step(2, '[b 2/2] RUN two', 'start'));
    r.event({ type: 'output', id: 2, stream: 'stdout', text: 'hello\n' });
    r.event(step(2, '[b 2/2] RUN two', 'done', 0.4));
    r.event(step(1, '[a 2/2] RUN one', 'done', 0.6));
    r.end({ status: 'finished' });
    const text = out.text();
    // While both ran, the spinner's text held both, a line each.
    expect(text).toMatch(/#1 \[a 2\/2\] RUN one\n {2}#2 \[b 2\/2\] RUN two/);
    expect(text).toContain('#2 hello\n');
    expect(text).toMatch(/✔.* #2 \[b 2\/2\] RUN two 0\.4s\n/);
    expect(text).toMatch(/✔.* #1 \[a 2\/2\] RUN one 0\.6s\n/);
    expect(text.indexOf('RUN two 0.4s')).toBeLessThan(text.indexOf('RUN one 0.6s'));
    expect(text).toMatch(/\[\+\] Building [\d.]+s \(2\/0\) FINISHED\n$/);
  });

  test('a build that fails marks every step still running, once', async () => {
    const out = fakeTerminal();
    const r = await reporter('tty', out);
    r.event(step(1, 'RUN one', 'start'));
    r.event(step(2, 'RUN two', 'start'));
    r.end({ status: 'failed', error: new Error('x') });
    const text = out.text();
    expect(text.match(/✖ #1 RUN one ERROR/g)).toHaveLength(1);
    expect(text.match(/✖ #2 RUN two ERROR/g)).toHaveLength(1);
  });

  test('asked for on a terminal, the spinner draws in CI too, each done step once; a dumb terminal or one without a width gets lines', async () => {
    process.env.CI = 'true';
    const out = fakeTerminal();
    const r = await reporter('tty', out);
    r.event(step(1, 'RUN one', 'start'));
    r.event(step(2, 'RUN two', 'start'));
    r.event(step(1, 'RUN one', 'done', 0.5));
    r.event(step(2, 'RUN two', 'cached'));
    r.end({ status: 'finished' });
    expect(out.text().match(/✔.* #1 RUN one 0\.5s\n/g)).toHaveLength(1);
    expect(out.text().match(/✔.* #2 RUN two CACHED\n/g)).toHaveLength(1);
    expect(out.text()).toMatch(/#1 RUN one\n {2}#2 RUN two/);
    const term = process.env.TERM;
    try {
      process.env.TERM = 'xterm';
      expect(chooseMode('tty', fakeTerminal())).toBe('tty');
      expect(chooseMode('tty', Object.assign(fakeTerminal(), { columns: 0 }))).toBe('plain');
      process.env.TERM = 'dumb';
      expect(chooseMode('tty', fakeTerminal())).toBe('plain');
    } finally {
      if (term === undefined) delete process.env.TERM;
      else process.env.TERM = term;
    }
  });
});
