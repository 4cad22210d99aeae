import { describe, expect, test } from 'vitest';
import { cacheDocument, cacheDocumentProblem, CACHE_CONFIG_TYPE, parseCacheSpec, type RecordedEntry } from '../../src/builder/shared-cache.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const k = (c: string): string => c.repeat(64);

describe('--cache-to and --cache-from as buildx reads them', () => {
  test.each([
    ['to', 'type=registry,ref=reg/app:cache', { type: 'registry', ref: 'reg/app:cache' }],
    ['to', 'type=registry,ref=reg/app:cache,mode=max,compression=zstd,compression-level=5,ignore-error=true,image-manifest=true', { type: 'registry', ref: 'reg/app:cache', mode: 'max', format: { compression: 'zstd', level: 5 }, ignoreError: true }],
    ['to', 'type=local,dest=/tmp/c,mode=min,oci-mediatypes=true', { type: 'local', dest: '/tmp/c', mode: 'min' }],
    ['to', 'type=inline', { type: 'inline' }],
    ['from', 'reg/app:cache', { type: 'registry', ref: 'reg/app:cache' }],
    ['from', 'type=registry,ref=reg/app:cache', { type: 'registry', ref: 'reg/app:cache' }],
    ['from', `type=local,src=/tmp/c,digest=${d('a')}`, { type: 'local', src: '/tmp/c', digest: d('a') }],
    ['to', '"type=local","dest=/tmp/a,b"', { type: 'local', dest: '/tmp/a,b' }],
  ] as const)('--cache-%s %s', (direction, text, spec) => {
    expect(parseCacheSpec(text, direction)).toEqual(spec);
  });

  test.each([
    ['to', 'type=gha', 'type=gha is not supported'],
    ['to', 'type=s3,bucket=b', 'type=s3 is not supported'],
    ['to', 'type=what', 'unknown type "what"'],
    ['to', 'ref=reg/app', 'type= is missing'],
    ['to', 'type=registry', 'needs ref='],
    ['to', 'type=registry,ref=Reg/App', 'invalid'],
    ['to', 'type=registry,ref=r/a,mode=all', 'mode=all: expected min or max'],
    ['to', 'type=registry,ref=r/a,compression=lz4', 'compression=lz4'],
    ['to', 'type=registry,ref=r/a,compression-level=x', 'compression-level=x'],
    ['to', 'type=registry,ref=r/a,ignore-error=yes', 'ignore-error=yes: expected true or false'],
    ['to', 'type=registry,ref=r/a,image-manifest=false', 'image-manifest=false'],
    ['to', 'type=registry,ref=r/a,oci-mediatypes=false', 'oci-mediatypes=false'],
    ['to', 'type=registry,ref=r/a,colour=blue', 'colour: not known for type=registry'],
    ['to', 'type=registry,ref=r/a,ref=r/b', 'ref is given twice'],
    ['to', 'type=local', 'needs dest=DIR'],
    ['to', 'type=inline,mode=max', 'mode: not known for type=inline'],
    ['from', 'type=inline', 'type=inline is for --cache-to'],
    ['from', 'type=local,dest=/x', 'needs src=DIR'],
    ['from', 'type=local,src=/x,mode=max', 'mode: not known for type=local in --cache-from'],
    ['from', 'type=local,src=/x,digest=sha256:00', 'invalid digest'],
    ['from', 'type=registry,ref=r/a,mode=max', 'mode: not known'],
    ['from', '', 'expected a reference'],
    ['from', 'Not A Ref', 'invalid'],
    ['to', 'type=local,dest=', 'needs dest=DIR'],
    ['from', 'type=local,src=', 'needs src=DIR'],
    ['to', 'type=registry,ref=r/a,compression=gzip,compression-level=12', 'gzip takes 0 to 9'],
  ] as const)('--cache-%s %s is refused', (direction, text, message) => {
    expect(() => parseCacheSpec(text, direction)).toThrow(message);
    try {
      parseCacheSpec(text, direction);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('CACHE_INVALID');
    }
  });
});

describe('the cache document', () => {
  const layer = (c: string) => ({ digest: d(c), size: 10, mediaType: 'application/vnd.oci.image.layer.v1.tar', diffId: d(c) });
  const recorded: RecordedEntry[] = [
    { key: k('1'), entry: { layer: layer('a'), created: '2026-01-01T00:00:00Z' }, stage: 0 },
    { key: k('2'), entry: { layer: null, created: '2026-01-01T00:00:01Z' }, stage: 0 },
    { key: k('3'), entry: { layer: null, kept: `kept:${k('9')}`, created: '2026-01-01T00:00:02Z' }, stage: 0 },
    { key: k('4'), entry: { layer: layer('b'), next: k('5'), created: '2026-01-01T00:00:03Z' }, stage: 1 },
    { key: k('1'), entry: { layer: layer('a'), created: '2026-01-01T00:00:00Z' }, stage: 1 },
  ];

  test('names each layer by its index; a change kept only as a snapshot, or a layer not given, is left out; each key once', () => {
    const doc = cacheDocument(recorded, [layer('a'), layer('b')]);
    expect(doc).toEqual({
      schemaVersion: 1,
      mediaType: CACHE_CONFIG_TYPE,
      diffIds: [d('a'), d('b')],
      entries: [
        { key: k('1'), layer: 0, created: '2026-01-01T00:00:00Z' },
        { key: k('2'), layer: null, created: '2026-01-01T00:00:01Z' },
        { key: k('4'), layer: 1, next: k('5'), created: '2026-01-01T00:00:03Z' },
      ],
    });
    expect(cacheDocumentProblem(doc, 2)).toBeUndefined();
    expect(cacheDocument(recorded, [layer('b')]).entries.map((e) => e.key)).toEqual([k('2'), k('4')]);
  });

  test('without byLayers (mode=min, inline) a step keyed by another stage\'s layers is left out; its key by content stays', () => {
    const chained: RecordedEntry[] = [...recorded, { key: k('5'), entry: { layer: layer('b'), created: '2026-01-01T00:00:03Z' }, stage: 1 }];
    expect(cacheDocument(chained, [layer('a'), layer('b')], { byLayers: false }).entries.map((e) => e.key)).toEqual([k('1'), k('2'), k('5')]);
    expect(cacheDocument(chained, [layer('a'), layer('b')]).entries.map((e) => e.key)).toEqual([k('1'), k('2'), k('4'), k('5')]);
  });

  test.each([
    ['not an object', [], 'not a JSON object'],
    ['another version', { schemaVersion: 2, mediaType: CACHE_CONFIG_TYPE, diffIds: [], entries: [] }, 'version 2'],
    ['another media type', { schemaVersion: 1, mediaType: 'x', diffIds: [], entries: [] }, 'mediaType'],
    ['too few diff IDs', { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: [], entries: [] }, 'diffIds does not list the 1 layers'],
    ['a bad diff ID', { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: ['sha256:../x'], entries: [] }, 'invalid digest'],
    ['a layer out of range', { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: [d('a')], entries: [{ key: k('1'), layer: 1, created: '2026-01-01T00:00:00Z' }] }, 'layer 1 is not one of the 1 layers'],
    ['a key that is no sum', { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: [d('a')], entries: [{ key: '../x', layer: 0, created: '2026-01-01T00:00:00Z' }] }, 'has no key'],
    ['a next that is no key', { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: [d('a')], entries: [{ key: k('1'), layer: 0, next: 'x', created: '2026-01-01T00:00:00Z' }] }, 'next is not a key'],
    ['a date that is not RFC 3339', { schemaVersion: 1, mediaType: CACHE_CONFIG_TYPE, diffIds: [d('a')], entries: [{ key: k('1'), layer: 0, created: 'yesterday' }] }, 'not an RFC 3339 date'],
  ])('%s is a problem', (_what, doc, problem) => {
    expect(cacheDocumentProblem(doc, 1)).toContain(problem);
  });
});
