import { describe, expect, test } from 'vitest';
import { gitOptions, parseGitRef, type GitRef } from '../../src/dockerfile/gitref.js';

// ADD's git URLs as Docker 28.5 reads them (observed with its engine; BuildKit 0.25's dfgitutil).

const remote = 'https://example.com/repo.git';

describe('parseGitRef', () => {
  test.each([
    ['https://example.com/repo.git', { remote }],
    ['http://example.com/repo.git#v1', { remote: 'http://example.com/repo.git', ref: 'v1' }],
    ['git://example.com/repo#main:a/b', { remote: 'git://example.com/repo', ref: 'main', subdir: 'a/b' }],
    [`${remote}#:sub`, { remote, subdir: 'sub' }],
    [`${remote}#main:../../etc`, { remote, ref: 'main', subdir: 'etc' }],
    [`${remote}?ref=base`, { remote, ref: 'base' }],
    [`${remote}?branch=base`, { remote, ref: 'refs/heads/base' }],
    [`${remote}?tag=v1`, { remote, ref: 'refs/tags/v1' }],
    [`${remote}?tag=refs/tags/v1`, { remote, ref: 'refs/tags/v1' }],
    [`${remote}?tag=v1#refs/tags/v1`, { remote, ref: 'refs/tags/v1' }],
    [`${remote}?subdir=sub&ref=feature`, { remote, ref: 'feature', subdir: 'sub' }],
    [`${remote}?ref=feature#feature:sub`, { remote, ref: 'feature', subdir: 'sub' }],
    [`${remote}?commit=abc123`, { remote, checksum: 'abc123' }],
    [`${remote}?checksum=abc123&tag=v1`, { remote, ref: 'refs/tags/v1', checksum: 'abc123' }],
    [`${remote}?keep-git-dir&submodules`, { remote, keepGitDir: true, submodules: true }],
    [`${remote}?keep-git-dir=false&submodules=0`, { remote, keepGitDir: false, submodules: false }],
    [`${remote}?submodules=True`, { remote, submodules: true }],
  ] satisfies [string, GitRef][])('%s', (src, want) => {
    expect(parseGitRef(src)).toEqual(want);
  });

  test.each([
    'https://example.com/repo',
    'https://example.com/repo.tar.gz?x=repo.git',
    'ftp://example.com/repo.git',
    'repo.git',
    './repo.git',
  ])('%s is not a git source', (src) => {
    expect(parseGitRef(src)).toBeUndefined();
  });

  test.each([
    [`${remote}?foo=1`, 'unexpected query "foo"'],
    [`${remote}?mtime=commit`, 'unexpected query "mtime"'], // newer BuildKit only
    [`${remote}?fetch-by-commit`, 'query "fetch-by-commit" has no value'], // newer BuildKit only
    [`${remote}?ref=`, 'query "ref" has no value'],
    [`${remote}?ref=a&ref=b`, 'query "ref" has multiple values'],
    [`${remote}?keep-git-dir=yes`, 'invalid keep-git-dir value: "yes"'],
    [`${remote}?submodules=no`, 'invalid submodules value: "no"'],
    [`${remote}?tag=v1#refs/heads/master`, 'ref conflicts: "refs/heads/master" vs "refs/tags/v1"'],
    [`${remote}?ref=a#b`, 'ref conflicts: "b" vs "a"'],
    [`${remote}?branch=main&tag=v1`, 'branch conflicts with tag'],
    [`${remote}?subdir=sub#main:other`, 'subdir conflicts: "other" vs "sub"'],
    ['git@example.com:org/repo.git', 'over ssh is not supported'],
    ['ssh://git@example.com/org/repo.git', 'over ssh is not supported'],
  ])('%s → %s', (src, message) => {
    expect(() => parseGitRef(src)).toThrow(message);
  });
});

describe('gitOptions', () => {
  const ref = (extra: Partial<GitRef> = {}): GitRef => ({ remote, ...extra });
  test('defaults: no .git, submodules checked out', () => {
    expect(gitOptions(ref(), {})).toEqual({ keepGitDir: false, submodules: true });
  });
  test('the query and the flags each give an option', () => {
    expect(gitOptions(ref({ keepGitDir: true, submodules: false }), {})).toEqual({ keepGitDir: true, submodules: false });
    expect(gitOptions(ref(), { keepGitDir: true, checksum: 'ABCdef0' })).toEqual({ keepGitDir: true, submodules: true, checksum: 'ABCdef0' });
    expect(gitOptions(ref({ checksum: 'abc' }), { checksum: '' })).toMatchObject({ checksum: 'abc' });
    expect(gitOptions(ref({ checksum: 'abc', keepGitDir: true }), { checksum: 'abc', keepGitDir: true })).toMatchObject({ checksum: 'abc', keepGitDir: true });
  });
  test.each([
    [ref({ keepGitDir: true }), { keepGitDir: false }, 'inconsistent keep-git-dir configuration'],
    [ref({ checksum: 'abc' }), { checksum: 'abcd' }, 'checksum mismatch "abcd" != "abc"'],
    [ref(), { checksum: 'foobar' }, 'invalid checksum foobar for Git URL, expected hex commit hash'],
    [ref(), { checksum: 'sha256:abcd' }, 'invalid checksum sha256:abcd for Git URL, expected hex commit hash'],
    [ref({ checksum: 'xyz' }), {}, 'invalid checksum xyz for Git URL, expected hex commit hash'],
  ])('%j with %j → error', (r, flags, message) => {
    expect(() => gitOptions(r, flags)).toThrow(message);
  });
});
