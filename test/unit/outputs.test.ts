import { describe, expect, test } from 'vitest';
import { parseOutput } from '../../src/build/outputs.js';

// -o as docker buildx takes it; every key gantry does not implement is refused, never ignored.

describe('-o', () => {
  test.each([
    ['out', { type: 'local', dest: 'out' }],
    ['type=local,dest=d', { type: 'local', dest: 'd' }],
    ['type=oci,dest=i.tar', { type: 'oci', dest: 'i.tar', tar: true }],
    ['type=oci,dest=layout,tar=false', { type: 'oci', dest: 'layout', tar: false }],
    ['type=oci,dest=image.oci', { type: 'oci', dest: 'image.oci', tar: true }],
    ['type=docker,dest=d.tar,name=a/b:1', { type: 'docker', dest: 'd.tar', names: ['a/b:1'] }],
    ['type=registry', { type: 'registry' }],
    ['type=registry,name=r/app:1', { type: 'registry', name: 'r/app:1' }],
    ['type=image,name=app:1', { type: 'image', name: 'app:1', push: false }],
    ['type=image,name=r/app:1,push=true', { type: 'image', name: 'r/app:1', push: true }],
  ])('%s', (text, spec) => {
    expect(parseOutput(text)).toEqual(spec);
  });

  test.each([
    ['-', /standard output is not supported yet/],
    ['type=oci,dest=i.tar,compression=zstd', /type=oci does not take compression= here/],
    ['type=oci,dest=i.tar,oci-mediatypes=true', /does not take oci-mediatypes=/],
    ['type=local,dest=d,bogus=1', /type=local does not take bogus=/],
    ['type=docker,dest=d.tar,tar=false', /type=docker does not take tar=/],
    ['type=tar,dest=x', /unknown output type "tar"/],
    ['dest=x', /no type=/],
    ['type=oci', /needs dest=/],
    ['type=oci,dest=a,tar=maybe', /tar=maybe: expected true or false/],
    ['type=registry,push=false', /always pushes/],
    ['type=local,dest=a,dest=b', /dest given twice/],
  ])('%s is refused', (text, message) => {
    expect(() => parseOutput(text)).toThrow(message);
  });
});
