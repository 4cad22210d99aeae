import type { CheckFile } from './types.js';

const file = 'dockerfile_dockerignore_test.go';

const both = { foo: { content: 'contents0', mode: 0o600 }, bar: { content: 'contents0', mode: 0o600 } };

export default {
  file,
  checks: [
    {
      name: 'testDockerignore',
      file,
      dockerfile: '\nFROM scratch\nCOPY . .\n',
      context: {
        foo: { content: 'foo-contents', mode: 0o600 },
        bar: { content: 'bar-contents', mode: 0o600 },
        baz: { content: 'baz-contents', mode: 0o600 },
        bay: { content: 'bay-contents', mode: 0o600 },
        '.dockerignore': { content: '\nba*\nDockerfile\n!bay\n.dockerignore\n', mode: 0o600 },
      },
      files: { foo: 'foo-contents', bay: 'bay-contents' },
      absent: ['.dockerignore', 'Dockerfile', 'bar', 'baz'],
    },
    {
      name: 'testDockerignoreInvalid',
      file,
      // BuildKit asserts an error (and not its 15 s timeout); the check wants it to name the pattern file.
      dockerfile: '\nFROM scratch\nCOPY . .\n',
      context: { '.dockerignore': { content: '!\n', mode: 0o600 } },
      error: /ignore|exclusion|pattern/i,
    },
    {
      name: 'testDockerignoreOverride',
      file,
      // Dockerfile.dockerignore is used for Dockerfile, Dockerfile2.dockerignore for Dockerfile2.
      dockerfile: '\nFROM busybox\nCOPY . .\nRUN [ -f foo ] && [ ! -f bar ]\n',
      context: {
        'Dockerfile.dockerignore': { content: '\nbar\n', mode: 0o600 },
        Dockerfile2: { content: '\nFROM busybox\nCOPY . .\nRUN [ ! -f foo ] && [ -f bar ]\n', mode: 0o600 },
        'Dockerfile2.dockerignore': { content: '\nfoo\n', mode: 0o600 },
        ...both,
      },
      files: { foo: 'contents0' },
      absent: ['bar'],
      then: [{ args: ['-f', '{ctx}/Dockerfile2'], files: { bar: 'contents0' }, absent: ['foo'] }],
    },
  ],
  notPorted: [],
} satisfies CheckFile;
