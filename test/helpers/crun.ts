import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { haveTool } from './tools.js';

export interface CrunRun {
  /** The runtime config umoci made from the image's config (process.user, process.cwd, ...). */
  config: { process: { user: { uid: number; gid: number }; cwd: string; args: string[] } } & Record<string, unknown>;
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
}

/**
 * Run an image of a store from the outside, as another tool sees it: umoci unpacks `ref` (the
 * store's full name, `docker.io/library/app:1`) into `bundle`, and crun runs the config it
 * made. This machine's cgroups are hybrid, which crun refuses: it runs in a private mount
 * namespace with a cgroup2 hierarchy, without cgroup settings (nothing here needs limits).
 */
export async function runUnderCrun(store: string, ref: string, bundle: string): Promise<CrunRun> {
  haveTool('umoci');
  haveTool('crun');
  const unpack = await execa('umoci', ['unpack', '--image', `${store}:${ref}`, bundle], { reject: false });
  if (unpack.exitCode !== 0) throw new Error(`umoci unpack ${ref}: ${unpack.stderr}`);
  const cfgPath = path.join(bundle, 'config.json');
  const config = JSON.parse(readFileSync(cfgPath, 'utf8')) as CrunRun['config'] & { linux: { resources?: unknown; cgroupsPath?: unknown; namespaces: { type: string }[] }; process: { terminal?: boolean } };
  const ran = structuredClone(config);
  delete ran.linux.resources;
  delete ran.linux.cgroupsPath;
  ran.linux.namespaces = ran.linux.namespaces.filter((n) => n.type !== 'cgroup');
  ran.process.terminal = false;
  writeFileSync(cfgPath, JSON.stringify(ran));
  const id = `gantry-crun-${process.pid}-${path.basename(bundle)}`;
  const r = await execa('unshare', ['-m', 'sh', '-c', `umount -R /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 none /sys/fs/cgroup && crun --cgroup-manager=disabled run --bundle '${bundle}' ${id}; rc=$?; crun delete -f ${id} >/dev/null 2>&1; exit $rc`], { reject: false });
  return { config, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
}
