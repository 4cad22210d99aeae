/**
 * A build's rootfs as an overlay mount: the base image's layers are extracted once into a
 * directory the store keeps (read-only from then on, the lower layer), and each build mounts
 * a fresh upper directory on top. A build then starts without unpacking its base, as BuildKit
 * and buildah start from their stored snapshots.
 *
 * Mounting needs root and overlayfs; where either is missing (a rootless build, a store on a
 * file system overlayfs cannot use as upper, a path with characters the mount options cannot
 * carry), `mountOverlay` says so once and the caller unpacks into a plain directory instead.
 * `GANTRY_OVERLAY=0` turns overlays off.
 *
 * The mount lives in the host's mount namespace: it is unmounted when the build ends, and a
 * process killed before that leaves it for the next gantry process, which unmounts it before
 * removing the dead process's temp entry (`unmountUnder`).
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { isKernelRefusal, kernel, MNT_DETACH } from './kernel.js';
import { execFileAsync } from '../support/process.js';
import { settings } from '../support/settings.js';

const MOUNT = ['/usr/bin/mount', '/bin/mount'];
const UMOUNT = ['/usr/bin/umount', '/bin/umount'];

let usable: boolean | undefined;
let volatileWorks: boolean | undefined;
/** Overlays are asked for and may be mounted here: read once per process. */
let wanted: boolean | undefined;

export function overlayWanted(): boolean {
  // Not in a user namespace: an overlay mounted there has no redirect_dir, and a RUN's directory
  // renames fail with EXDEV (dpkg's do): rootless builds use plain trees.
  wanted ??= settings.overlay && process.getuid?.() === 0 && !settings.inUserNamespace;
  return wanted && usable !== false;
}

/**
 * Mount `lower` (read-only; several: the topmost first) under a new upper directory in `dir`;
 * returns the merged directory, or undefined when overlays cannot be used here (then never
 * tried again). Lower directories may be relative to `cwd` (where mount runs): the options
 * of one mount must fit in a page, and a stack of snapshots named by absolute paths would not.
 */
export async function mountOverlay(lower: string | readonly string[], dir: string, cwd?: string): Promise<string | undefined> {
  if (!overlayWanted()) return undefined;
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  const merged = path.join(dir, 'merged');
  const lowers = typeof lower === 'string' ? [lower] : lower;
  if ([...lowers, upper, work].some((p) => /[,:\\\s]/.test(p))) return undefined;
  const options = `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`;
  if (options.length > 3900) throw new Error(`overlay options too long (${options.length} bytes, ${lowers.length} lower directories)`);
  await mkdir(upper, { mode: 0o755 });
  await mkdir(work, { mode: 0o700 });
  await mkdir(merged, { mode: 0o755 });
  // `volatile` (Linux 5.10+): the overlay skips every sync of the upper directory. A build's
  // upper directory is thrown away when the build ends, or by the next command after a crash,
  // or kept as a snapshot that is used only in the boot that made it (workspace/snapshots.ts),
  // so its durability is worth nothing; without the option, unmounting syncs the whole upper
  // file system (70 ms and more after a COPY of a few thousand files).
  const k = kernel();
  const withTool = (opts: string): Promise<unknown> => execFileAsync(tool(MOUNT), ['-t', 'overlay', 'overlay', '-o', opts, merged], cwd ? { cwd } : {});
  // The helper's failure (not the kernel's refusal) is no answer: the tool is asked instead,
  // unless the helper mounted it before it failed.
  const mount = (opts: string): Promise<unknown> =>
    k
      ? k.mount('overlay', merged, 'overlay', opts, cwd).catch((err: unknown) => (isKernelRefusal(err) ? Promise.reject(err) : mountPoints().includes(merged) ? undefined : withTool(opts)))
      : withTool(opts);
  if (volatileWorks !== false) {
    try {
      await mount(`${options},volatile`);
      volatileWorks = usable = true;
      return merged;
    } catch (err) {
      // Once overlays are known to work, a stack that fails to mount is this stack's fault.
      if (usable === true && volatileWorks === true) throw new Error(`mounting an overlay of ${lowers.length} lower directories: ${(err as Error).message}`);
      volatileWorks = false;
    }
  }
  try {
    await mount(options);
    usable = true;
    return merged;
  } catch (err) {
    if (usable === true) throw new Error(`mounting an overlay of ${lowers.length} lower directories: ${(err as Error).message}`);
    usable = false;
    return undefined;
  }
}

/** Unmount `dirs` (without the kernel helper: one umount run for all of them). */
export async function unmount(...dirs: string[]): Promise<void> {
  if (dirs.length === 0) return;
  const k = kernel();
  if (k) {
    const left: string[] = [];
    for (const d of dirs) {
      await k.umount(d).catch(async (err: unknown) => {
        // busy (a process still has it open): detached, the kernel frees it when released
        if (isKernelRefusal(err)) await k.umount(d, MNT_DETACH).catch(() => undefined);
        else left.push(d); // the helper failed: the tool below
      });
    }
    if (left.length === 0) return;
    dirs = left;
  }
  try {
    await execFileAsync(tool(UMOUNT), dirs);
  } catch {
    // busy (a process still has it open): detach it now, the kernel frees it when released;
    // those already unmounted above just fail again here
    await execFileAsync(tool(UMOUNT), ['-l', ...dirs]).catch(() => undefined);
  }
}

/** The mount points of this process's mount namespace. */
function mountPoints(): string[] {
  let table: string;
  try {
    table = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return table.split('\n').map((l) => unescapeMount(l.split(' ')[4] ?? ''));
}

/** Detach every mount at or below `dir` (deepest first): what a killed build left mounted. */
export async function unmountUnder(dir: string): Promise<void> {
  const points = mountPoints()
    .filter((m) => m === dir || m.startsWith(dir + '/'))
    .sort((a, b) => b.length - a.length);
  const k = kernel();
  const withTool = (m: string): Promise<unknown> => execFileAsync(tool(UMOUNT), ['-l', m]).catch(() => undefined);
  for (const m of points) await (k ? k.umount(m, MNT_DETACH).catch((err: unknown) => (isKernelRefusal(err) ? undefined : withTool(m))) : withTool(m));
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
}

function tool(candidates: string[]): string {
  return candidates.find((c) => existsSync(c)) ?? (candidates[0] as string);
}
