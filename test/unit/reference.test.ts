import { describe, expect, test } from 'vitest';
import { familiarName, formatReference, normalizeReference, parseReference } from '../../src/oci/reference.js';
import { digestOf, parseDigest } from '../../src/oci/digest.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('image references, normalised like docker', () => {
  test.each([
    ['alpine', 'docker.io/library/alpine:latest', 'alpine'],
    ['alpine:3.19', 'docker.io/library/alpine:3.19', 'alpine'],
    ['library/alpine', 'docker.io/library/alpine:latest', 'alpine'],
    ['team/app:v1', 'docker.io/team/app:v1', 'team/app'],
    ['index.docker.io/team/app', 'docker.io/team/app:latest', 'team/app'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app'],
    ['localhost:5000/ns/name:tag', 'localhost:5000/ns/name:tag', 'localhost:5000/ns/name'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest', '127.0.0.1:5000/app'],
    ['[::1]:5000/app:1', '[::1]:5000/app:1', '[::1]:5000/app'],
    ['Host.Example/a/b/c', 'Host.Example/a/b/c:latest', 'Host.Example/a/b/c'],
    [`app@${D}`, `docker.io/library/app@${D}`, 'app'],
    [`app:1@${D}`, `docker.io/library/app:1@${D}`, 'app'],
    ['a_b__c-d---e.f:T_1.x-y', 'docker.io/library/a_b__c-d---e.f:T_1.x-y', 'a_b__c-d---e.f'],
  ])('%s → %s', (input, full, familiar) => {
    const ref = normalizeReference(input);
    expect(formatReference(ref)).toBe(full);
    expect(familiarName(ref)).toBe(familiar);
  });

  test('no default tag when only a digest is given', () => {
    expect(normalizeReference(`app@${D}`).tag).toBeUndefined();
    expect(parseReference('app').tag).toBeUndefined();
  });

  test.each([
    ['', 'empty reference'],
    ['Alpine', 'repository name must be lowercase'],
    ['docker.io/Team/app', 'repository name must be lowercase'],
    ['app:', 'invalid tag ""'],
    ['app:-bad', 'invalid tag "-bad"'],
    [`app:${'x'.repeat(129)}`, 'invalid tag'],
    ['app@sha256:abc', 'expected 64 lowercase hexadecimal characters'],
    ['app@md5:' + 'a'.repeat(32), 'unsupported algorithm'],
    ['-host.io/app', 'invalid registry host "-host.io"'],
    ['app//x', 'invalid repository path component ""'],
    ['app_', 'invalid repository path component "app_"'],
    ['a'.repeat(64), 'reserved for image IDs'],
    ['host.io/' + 'a'.repeat(250), 'must not be more than 255 characters'],
  ])('%j is rejected: %s', (input, reason) => {
    expect(() => parseReference(input)).toThrow(reason);
  });
});

describe('digests', () => {
  test('parse', () => {
    expect(parseDigest(D)).toEqual({ algorithm: 'sha256', hex: 'a'.repeat(64) });
    expect(parseDigest('sha512:' + 'b'.repeat(128)).algorithm).toBe('sha512');
  });
  test.each(['sha256:../../x', 'sha256:' + 'A'.repeat(64), 'sha256:' + 'a'.repeat(63), 'sha384:' + 'a'.repeat(96), 'sha256', ''])(
    '%j is rejected',
    (d) => {
      expect(() => parseDigest(d)).toThrow(/invalid digest/);
    },
  );
  test('digestOf', () => {
    expect(digestOf('')).toBe('sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
