/**
 * The cgroups of a RUN's container, where gantry makes them itself (crun on a v1 or mixed host:
 * runtime.ts): `<id>` under gantry's own cgroup in every hierarchy, as runc makes them, so that a
 * RUN sees its own cgroup and no other process's, and gantry's limits hold for it; the devices
 * hierarchy's with the spec's device rules. Removed after the run; those a killed gantry left,
 * by the next.
 */
import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';
import { procStat } from './kill.js';

export interface DeviceRule {
  allow: boolean;
  type?: string;
  major?: number;
  minor?: number;
  access?: string;
}

/**
 * Make a container's cgroups, the device rules written before any process is in them; their
 * directories (the launcher enters each). An error if one cannot be made: a RUN never runs
 * without its device rules.
 */
export async function makeCgroups(id: string, rules: DeviceRule[]): Promise<string[]> {
  const dirs = cgroupDirs(id);
  try {
    for (const dir of dirs) {
      await mkdir(dir);
      // A v1 cpuset cgroup starts with no CPUs and no memory nodes, and takes no process so: its parent's, as runc copies them.
      if (existsSync(path.join(dir, 'cpuset.cpus'))) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) await writeFile(path.join(dir, f), readFileSync(path.join(path.dirname(dir), f), 'utf8').trim() || '\n');
      }
    }
    const devices = dirs.find((d) => /^\/sys\/fs\/cgroup\/([^/]*,)?devices(,[^/]*)?\//.test(d));
    if (!devices) throw new Error('this process is in no devices cgroup');
    for (const r of rules) {
      const line = r.type === undefined || r.type === 'a' ? 'a' : `${r.type} ${r.major ?? '*'}:${r.minor ?? '*'} ${r.access ?? 'rwm'}`;
      await writeFile(path.join(devices, r.allow ? 'devices.allow' : 'devices.deny'), line);
    }
    return dirs;
  } catch (err) {
    removeCgroups(id);
    throw new SandboxError('SANDBOX_RUNTIME', `cannot make the RUN's cgroups (its device rules among them): ${(err as Error).message}`, { cause: err });
  }
}

let own: string[] | undefined;

/** This process's cgroup directory in each hierarchy, read once: gantry does not move. */
function ownCgroups(): string[] {
  if (own) return own;
  own = [];
  let lines: string[];
  try {
    lines = readFileSync('/proc/self/cgroup', 'utf8').split('\n');
  } catch {
    return own;
  }
  const unified = existsSync('/sys/fs/cgroup/unified') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup';
  for (const line of lines) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const controllers = m[1] as string;
    own.push(path.join(controllers === '' ? unified : `/sys/fs/cgroup/${controllers.replace(/^name=/, '')}`, m[2] as string));
  }
  return own;
}

/** The cgroup directories of a container: `<id>` under this process's cgroup in each hierarchy (where runc makes them, and gantry for crun). */
const cgroupDirs = (name: string): string[] => ownCgroups().map((dir) => path.join(dir, name));

/** A container's cgroups removed (those that are there and empty). */
export function removeCgroups(id: string): void {
  for (const dir of cgroupDirs(id)) {
    try {
      rmdirSync(dir);
    } catch {
      // not made, already removed by the runtime, or (never here) still in use
    }
  }
}

let swept = false;

/**
 * Cgroups left by a gantry that was killed while a RUN ran (empty: the RUN died with it). Only
 * those named for a process that is gone are touched, and rmdir never removes a cgroup that still
 * has a process.
 */
export function sweepStaleCgroups(): void {
  if (swept) return;
  swept = true;
  for (const dir of ownCgroups()) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      const m = /^gantry-(\d+)-/.exec(n);
      if (!m || procStat(m[1] as string) !== undefined) continue;
      try {
        rmdirSync(path.join(dir, n));
      } catch {
        // in use or gone
      }
    }
  }
}
