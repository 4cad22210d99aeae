import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import tar from 'tar-stream';
import { parseDockerfile } from '../../src/dockerfile/stages.js';
import { execute } from '../../src/builder/execute.js';
import { resolvePlan } from '../../src/builder/resolve.js';
import type { ExecuteOptions, ProgressEvent } from '../../src/builder/types.js';
import { loadImage } from '../../src/store/images.js';
import { withStore } from '../../src/store/store.js';
import { layerTar } from '../../src/tar/decompress.js';
import { layerCompression } from '../../src/oci/media-types.js';

// The executor in-process, as build() drives it (parse, resolve, execute the plan), with no
// command and no registry: FROM scratch, so it needs no base image.

const work = mkdtempSync(path.join(tmpdir(), 'gantry-executor-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const root = path.join(work, 'store');
const context = path.join(work, 'ctx');
mkdirSync(context);

const DOCKERFILE = 'FROM scratch\nCOPY hello.txt /app/hello.txt\nWORKDIR /app\nENV A=1\nLABEL tier=web\nCMD ["/app/run"]\n';

async function build(text: string): Promise<{ digest: string; events: ProgressEvent[] }> {
  writeFileSync(path.join(context, 'Dockerfile'), text);
  const events: ProgressEvent[] = [];
  const options: ExecuteOptions = { root, context, dockerfile: path.join(context, 'Dockerfile'), text, sourceDateEpoch: 0, onProgress: (e) => events.push(e) };
  const model = parseDockerfile(text, { file: options.dockerfile });
  const result = await withStore(root, async (store) => execute(store, await resolvePlan(store, model, options, undefined, () => undefined), options));
  return { digest: result.digest, events };
}

async function layerEntries(digest: string): Promise<string[][]> {
  return withStore(root, async (store) => {
    const image = await loadImage(store, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 0 });
    const out: string[][] = [];
    for (const layer of image.layers) {
      const names: string[] = [];
      const extract = tar.extract();
      extract.on('entry', (h, stream, next) => {
        names.push(h.name);
        stream.resume();
        stream.on('end', next);
      });
      await new Promise<void>((resolve, reject) => {
        extract.on('finish', resolve);
        extract.on('error', reject);
        layerTar(layer.open(), layerCompression(layer.mediaType), layer.digest).pipe(extract);
      });
      out.push(names);
    }
    return out;
  });
}

const statuses = (events: ProgressEvent[]): string[] => events.flatMap((e) => (e.type === 'step' && e.status !== 'start' ? [`${e.name.replace(/^\[[^\]]*\] /, '')}: ${e.status}`] : []));

describe('the executor, in-process', () => {
  let first: string;

  test('config steps change the config, filesystem steps make layers (a WORKDIR that exists makes none)', async () => {
    writeFileSync(path.join(context, 'hello.txt'), 'hello\n');
    const r = await build(DOCKERFILE);
    first = r.digest;
    expect(statuses(r.events)).toEqual(['COPY hello.txt /app/hello.txt: done', 'WORKDIR /app: done', 'ENV A=1: done', 'LABEL tier=web: done', 'CMD ["/app/run"]: done']);
    expect(await layerEntries(r.digest)).toEqual([['app/', 'app/hello.txt']]);
    const config = await withStore(root, async (store) => (await loadImage(store, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: r.digest, size: 0 })).config);
    expect(config.config).toMatchObject({ WorkingDir: '/app', Labels: { tier: 'web' }, Cmd: ['/app/run'] });
    expect(config.config?.Env).toContain('A=1');
    expect(config.history?.map((h) => h.empty_layer ?? false)).toEqual([false, true, true, true, true]);
  });

  test('a rebuild with nothing changed hits the cache at every filesystem step and makes the same image', async () => {
    const r = await build(DOCKERFILE);
    expect(statuses(r.events)).toEqual(['COPY hello.txt /app/hello.txt: cached', 'WORKDIR /app: cached', 'ENV A=1: done', 'LABEL tier=web: done', 'CMD ["/app/run"]: done']);
    expect(r.digest).toBe(first);
  });

  test('a source that changed runs its COPY again (its key is the content it copies), and the image differs', async () => {
    writeFileSync(path.join(context, 'hello.txt'), 'hello again\n');
    const r = await build(DOCKERFILE);
    expect(statuses(r.events).slice(0, 2)).toEqual(['COPY hello.txt /app/hello.txt: done', 'WORKDIR /app: done']);
    expect(r.digest).not.toBe(first);
  });
});
