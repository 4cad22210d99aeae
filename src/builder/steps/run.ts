/**
 * RUN: its cache inputs (the content of what its bind mounts read) and its run in the sandbox,
 * with its mounts made for it (bind, cache held by its sharing, tmpfs, secret, ssh) and taken
 * down after it.
 */
import { chmod, chown, cp, lstat, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OptionError, SandboxError } from '../../errors/index.js';
import type { BuildPlan } from '../../plan/planner.js';
import { resolveInRoot } from '../../rootfs/resolve.js';
import { chooseIsolation, probeIsolation, runInSandbox, type ProgramPlace, type SandboxMount } from '../../sandbox/run.js';
import { forwardAgent } from '../../sandbox/ssh-agent.js';
import { holdCacheMount } from '../cache-mount.js';
import { checksumSources, resolveSources, type IgnoreFilter } from '../context.js';
import { BuildError, stepWhere } from '../errors.js';
import { runCommand } from '../run-command.js';
import { layersOf, sha } from '../state.js';
import type { BuildSettings, ExecuteOptions, ProgressEvent } from '../types.js';
import { resolveUser } from '../users.js';
import type { FsStep, RunStep, StepEnv } from './step.js';
import { settings } from '../../support/settings.js';
import { emulationFor } from '../../sandbox/emulation.js';
import { hostPlatform } from '../../oci/platform.js';

/** `binaries`: the platform of the programs in the stage's root filesystem (its base's), which decides how they run. */
export function runStepOf(step: RunStep, ctx: StepEnv, binaries: string): FsStep {
  return {
    // Bind mounts are inputs of the RUN: their content is in the key (cache mounts and secrets are not).
    async inputs() {
      let extra = '';
      for (const m of step.mounts) {
        if (m.type !== 'bind') continue;
        if (m.from !== undefined) {
          extra += `${layersOf(ctx.stateOfFrom(m.from, ctx.platformOf(step.stage)))}:${m.source ?? '/'}`;
          continue;
        }
        const src = await sourceRoot(ctx, m.from, ctx.platformOf(step.stage));
        const items = await resolveSources(src.root, [m.source ?? '/'], src.ignore, stepWhere(step), src.context);
        extra += await checksumSources(items, src.ignore, src.context ? ctx.contextStats : undefined);
      }
      return extra;
    },
    async exec(rootfs) {
      // Binaries of another architecture run through a registered emulator, or not at all.
      const emulation = emulationFor(binaries, hostPlatform().architecture);
      await ctx.noticeIsolation();
      // The run's work directory is a temp entry of the store, so a killed build's is cleaned by the next command.
      const prepared = await prepareMounts(ctx, step);
      try {
        await runStep(step, rootfs, ctx.options, ctx.emit, prepared, ctx.store.tempPath('run'), (key) => ({ file: ctx.store.layout.seccompProgramPath(key), temp: ctx.store.tempPath('seccomp') }));
      } catch (err) {
        // Tried without seeing an emulator, and the kernel had none: said with how to register one.
        if (emulation.type === 'unseen' && err instanceof Error && /exec format error/i.test(err.message)) throw new SandboxError('SANDBOX_EMULATOR', `${err.message}: ${emulation.hint}`, { cause: err });
        throw err;
      } finally {
        for (const done of prepared.cleanup) await done();
      }
      return { capsKnownNone: false };
    },
  };
}

/** What a mount reads: the build context (no from=), or the rootfs of the stage or image from= names. */
async function sourceRoot(ctx: StepEnv, from: string | undefined, platform: string): Promise<{ root: string; ignore: IgnoreFilter; context: boolean }> {
  if (from === undefined) return { root: ctx.options.context, ignore: ctx.ignore, context: true };
  return { root: await ctx.ws.materialise(ctx.stateOfFrom(from, platform)), ignore: () => false, context: false };
}

  /**
   * A cache mount's directory, held for the RUN by its `sharing`. As in BuildKit, a cache is
   * named by its id and, when it has a base (uid, gid or mode given, or from=), by that base
   * too: the same id with another owner or source is another cache. `heldByRun` has the
   * caches this RUN holds already (the same cache mounted twice is held once).
   */
async function holdCache(
  ctx: StepEnv,
  step: RunStep,
  m: RunStep['mounts'][number],
  target: string,
  heldByRun: Map<string, string>,
): Promise<{ source: string; release: () => Promise<void> }> {
  const { options, store } = ctx;
    const id = m.id ?? target;
    // A directory inside a cache that other builds' RUNs write at the same time could be
    // swapped for a link between resolving it and mounting it: refused (docs/differences.md).
    if (m.from === undefined && m.source !== undefined) {
      throw new BuildError('BUILD_MOUNT', `${stepWhere(step)}: source= on a cache mount without from= is not supported (mount the cache and use the directory inside it)`);
    }
    const hasBase = m.uid !== undefined || m.gid !== undefined || m.mode !== undefined || m.from !== undefined;
    const base = hasBase
      ? JSON.stringify([m.uid ?? 0, m.gid ?? 0, m.mode ?? 0o755, m.from !== undefined ? ctx.stateOfFrom(m.from, ctx.platformOf(step.stage)).key : '', m.from !== undefined ? (m.source ?? '/') : ''])
      : '';
    const name = sha(hasBase ? `${id}\0${base}` : id);
    // --no-cache: a new cache for this build, the kept one neither read nor written (Docker 28.5).
    const already = heldByRun.get(name);
    if (already !== undefined) return { source: already, release: async () => undefined };
    let shared: string;
    if (!options.noCache) shared = path.join(await store.privateDir('cache-mounts'), name);
    else {
      // One per name, whichever RUN asks first (stages side by side ask at once).
      let made = ctx.noCacheMounts.get(name);
      if (!made) ctx.noCacheMounts.set(name, (made = ctx.ws.newTemp().then((t) => path.join(t, 'cache'))));
      shared = await made;
    }
    const hold = await holdCacheMount(shared, options.noCache ? 'shared' : (m.sharing ?? 'shared'), {
      onWait: () => ctx.emit({ type: 'output', id: step.id, stream: 'stderr', text: `waiting for cache mount ${id}: another RUN holds it (sharing=locked)\n` }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
    try {
      // sharing=private while another RUN holds the cache: a new one of this RUN's own.
      const dir = hold.dir ?? path.join(await ctx.ws.newTemp(), 'cache');
      if (!(await lstat(dir).catch(() => undefined))) {
        // Made whole in a temp entry, then renamed into place: a RUN of a stage running beside
        // this one (or of another build) that makes the same cache at once finds it whole or
        // not at all; the one that comes second uses the first's.
        const made = path.join(await ctx.ws.newTemp(), 'cache');
        await mkdir(made);
        await chmod(made, m.mode ?? 0o755); // the mode asked for, whatever the umask
        if (m.from !== undefined) {
          const src = await sourceRoot(ctx, m.from, ctx.platformOf(step.stage));
          const { host } = await resolveInRoot(src.root, m.source ?? '/');
          await cp(host, made, { recursive: true, verbatimSymlinks: true });
        }
        await chown(made, m.uid ?? 0, m.gid ?? 0);
        // Under the store's lock: rename(2) would replace an empty directory another RUN is using.
        await ctx.store.withLock(async () => {
          if (!(await lstat(dir).catch(() => undefined))) await rename(made, dir);
        });
      }
      heldByRun.set(name, dir);
      return { source: dir, release: hold.release };
    } catch (err) {
      await hold.release();
      throw err;
    }
}
async function prepareMounts(ctx: StepEnv, step: RunStep): Promise<{ mounts: SandboxMount[]; env: string[]; cleanup: (() => Promise<void>)[] }> {
  const { options } = ctx;
    const mounts: SandboxMount[] = [];
    const env: string[] = [];
    const cleanup: (() => Promise<void>)[] = [];
    let sshMounts = 0;
    const cachesHeld = new Map<string, string>();
    try {
      await addMounts();
    } catch (err) {
      for (const done of cleanup) await done();
      throw err;
    }
    return { mounts, env, cleanup };

    async function addMounts(): Promise<void> {
      for (const m of step.mounts) {
        const target = m.target ? path.posix.resolve(step.state.workdir, m.target) : undefined;
        if (m.type === 'tmpfs') {
          mounts.push({ type: 'tmpfs', target: target as string, ...(m.size ? { size: m.size } : {}) });
        } else if (m.type === 'bind') {
          const src = await sourceRoot(ctx, m.from, ctx.platformOf(step.stage));
          const { host } = await resolveInRoot(src.root, m.source ?? '/');
          if (!(await lstat(host).catch(() => undefined))) throw new BuildError('BUILD_MOUNT', `${stepWhere(step)}: bind mount source "${m.source ?? '/'}" not found`);
          let source = host;
          if (!m.readOnly) {
            // Writes to a read-write bind mount are thrown away, never written back to the source.
            source = path.join(await ctx.ws.newTemp(), 'bind');
            await cp(host, source, { recursive: true, verbatimSymlinks: true, preserveTimestamps: true });
          }
          mounts.push({ type: 'bind', source, target: target as string, readOnly: m.readOnly });
        } else if (m.type === 'cache') {
          // Ids are keys (hashed into the store), never paths; one that reads as a climbing path
          // is refused all the same, so a Dockerfile cannot mean to reach a directory by it.
          if (m.id !== undefined && m.id.split('/').includes('..')) {
            throw new BuildError('BUILD_MOUNT', `${stepWhere(step)}: cache mount id "${m.id}" has a ".." component`);
          }
          const held = await holdCache(ctx, step, m, target as string, cachesHeld);
          cleanup.push(held.release);
          mounts.push({ type: 'bind', source: held.source, target: target as string, readOnly: m.readOnly });
        } else if (m.type === 'secret') {
          const file = options.secrets?.[m.id as string];
          if (file === undefined) {
            if (m.required) throw new BuildError('BUILD_SECRET', `${stepWhere(step)}: secret "${m.id}" is required but was not given (--secret id=${m.id},src=FILE)`);
            continue;
          }
          const bytes = await secretBytes(m.id as string, file);
          if (m.env) env.push(`${m.env}=${bytes.toString('utf8').replace(/\n$/, '')}`);
          if (target) {
            // A copy in the store's private work area with the mount's owner and mode (BuildKit:
            // 0:0 and 0400 unless given), not the caller's file with the caller's.
            const copy = path.join(await ctx.ws.newTemp(), 'secret');
            await writeFile(copy, bytes, { mode: 0o400, flag: 'wx' });
            await chown(copy, m.uid ?? 0, m.gid ?? 0);
            await chmod(copy, m.mode ?? 0o400);
            mounts.push({ type: 'bind', source: copy, target, readOnly: true });
          }
        } else if (m.type === 'ssh') {
          // As BuildKit: /run/buildkit/ssh_agent.<n> unless a target is given, SSH_AUTH_SOCK
          // names the first (unless the RUN's environment has one), an agent not given is
          // skipped unless the mount is required.
          const at = target ?? `/run/buildkit/ssh_agent.${sshMounts}`;
          sshMounts++;
          const id = m.id ?? 'default';
          const agent = options.ssh?.[id];
          if (agent === undefined) {
            if (m.required) throw new BuildError('BUILD_SSH', `${stepWhere(step)}: ssh agent "${id}" is required but was not given (--ssh ${id === 'default' ? 'default' : `${id}=SOCKET`})`);
            continue;
          }
          const forward = await forwardAgent(agent, path.join(await ctx.ws.newTemp(), 'agent.sock'), { uid: m.uid ?? 0, gid: m.gid ?? 0, mode: m.mode ?? 0o600 });
          cleanup.push(() => forward.close());
          mounts.push({ type: 'bind', source: forward.path, target: at, readOnly: true });
          if (![...env, ...step.runEnv].some((e) => e.startsWith('SSH_AUTH_SOCK='))) env.push(`SSH_AUTH_SOCK=${at}`);
        } else {
          throw new BuildError('BUILD_UNSUPPORTED', `${stepWhere(step)}: RUN --mount=type=${m.type} is not supported yet`);
        }
      }
    }
}

async function runStep(
  step: RunStep,
  rootfs: string,
  options: ExecuteOptions,
  emit: (e: ProgressEvent) => void,
  extra: { mounts: SandboxMount[]; env: string[] },
  workDir: string,
  keepProgram: (key: string) => ProgramPlace,
): Promise<void> {
  const { argv, pipes } = runCommand(step);
  if (argv.length === 0) throw new BuildError('BUILD_RUN', `${stepWhere(step)}: nothing to run`);
  const ids = await resolveUser(rootfs, step.state.user || '0', 'run');
  const tail: string[] = [];
  const keep = (s: string) => {
    tail.push(...s.split('\n'));
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  const r = await runInSandbox({
    rootfs,
    argv,
    ...(pipes.length > 0 ? { pipes } : {}),
    env: [...step.runEnv, ...step.proxyEnv, ...extra.env],
    mounts: extra.mounts,
    cwd: step.state.workdir,
    uid: ids.uid,
    gid: ids.gid,
    groups: ids.groups,
    network: runNetwork(step, options),
    // BuildKit's build argument for the RUN's host name.
    ...(options.buildArgs?.BUILDKIT_SANDBOX_HOSTNAME ? { hostname: options.buildArgs.BUILDKIT_SANDBOX_HOSTNAME } : {}),
    ...(options.isolation ? { isolation: options.isolation } : {}),
    ...(options.seccomp ? { seccomp: options.seccomp } : {}),
    ...(options.extraHosts?.length ? { extraHosts: options.extraHosts } : {}),
    ...(options.shmSize !== undefined ? { shmSize: options.shmSize } : {}),
    ...(options.ulimits?.length ? { ulimits: options.ulimits } : {}),
    workDir,
    keepProgram,
    ...(options.signal ? { signal: options.signal } : {}),
    onStdout: (d) => {
      keep(d.toString());
      emit({ type: 'output', id: step.id, stream: 'stdout', text: d.toString() });
    },
    onStderr: (d) => {
      keep(d.toString());
      emit({ type: 'output', id: step.id, stream: 'stderr', text: d.toString() });
    },
  });
  if (r.exitCode !== 0) {
    const last = tail.filter((l) => l !== '').slice(-10).map((l) => `  ${l}`).join('\n');
    throw new BuildError(
      'BUILD_RUN_FAILED',
      `${step.location.file}:${step.location.line}: step ${step.position} RUN ${argv.slice(step.command.form === 'shell' ? step.state.shell.length : 0).join(' ')} failed with exit code ${r.exitCode}${last ? `\n${last}` : ''}`,
    );
  }
}

/** The network a RUN gets: its own `--network`, else the build's. */
export function runNetwork(step: RunStep, options: BuildSettings): 'default' | 'none' | 'host' {
  return step.network !== 'default' ? step.network : (options.network ?? 'default');
}

/**
 * The entitlements the plan's RUNs need, checked before any step runs: host networking only with
 * `--allow network.host`; `--security=insecure` never (BuildKit runs it with every capability and
 * no seccomp under the security.insecure entitlement, which gantry does not grant, and it is
 * never run sandboxed as if it were).
 */
export function checkEntitlements(plan: BuildPlan, options: BuildSettings): void {
  for (const step of plan.stages.flatMap((st) => st.steps)) {
    if (step.op !== 'run') continue;
    if (step.security === 'insecure') {
      throw new BuildError('BUILD_ENTITLEMENT', `${stepWhere(step)}: RUN --security=insecure needs the security.insecure entitlement, which gantry does not grant`);
    }
    if (runNetwork(step, options) === 'host' && !(options.allow ?? []).includes('network.host')) {
      throw new BuildError(
        'BUILD_ENTITLEMENT',
        `${stepWhere(step)}: ${step.network === 'host' ? 'RUN --network=host' : '--network host'} needs the network.host entitlement: pass --allow network.host to let RUN reach the host's network`,
      );
    }
  }
}

/** A notice of the isolation RUN gets, once per build, when it is the chroot one (weaker than a container). */
export async function noticeIsolation(options: ExecuteOptions, emit: (e: ProgressEvent) => void): Promise<void> {
  const mode = await chooseIsolation(options.isolation);
  if (mode !== 'chroot') return;
  const why = (options.isolation ?? 'auto') === 'auto' ? ` (${(await probeIsolation()).reason})` : '';
  emit({ type: 'notice', text: `RUN uses the chroot isolation${why}: no namespaces of its own, weaker than a container (docs/security.md)` });
}

/** A secret's value: its file's bytes, or its environment variable's (never on a command line). */
async function secretBytes(id: string, source: string | { env: string }): Promise<Buffer> {
  if (typeof source === 'string') {
    return readFile(source).catch((err: NodeJS.ErrnoException) => {
      throw new OptionError('SECRET_INVALID', `secret "${id}": cannot read ${source}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    });
  }
  const value = settings.variable(source.env);
  if (value === undefined) throw new OptionError('SECRET_INVALID', `secret "${id}": the environment variable ${source.env} is not set`);
  return Buffer.from(value);
}

