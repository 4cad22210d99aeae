import { describe, expect, test } from 'vitest';
import { parseOutput } from '../../src/builder/outputs.js';

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
    ['-', { type: 'tar', dest: '-' }],
    ['type=tar,dest=x', { type: 'tar', dest: 'x' }],
    ['type=oci,dest=-', { type: 'oci', dest: '-', tar: true }],
    ['type=oci,dest=i.tar,compression=zstd', { type: 'oci', dest: 'i.tar', tar: true, format: { compression: 'zstd' } }],
    ['type=oci,dest=i.tar,oci-mediatypes=true', { type: 'oci', dest: 'i.tar', tar: true, format: { ociMediaTypes: true } }],
    [
      'type=registry,name=r/a:1,compression=gzip,compression-level=9,force-compression=true,oci-mediatypes=false',
      { type: 'registry', name: 'r/a:1', format: { compression: 'gzip', level: 9, force: true, ociMediaTypes: false } },
    ],
    ['type=image,compression=uncompressed', { type: 'image', push: false, format: { compression: 'uncompressed' } }],
    // A CSV field in quotes, as buildx reads -o: the names hold a comma.
    ['type=oci,dest=o,"name=r/a:1,r/a:2"', { type: 'oci', dest: 'o', tar: true, names: ['r/a:1', 'r/a:2'] }],
    ['"type=oci","dest=a ""b"""', { type: 'oci', dest: 'a "b"', tar: true }],
  ])('%s', (text, spec) => {
    expect(parseOutput(text)).toEqual(spec);
  });

  test.each([
    ['type=local,dest=d,compression=gzip', /type=local does not take compression= here/],
    ['type=tar,dest=x,oci-mediatypes=true', /does not take oci-mediatypes=/],
    ['type=local,dest=-', /for standard output use type=tar,dest=-/],
    ['type=oci,dest=-,tar=false', /tar=false writes a directory/],
    ['type=oci,dest=a,compression=brotli', /compression=brotli: expected gzip, zstd or uncompressed/],
    ['type=oci,dest=a,compression=uncompressed,compression-level=3', /no meaning with compression=uncompressed/],
    ['type=oci,dest=a,compression=zstd,compression-level=23', /zstd takes 1 to 22/],
    ['type=oci,dest=a,compression-level=fast', /expected a number/],
    ['type=local,dest=d,bogus=1', /type=local does not take bogus=/],
    ['type=docker,dest=d.tar,tar=false', /type=docker does not take tar=/],
    ['type=zip,dest=x', /unknown output type "zip"/],
    ['dest=x', /no type=/],
    ['type=oci', /needs dest=/],
    ['type=oci,dest=a,tar=maybe', /tar=maybe: expected true or false/],
    ['type=registry,push=false', /always pushes/],
    ['type=local,dest=a,dest=b', /dest given twice/],
    ['type=oci,"dest=a', /quoted field is not closed/],
    ['type=oci,dest=a"b', /bare " in a field/],
    ['type=oci,"dest=a"b', /extraneous or missing "/],
  ])('%s is refused', (text, message) => {
    expect(() => parseOutput(text)).toThrow(message);
  });
});
