import { DockerfileParser } from 'dockerfile-ast';
import { describe, expect, test } from 'vitest';
import { dump, goQuote, heredocBody, parse, splitCommand } from '../../src/dockerfile/parser.js';
import { dockerfileError } from '../helpers/errors.js';

const p = (text: string) => parse(text, { file: 'Dockerfile' });

describe('logical lines', () => {
  test('CRLF line endings and a byte-order mark are handled', () => {
    const r = p('\uFEFFFROM a\r\nRUN echo \\\r\n  hi\r\n');
    expect(dump(r)).toBe('(from "a")\n(run "echo   hi")\n');
  });

  test('keyword case is irrelevant and dumped lower-case', () => {
    expect(dump(p('from a\nRun x\n'))).toBe('(from "a")\n(run "x")\n');
  });

  test('line numbers span continuations', () => {
    const r = p('FROM a\n\nRUN a \\\n  b \\\n  c\nCMD x\n');
    expect(r.nodes.map((n) => [n.keyword, n.startLine, n.endLine])).toEqual([
      ['from', 1, 1],
      ['run', 3, 5],
      ['cmd', 6, 6],
    ]);
  });

  test('an empty continuation line is a warning at the instruction\'s last line (BuildKit)', () => {
    const r = p('FROM a\nRUN a \\\n\n  b\n');
    expect(r.warnings).toEqual([
      { rule: 'NoEmptyContinuation', message: 'Empty continuation line', location: { file: 'Dockerfile', line: 4 } },
    ]);
  });

  test('comments directly above an instruction are kept', () => {
    const r = p('FROM a\n# first\n# second\nRUN x\n');
    expect(r.nodes[1]?.comments).toEqual(['first', 'second']);
  });

  test('an empty comment clears the comments above; a parser directive is none; a blank line keeps them', () => {
    const r = p('# check=skip=all\n# one\nFROM a\n# two\n#\n# three\n\nRUN x\n');
    expect(r.nodes.map((n) => n.comments)).toEqual([['one'], ['three']]);
  });

  test('keyword columns come from the source index', () => {
    const r = p('FROM a\n   RUN x\nONBUILD  RUN y\n');
    expect(r.nodes[1]?.column).toBe(4);
    expect(r.nodes[2]?.sub?.column).toBe(10);
  });

  test("keyword columns equal dockerfile-ast's, whether read off the line or left to it (odd leading characters)", () => {
    const lines = ['RUN a', '  RUN b', '\tCOPY a b', ' \t ENV A=1', '\u00a0RUN z', '\fRUN q', 'onbuild  run x', 'RUN a \\\n  b', '# c\n  RUN d', 'RUN <<EOF\nx\nEOF'];
    for (const [i, first] of lines.entries()) {
      const text = `FROM s\n${first}\n${lines[(i + 3) % lines.length]}\n   USER u\n`;
      const byLine = new Map(DockerfileParser.parse(text).getInstructions().map((ins) => [ins.getRange().start.line + 1, ins]));
      for (const node of p(text).nodes) {
        const ins = byLine.get(node.startLine);
        expect(node.column, `${JSON.stringify(text)} line ${node.startLine}`).toBe(ins ? ins.getInstructionRange().start.character + 1 : 1);
      }
    }
  });
});

describe('parser directives', () => {
  test('escape=` makes the backtick the escape and continuation character', () => {
    const r = p('# escape=`\nFROM a\nRUN dir c:\\ `\n  /w\n');
    expect(r.escapeToken).toBe('`');
    expect(r.nodes[1]?.args).toEqual(['dir c:\\   /w']);
  });

  test('syntax and check are recorded with their lines', () => {
    const r = p('# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n');
    expect(r.directives).toEqual([
      { name: 'syntax', value: 'docker/dockerfile:1', line: 1 },
      { name: 'check', value: 'skip=all', line: 2 },
    ]);
  });

  test('directives after the first other line are plain comments', () => {
    const r = p('# hello\n# escape=`\nFROM a\n');
    expect(r.escapeToken).toBe('\\');
    expect(r.directives).toEqual([]);
  });

  test('a repeated directive is an error on its line', () => {
    const err = dockerfileError(() => p('# escape=`\n# escape=\\\nFROM a\n'));
    expect(err.message).toBe('Dockerfile:2: only one escape parser directive can be used');
  });

  test('an invalid escape character is an error', () => {
    const err = dockerfileError(() => p('# escape=x\nFROM a\n'));
    expect(err.detail).toMatch(/invalid escape token 'x'/);
    expect(err.location).toEqual({ file: 'Dockerfile', line: 1 });
  });
});

describe('flags', () => {
  test('split from the arguments; quotes and escapes inside flags are removed', () => {
    expect(splitCommand(`COPY --chown="a b" --from=x\\ y src dst`)).toEqual({
      cmd: 'COPY',
      flags: ['--chown=a b', '--from=x y'],
      args: 'src dst',
    });
  });

  test('-- ends the flags', () => {
    expect(splitCommand('RUN -- --not-a-flag')).toEqual({ cmd: 'RUN', flags: [], args: '--not-a-flag' });
  });
});

describe('JSON (exec) form', () => {
  test('text after the array makes it the shell form, as BuildKit 28 reads it (json.Unmarshal); JSON whitespace after it does not', () => {
    expect(p('CMD ["a"] trailing').nodes[0]).toMatchObject({ args: ['["a"] trailing'], json: false });
    expect(p('RUN ["echo", "a"] junk').nodes[0]).toMatchObject({ args: ['["echo", "a"] junk'], json: false });
    expect(p('ENTRYPOINT [] junk').nodes[0]).toMatchObject({ args: ['[] junk'], json: false });
    expect(p('CMD ["a"]   ').nodes[0]).toMatchObject({ args: ['a'], json: true });
    // Junk after a non-string array: no array at all, so no error either.
    expect(p('CMD ["a", 1] x').nodes[0]).toMatchObject({ json: false });
  });

  test('a non-string element is an error naming the instruction', () => {
    const err = dockerfileError(() => p('FROM a\nCMD ["a", 1]\n'));
    expect(err.message).toBe(
      'Dockerfile:2: CMD: when using JSON array syntax, arrays must be comprised of strings only',
    );
  });

  test('invalid JSON falls back to the shell form', () => {
    expect(p("CMD ['a']").nodes[0]).toMatchObject({ args: ["['a']"], json: false });
  });
});

describe('heredocs', () => {
  test('RUN with one heredoc', () => {
    const r = p('FROM a\nRUN <<EOF\necho hi\necho $HOME\nEOF\nCMD x\n');
    const run = r.nodes[1];
    expect(run?.heredocs).toEqual([{ name: 'EOF', fileDescriptor: 0, expand: true, chomp: false, content: 'echo hi\necho $HOME\n' }]);
    expect(run?.endLine).toBe(5);
    expect(r.nodes[2]?.keyword).toBe('cmd');
  });

  test('several heredocs in one instruction, quoted delimiters and <<-', () => {
    const r = p('FROM a\nCOPY <<one <<"two" 3<<-\'three\' /dst/\n1\none\n2\ntwo\n\t\t3\n\tthree\n');
    const docs = r.nodes[1]?.heredocs ?? [];
    expect(docs.map((d) => [d.name, d.expand, d.chomp, d.fileDescriptor])).toEqual([
      ['one', true, false, 0],
      ['two', false, false, 0],
      ['three', false, true, 3],
    ]);
    expect(docs.map((d) => heredocBody(d))).toEqual(['1\n', '2\n', '3\n']);
  });

  test('a partly quoted delimiter disables expansion', () => {
    const r = p('FROM a\nRUN <<E"O"F\nx\nEOF\n');
    expect(r.nodes[1]?.heredocs[0]).toMatchObject({ name: 'EOF', expand: false });
  });

  test('heredocs inside ONBUILD attach to the trigger', () => {
    const r = p('FROM a\nONBUILD RUN <<EOF\necho x\nEOF\n');
    expect(r.nodes[1]?.sub?.heredocs[0]?.content).toBe('echo x\n');
  });

  test('the exec form has no heredocs', () => {
    const r = p('FROM a\nRUN ["cat", "<<EOF"]\nCMD x\n');
    expect(r.nodes[1]?.heredocs).toEqual([]);
    expect(r.nodes).toHaveLength(3);
  });

  test('instructions other than RUN, COPY and ADD have no heredocs', () => {
    const r = p('FROM a\nCMD cat <<EOF\nRUN x\n');
    expect(r.nodes.map((n) => n.keyword)).toEqual(['from', 'cmd', 'run']);
  });

  test('an unterminated heredoc is an error with the instruction and its lines', () => {
    const err = dockerfileError(() => p('FROM a\nRUN <<EOF\necho\n'));
    expect(err.message).toBe('Dockerfile:2: RUN: unterminated heredoc: no line "EOF" closes the heredoc');
    expect(err.location.endLine).toBe(3);
  });
});

describe('errors for files without instructions', () => {
  test.each([
    ['empty', ''],
    ['only comments', '# a\n# b\n'],
    ['only blank lines', '\n\n\n'],
  ])('%s', (_name, text) => {
    const err = dockerfileError(() => p(text));
    expect(err.code).toBe('DOCKERFILE_EMPTY');
    expect(err.detail).toBe('file with no instructions');
  });
});

describe('goQuote matches Go strconv.Quote', () => {
  test.each([
    ['plain', '"plain"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['\t\n\r\b\f\v\x07', '"\\t\\n\\r\\b\\f\\v\\a"'],
    ['\x00\x1b\x7f', '"\\x00\\x1b\\x7f"'],
    ['♥ 한국어', '"♥ 한국어"'],
    ['\u200b', '"\\u200b"'],
  ])('%j', (input, expected) => {
    expect(goQuote(input)).toBe(expected);
  });
});
