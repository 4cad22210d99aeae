/**
 * COPY and ADD: the sources (the build context, a named context, another stage's or an image's
 * rootfs, here-documents, URLs, git checkouts) resolved and summed for the cache key, then
 * copied (archives unpacked, --chown, --chmod, --parents, --exclude) onto the rootfs.
 */
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { GantryError } from '../../errors/index.js';
import { parseChmod } from '../../dockerfile/chmod.js';
import { gitOptions, parseGitRef } from '../../dockerfile/gitref.js';
import { heredocRefName } from '../../plan/planner.js';
import { applyLayer } from '../../rootfs/apply.js';
import { decompress } from '../../tar/decompress.js';
import { checksumSources, resolveSources, type IgnoreFilter, type SourceItem } from '../context.js';
import { copyInto, ensureDir, type CopyOptions } from '../copy.js';
import { stepWhere } from '../errors.js';
import { ignoreMatcher } from '../ignore.js';
import { cloneSource, downloadSource, inlineSources, isArchive, isUrl, openFile } from '../sources.js';
import { layersOf, type StageState } from '../state.js';
import { resolveUser } from '../users.js';
import type { CopyStep, FsStep, StepEnv } from './step.js';

/** COPY or ADD `step`; `fromState` is the stage or image it copies from (none: a context). */
export function copyStepOf(step: CopyStep, fromState: StageState | undefined, ctx: StepEnv): FsStep {
  let sourceRoot: string | undefined;
  let items: SourceItem[] | undefined;
  let sourceIgnore: IgnoreFilter = () => false;
  const fromContext = step.source.type === 'context' && step.source.name === undefined;

  const collectSources = async (): Promise<void> => {
    if (step.source.type === 'context') {
      // The build context, or a named context's directory (with its own .dockerignore).
      const dir = step.source.name !== undefined ? ctx.namedDir(step.source.name) : undefined;
      sourceRoot = dir?.root ?? ctx.options.context;
      sourceIgnore = dir?.ignore ?? ctx.ignore;
    } else {
      sourceRoot = await ctx.ws.materialise(fromState as StageState);
    }
    // --exclude leaves out what is under a source (its patterns start there), never a source named itself.
    if (step.exclude.length > 0) {
      const excluded = await excludeFilter(step.exclude);
      const base = sourceIgnore;
      sourceIgnore = (rel, item) => base(rel) || (item !== undefined && excluded(item === '' ? rel : rel.slice(item.length + 1)));
    }
    // A scratch directory for here-documents and downloads, made only when one is needed.
    let special: Promise<string> | undefined;
    const scratch = async (sub: string): Promise<string> => path.join(await (special ??= ctx.ws.newTemp()), sub);
    const inline = step.inline.length > 0 ? await inlineSources(await scratch('inline'), step.inline) : new Map<string, SourceItem>();
    items = [];
    for (const src of step.sources) {
      const docName = heredocRefName(src, new Set(inline.keys()));
      const doc = docName !== undefined ? inline.get(docName) : undefined;
      const git = step.kind === 'ADD' && !doc ? parseGitRef(src) : undefined;
      if (doc) items.push(doc);
      else if (git) items.push(await cloneSource(await scratch('git'), git, gitOptions(git, step), stepWhere(step)));
      else if (step.kind === 'ADD' && isUrl(src)) items.push(await downloadSource(await scratch('url'), src, step.checksum, stepWhere(step)));
      else {
        const found = await resolveSources(sourceRoot, [src], sourceIgnore, stepWhere(step), step.source.type === 'context', step.parents);
        // --parents: each keeps its path from the source root, or from the last `./` of its source (the pivot).
        if (step.parents) for (const item of found) item.parentPath = parentPathOf(src, item.rel);
        items.push(...found);
      }
    }
  };

  /**
   * For a COPY from a stage whose last step was a RUN on an overlay: the capabilities of its
   * files in the upper directory were read for that step's layer, so getfattr only runs for
   * the sources the lower directory supplies (in a build stage's output, mostly none).
   */
  const knownCaps = async (s: StageState, root: string | undefined): Promise<Pick<CopyOptions, 'knownXattrs'>> => {
    const upper = root !== undefined && s.rootfs === root ? ctx.ws.upperOf(root) : undefined;
    const caps = upper ? await s.upperCaps?.catch(() => undefined) : undefined;
    if (!upper || !caps) return {};
    const prefix = `${root}/`;
    return {
      knownXattrs: (src) => {
        if (!src.startsWith(prefix)) return undefined;
        const rel = src.slice(prefix.length);
        // A regular file in the upper directory is the one the merged view shows.
        return lstatSync(path.join(upper, rel), { throwIfNoEntry: false })?.isFile() ? (caps.get(rel) ?? new Map()) : undefined;
      },
    };
  };

  /**
   * Sources collected from another stage name paths under where its rootfs was mounted then; a
   * mount of the stage being built may have sealed that one since (a stage FROM the one it
   * copies from): then they are collected again, from its rootfs mounted anew.
   */
  const sourcesCurrent = (): boolean => items !== undefined && (fromState === undefined || fromState.rootfs === sourceRoot);

  return {
    async inputs() {
      // From a stage or an image: its layers (content-addressed), no unpacking for the key.
      if (fromState) return layersOf(fromState);
      await collectSources();
      return checksumSources(items ?? [], sourceIgnore, fromContext ? ctx.contextStats : undefined, { owners: step.source.type !== 'context' });
    },
    // From a stage: the files it copies, when the key by its layers misses (the stage ran again).
    ...(step.source.type === 'stage'
      ? {
          async contentInputs() {
            if (!sourcesCurrent()) await collectSources();
            return `content:${await checksumSources(items ?? [], sourceIgnore, undefined, { tree: true })}`;
          },
        }
      : {}),
    async exec(rootfs) {
      if (!sourcesCurrent()) await collectSources();
      const owner = step.chown !== undefined ? await resolveUser(rootfs, step.chown) : step.source.type === 'context' ? { uid: 0, gid: 0 } : undefined;
      const mode = step.chmod !== undefined ? parseChmod(step.chmod) : undefined;
      const dest = path.posix.resolve(step.state.workdir, step.dest) + (step.dest.endsWith('/') || step.dest.endsWith('/.') ? '/' : '');
      // ADD unpacks local archives unless --unpack=false, and one from a URL with --unpack=true (BuildKit 28).
      const archives = step.kind === 'ADD' && step.unpack !== false ? await archivesAmong(items ?? [], step.unpack === true) : new Set<string>();
      for (const item of items ?? []) {
        if (!archives.has(item.host)) continue;
        // Made with --chown's owner where missing, as BuildKit's unpack makes it.
        const target = await ensureDir(rootfs, dest.endsWith('/') ? dest : dest + '/', step.chown !== undefined ? owner : undefined);
        const what = `${stepWhere(step)}: ${item.rel}`;
        const { stream } = await decompress(openFile(item.host), what);
        // --chown owns what the archive holds (BuildKit); --chmod does not apply to it.
        await applyLayer(target.host, stream, { what, ...(step.chown !== undefined && owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}) });
      }
      const plain = (items ?? []).filter((i) => !archives.has(i.host));
      // A copy of files without capabilities makes a layer without them: no need to read them back.
      let capsKnownNone = archives.size === 0;
      const copyOptions: CopyOptions = {
        ...(owner ? { owner: { uid: owner.uid, gid: owner.gid } } : {}),
        ...(mode !== undefined ? { mode } : {}),
        ignore: sourceIgnore,
        what: stepWhere(step),
        ...(fromContext && ctx.contextStats ? { stats: ctx.contextStats } : {}),
        ...(fromState ? await knownCaps(fromState, sourceRoot) : {}),
      };
      // With --parents each source goes to its own place under the destination (a directory).
      const groups = step.parents
        ? plain.map((item) => ({ items: [item], to: path.posix.join(dest, item.parentPath ?? item.rel) + (item.isDir ? '/' : '') }))
        : plain.length > 0 ? [{ items: plain, to: dest }] : [];
      for (const group of groups) capsKnownNone &&= (await copyInto(rootfs, group.items, group.to, copyOptions)).capabilities === 0;
      // --parents makes its destination even when its patterns matched nothing (BuildKit).
      if (step.parents && groups.length === 0) await ensureDir(rootfs, dest.endsWith('/') ? dest : `${dest}/`, step.chown !== undefined ? owner : undefined);
      return { capsKnownNone };
    },
  };
}

/**
 * Where `COPY --parents` puts a source found at `rel` (relative to the source root) from the
 * source text `src`: its whole path, or, when `src` has a `/./` pivot, what follows the first
 * one (BuildKit: `/a/./b/./c` keeps `b/c`; the part before may hold wildcards, `/a/b*` then
 * stands for as many components). A `.` at either end is no pivot.
 */
function parentPathOf(src: string, rel: string): string {
  const parts = src.split('/').filter((p) => p !== '');
  const pivot = parts.findIndex((p, i) => p === '.' && i > 0 && i < parts.length - 1);
  if (pivot < 0) return rel;
  const before = parts.slice(0, pivot).filter((p) => p !== '.');
  // How many components the part before the pivot stands for must be plain to count.
  if (before.some((p) => p === '..' || p === '**')) {
    throw new GantryError('COPY_PARENTS', `COPY --parents ${src}: ".." or "**" before the ./ pivot is not supported`);
  }
  const skip = before.length;
  const relParts = rel.split('/');
  return relParts.length > skip ? relParts.slice(skip).join('/') : rel;
}

/** `--exclude` patterns, with .dockerignore's matching rules, for a path relative to the source it is under. */
async function excludeFilter(patterns: string[]): Promise<(rel: string) => boolean> {
  const ignores = ignoreMatcher(patterns);
  return (rel: string) => rel !== '' && ignores(rel);
}

/** Local files (not from a URL or a heredoc) among ADD's sources that are tar archives. */
async function archivesAmong(items: { host: string; isDir: boolean; origin?: string }[], downloaded: boolean): Promise<Set<string>> {
  const out = new Set<string>();
  for (const item of items) {
    if (item.isDir || item.origin === 'inline' || (item.origin === 'url' && !downloaded)) continue;
    if (await isArchive(item.host).catch(() => false)) out.add(item.host);
  }
  return out;
}

