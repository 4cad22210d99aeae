/** `gantry import`: a rootfs tarball plus `--change` instructions becomes an image in the store. */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { DockerfileError, OptionError } from '../errors/index.js';
import { importRootfs } from '../archive/rootfs-import.js';
import { plan } from '../plan/planner.js';
import { formatReference, normalizeReference } from '../oci/reference.js';
import { hostPlatform, parsePlatform } from '../oci/platform.js';
import type { ContainerConfig, ImageConfig } from '../oci/types.js';
import { configDigestOf } from '../store/images.js';
import { withStore, type Store } from '../store/store.js';
import { configAfterStep } from './config.js';

/** What `docker import -c` accepts, plus the other config-only instructions. */
const CHANGE_INSTRUCTIONS = new Set([
  'CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL',
]);

export interface ImportOptions {
  root: string;
  /** A file path, `-` for standard input, an http(s) URL, or a stream. */
  source: string | Readable;
  /** Name for the new image (`name[:tag]`). */
  reference?: string;
  /** Dockerfile instructions applied to the config (`-c 'CMD ["sh"]'`). */
  changes?: string[];
  platform?: string;
  /** Seconds since the epoch for `created` (reproducible images); default now. */
  sourceDateEpoch?: number;
  message?: string;
}

export interface ImportResult {
  /** Manifest digest. */
  digest: string;
  /** Config digest: docker's image ID. */
  id: string;
  name?: string;
}

export function configFromChanges(changes: readonly string[]): ContainerConfig {
  if (changes.length === 0) return {};
  const image = applyChanges({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [] }, config: {} }, changes);
  // docker import's CMD goes through the classic builder, which sets no ArgsEscaped on Linux (BuildKit's CMD does).
  const { ArgsEscaped: _argsEscaped, ...config } = image.config ?? {};
  return config;
}

/**
 * `changes` (`-c` instructions) applied over `image`'s config, as docker commit's
 * BuildFromConfig applies them: words expanded with its environment (`ENV PATH=/app:$PATH`),
 * WORKDIR relative to its working directory, ENV and LABEL set by key, an ENTRYPOINT without a
 * CMD in the same changes clearing CMD. Its ONBUILD triggers are not run.
 */
export function applyChanges(image: ImageConfig, changes: readonly string[]): ImageConfig {
  if (changes.length === 0) return image;
  for (const [i, c] of changes.entries()) {
    const keyword = c.trim().split(/\s+/)[0]?.toUpperCase() ?? '';
    if (!CHANGE_INSTRUCTIONS.has(keyword)) {
      throw new OptionError(
        'CHANGE_INVALID',
        `--change ${i + 1} "${c}": ${keyword || 'an empty line'} is not a config instruction (allowed: ${[...CHANGE_INSTRUCTIONS].join(', ')})`,
      );
    }
  }
  const c = image.config ?? {};
  const base = 'gantry-change-base';
  const text = [`FROM ${base}`, ...changes].join('\n') + '\n';
  let p;
  try {
    p = plan(text, {
      file: '--change',
      baseImages: { [base]: { env: [...(c.Env ?? [])], ...(c.WorkingDir ? { workingDir: c.WorkingDir } : {}), ...(c.User ? { user: c.User } : {}), ...(c.Shell ? { shell: [...c.Shell] } : {}) } },
    });
  } catch (err) {
    if (err instanceof DockerfileError) {
      throw new OptionError('CHANGE_INVALID', `--change ${err.location.line - 1}: ${err.detail}`, { cause: err });
    }
    throw err;
  }
  let out = image;
  const state = { cmdSet: false };
  for (const step of p.target.steps) out = configAfterStep(out, step, state) ?? out;
  return out;
}

async function openSource(source: string | Readable): Promise<{ stream: Readable; name: string }> {
  if (typeof source !== 'string') return { stream: source, name: 'stream' };
  if (source === '-') return { stream: process.stdin, name: 'standard input' };
  if (/^https?:\/\//i.test(source)) {
    const res = await fetch(source);
    if (!res.ok || !res.body) throw new OptionError('IMPORT_FETCH', `cannot fetch ${source}: HTTP ${res.status}`);
    return { stream: Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), name: source };
  }
  const stream = createReadStream(source);
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', (err) => reject(new OptionError('IMPORT_SOURCE', `cannot read ${source}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : err.message}`)));
  });
  return { stream, name: source };
}

export async function importImage(options: ImportOptions): Promise<ImportResult> {
  const config = configFromChanges(options.changes ?? []);
  const name = options.reference !== undefined ? formatReference(normalizeReference(options.reference)) : undefined;
  const platform = options.platform ? parsePlatform(options.platform) : hostPlatform();
  const created = new Date(options.sourceDateEpoch !== undefined ? options.sourceDateEpoch * 1000 : Date.now()).toISOString();
  return withStore(options.root, async (store) => {
    const { stream, name: sourceName } = await openSource(options.source);
    return importInto(store, stream, sourceName, options, platform, created, config, name);
  });
}

async function importInto(
  store: Store,
  stream: Readable,
  sourceName: string,
  options: ImportOptions,
  platform: ReturnType<typeof hostPlatform>,
  created: string,
  config: ContainerConfig,
  name: string | undefined,
): Promise<ImportResult> {
  const descriptor = await importRootfs(store, stream, {
    source: sourceName,
    os: platform.os,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created,
    config,
    ...(options.message ? { createdBy: options.message } : {}),
  });
  if (name) await store.tag(name, descriptor);
  else await store.addUntagged(descriptor);
  const id = await configDigestOf(store, descriptor);
  return { digest: descriptor.digest, id, ...(name ? { name } : {}) };
}
