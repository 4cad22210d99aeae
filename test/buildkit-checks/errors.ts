import type { Check, CheckFile } from './types.js';

const file = 'errors_test.go';

/**
 * testErrorsSourceMap: each Dockerfile fails, and the error points into the Dockerfile at the
 * given line (BuildKit attaches a source map with the file's text and the ranges; gantry names
 * `Dockerfile:LINE` in the message). alpine → busybox. For the instruction continued over lines
 * 2 and 3, BuildKit gives a range on each line; gantry's message names the first.
 */
const at = (name: string, dockerfile: string, line: number, gap?: string): Check => ({
  name: 'testErrorsSourceMap',
  file,
  dockerfile,
  error: new RegExp(`Dockerfile:${line}(:\\d+)?:`),
  ...(gap ? { gap: `${name}: ${gap}` } : {}),
});

export default {
  file,
  checks: [
    at('invalidenv', 'from busybox\nenv', 2),
    at('invalidsyntax', '#syntax=foobar\nfrom busybox', 1, '# syntax= is ignored (a SyntaxDirectiveIgnored warning), so the build succeeds; BuildKit fails to resolve the frontend image foobar (line 1)'),
    at('invalidrun', 'from scratch\nenv foo=bar\nrun what', 3),
    at('invalidcopy', 'from scratch\nenv foo=bar\ncopy foo bar\nenv bar=baz', 3),
    at('invalidflag', 'from scratch\nenv foo=bar\ncopy --foo=bar / /\nenv bar=baz', 3),
    at('invalidcopyfrom', 'from scratch\nenv foo=bar\ncopy --from=invalid foo bar\nenv bar=baz', 3),
    at('invalidmultiline', 'from scratch\nrun wh\\\nat\nenv bar=baz', 2),
  ],
  notPorted: [],
} satisfies CheckFile;
