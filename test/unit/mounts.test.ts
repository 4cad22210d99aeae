import { describe, expect, test } from 'vitest';
import { parseMount, splitCsv } from '../../src/dockerfile/mounts.js';

describe('RUN --mount values', () => {
  test('bind is the default type and read-only', () => {
    expect(parseMount('target=/src,source=/app,from=build')).toEqual({
      type: 'bind',
      target: '/src',
      source: '/app',
      from: 'build',
      readOnly: true,
    });
    expect(parseMount('type=bind,dst=/x,rw')).toMatchObject({ readOnly: false, target: '/x' });
    expect(parseMount('type=bind,destination=/x,readwrite=true')).toMatchObject({ readOnly: false });
  });

  test('cache: id defaults to the target, sharing to shared, writable', () => {
    expect(parseMount('type=cache,target=/root/.npm')).toEqual({
      type: 'cache',
      target: '/root/.npm',
      id: '/root/.npm',
      sharing: 'shared',
      readOnly: false,
    });
    expect(parseMount('type=cache,target=/c,id=npm,sharing=locked,mode=0700,uid=1000,gid=1000,from=base,source=/s')).toMatchObject({
      id: 'npm',
      sharing: 'locked',
      mode: 0o700,
      uid: 1000,
      gid: 1000,
      from: 'base',
      source: '/s',
    });
  });

  test('tmpfs with a size', () => {
    expect(parseMount('type=tmpfs,target=/tmp,size=64m')).toEqual({ type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024, readOnly: false });
  });

  test('secret: target defaults to /run/secrets/<id>, id to the target name; env form', () => {
    expect(parseMount('type=secret,id=npmrc')).toMatchObject({ id: 'npmrc', target: '/run/secrets/npmrc', readOnly: true });
    expect(parseMount('type=secret,target=/root/.npmrc,required')).toMatchObject({ id: '.npmrc', required: true });
    expect(parseMount('type=secret,id=tok,env=TOKEN')).toMatchObject({ id: 'tok', env: 'TOKEN' });
    expect(parseMount('type=secret,id=tok,env=TOKEN').target).toBeUndefined();
  });

  test('ssh defaults', () => {
    expect(parseMount('type=ssh')).toMatchObject({ type: 'ssh', id: 'default', readOnly: true });
    expect(parseMount('type=ssh').target).toBeUndefined(); // /run/buildkit/ssh_agent.<n>, numbered by the executor
  });

  test('quoted CSV fields', () => {
    expect(splitCsv('type=bind,"target=/a,b",ro')).toEqual(['type=bind', 'target=/a,b', 'ro']);
    expect(parseMount('type=bind,"target=/a,b"').target).toBe('/a,b');
  });

  test.each([
    ['type=nfs,target=/x', 'unsupported mount type "nfs"'],
    ['type=bind', 'mount type bind needs a target'],
    ['type=cache,target=/x,sharing=all', 'unsupported sharing value "all"'],
    ['type=cache,target=/x,mode=0999', 'invalid value for mode: 0999'],
    ['type=cache,target=/x,uid=-1', 'invalid value for uid: -1'],
    ['type=bind,target=/x,size=1m', 'size is only supported for tmpfs mounts'],
    ['type=tmpfs,target=/x,from=a', `'from' and 'source' are not supported for tmpfs mounts`],
    ['type=secret,from=a,id=x', `'from' is not supported for secret mounts`],
    ['type=secret', 'secret mount needs an id, a target or an env'],
    ['type=bind,target=/x,bogus=1', `unexpected key 'bogus' in 'bogus=1'`],
    ['type=bind,target=/x,nonsense', `invalid field 'nonsense' must be a key=value pair`],
    ['type=bind,target=/x,ro=perhaps', 'invalid value for ro: perhaps'],
    ['type=bind,target=/x,id=a', `'sharing' and 'id' are only supported for cache mounts`],
    ['type=cache,target=/x,required', `'required' is only supported for secret and ssh mounts`],
    ['type=bind,"target=/x', 'unterminated quote in mount "type=bind,"target=/x"'],
    // With BuildKit's "did you mean" (these messages as Docker 28.5 prints them).
    ['type=cahce,target=/x', 'unsupported mount type "cahce" (did you mean cache?)'],
    ['type=cache,targte=/x', `unexpected key 'targte' in 'targte=/x' (did you mean target?)`],
    ['type=cache,target=/x,sharng=locked', `unexpected key 'sharng' in 'sharng=locked' (did you mean sharing?)`],
    ['type=bind,src=a,target=/x,readwrite=maybe', 'invalid value for readwrite: maybe'],
  ])('%s → %s', (value, message) => {
    expect(() => parseMount(value)).toThrow(message);
  });
});
