/**
 * A filesystem step done on its rootfs and made into a layer: the rootfs's stat index before
 * (kept from the step before, or with what the workspace mounted), the step, the index after
 * (on an overlay only the upper directory is looked at again), their difference written as an
 * uncompressed layer straight into the store (its digest is its diff ID; it is compressed when
 * it leaves the store: store/compress.ts), with the capabilities of the files it adds.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { trace } from '../support/process.js';
import { MediaType } from '../oci/media-types.js';
import type { Step } from '../plan/planner.js';
import { readXattrs, readXattrsTree } from '../rootfs/xattr.js';
import { diff, snapshot, snapshotUpper, writeLayer, type Snapshot } from '../snapshot/diff.js';
import type { Store } from '../store/store.js';
import { TarWriter } from '../tar/writer.js';
import { keptLayer, type LayerRef, type StageState } from './state.js';
import type { FsStep } from './steps/step.js';
import type { Workspace } from './workspace.js';

/**
 * Do `work` (step `step`) on `state`'s rootfs; its layer, or null when it changed nothing. With
 * `keepOnly` (a stage whose layers never leave the build) and an overlay to keep it in, no layer
 * is made: the step's change stays in its snapshot, under a stand-in layer (state.ts: keptLayer).
 */
export async function doStep(
  ctx: { ws: Workspace; store: Store; sourceDateEpoch?: number; keepOnly?: boolean },
  state: StageState,
  step: Step,
  work: FsStep,
): Promise<LayerRef | null> {
  const { ws, store } = ctx;
  const rootfs = await ws.forStep(state);
  const fresh = ws.freshUpper(state);
  delete state.upperCaps; // this step changes the rootfs
  trace?.(`step ${step.id}: rootfs ready`);
  const before = state.snapshot ?? (ws.stats.walks++, await snapshot(rootfs));
  trace?.(`step ${step.id}: snapshot before`);
  const { capsKnownNone } = await work.exec(rootfs);
  trace?.(`step ${step.id}: ${step.op} done`);
  const upper = ws.upperOf(rootfs);
  // After a RUN on an overlay, what it may have set capabilities on is all in the upper
  // directory: read there meanwhile (by the kernel helper, or getfattr), on the other core,
  // while the snapshot below keeps this thread busy.
  const upperCaps = upper && step.op === 'run' ? readXattrsTree(upper) : undefined;
  upperCaps?.catch(() => undefined); // awaited below, or not needed
  if (upperCaps) state.upperCaps = upperCaps;
  const touched = upper ? new Set<string>() : undefined;
  const after = upper ? snapshotUpper(rootfs, upper, before, touched, { fresh }) : await snapshot(rootfs);
  trace?.(`step ${step.id}: snapshot after`);
  const changes = diff(before, after, { overlay: upper !== undefined, ...(touched ? { touched } : {}) });
  state.snapshot = after;
  if (touched) state.changed = { before, paths: touched };
  else delete state.changed;
  trace?.(`step ${step.id}: diff (${changes.length} changes)`);
  if (changes.length === 0) return null;
  if (ctx.keepOnly && upper && ws.canKeepOnly(state)) {
    // What the snapshot holds, for the build cache's budget: the files' bytes and a block per entry.
    ws.charge(rootfs, changes.reduce((n, c) => n + 512 + (c.kind === 'add' ? (after.get(c.path)?.size ?? 0) : 0), 0));
    ws.stats.keptOnly++;
    trace?.(`step ${step.id}: kept as a snapshot only`);
    return keptLayer(`kept:${randomBytes(32).toString('hex')}`);
  }
  const xattrs = capsKnownNone ? new Map<string, Map<string, Buffer>>() : upperCaps ? layerFilesOnly(await upperCaps, after, changes) : await layerXattrs(rootfs, after, changes);
  trace?.(`step ${step.id}: xattrs`);
  const blob = await store.writeWith((out) =>
    writeLayer(new TarWriter(out), rootfs, after, changes, {
      ...(ctx.sourceDateEpoch !== undefined ? { sourceDateEpoch: ctx.sourceDateEpoch } : {}),
      xattrs,
    }),
  );
  ws.charge(rootfs, blob.size);
  ws.stats.layersWritten++;
  trace?.(`step ${step.id}: layer stored`);
  return { digest: blob.digest, size: blob.size, diffId: blob.digest, mediaType: MediaType.ociLayer };
}

/**
 * The xattrs a layer records for its files (security.capability, as BuildKit): a RUN's
 * `setcap` survives. Relative path → name → value.
 */
export async function layerXattrs(rootfs: string, after: Snapshot, changes: { path: string; kind: string }[]): Promise<Map<string, Map<string, Buffer>>> {
  const files = changes.filter((c) => c.kind === 'add' && after.get(c.path)?.type === 'file').map((c) => c.path);
  const found = await readXattrs(files.map((p) => path.resolve(rootfs, p)));
  const out = new Map<string, Map<string, Buffer>>();
  const prefix = path.resolve(rootfs) + '/';
  for (const [host, x] of found) if (host.startsWith(prefix)) out.set(host.slice(prefix.length), x);
  return out;
}

/** Of attributes read by relative path, those of the files the layer adds. */
function layerFilesOnly(found: Map<string, Map<string, Buffer>>, after: Snapshot, changes: { path: string; kind: string }[]): Map<string, Map<string, Buffer>> {
  const out = new Map<string, Map<string, Buffer>>();
  for (const c of changes) {
    const x = found.get(c.path);
    if (x && c.kind === 'add' && after.get(c.path)?.type === 'file') out.set(c.path, x);
  }
  return out;
}
