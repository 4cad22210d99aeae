import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import dockerignore from '@balena/dockerignore';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from './conformance.js';
import { haveTool } from './tools.js';

/**
 * BuildKit as the reference: a local Docker engine that one of ../shared/tools' scripts starts:
 * `current` is buildkit-oracle.sh (Docker 28.5, today's BuildKit, in a chroot of Debian's newest
 * suite), `20.10` is dockerd-oracle.sh (Debian 12's docker.io, kept for comparison). Builds go
 * through the Engine API (`POST /build?version=2` is BuildKit) with the context as a tar body,
 * the same request for both engines.
 */
export interface Oracle {
  socket: string;
  /** Build the context with BuildKit; resolves to the image ID. Throws with BuildKit's error. */
  build(context: string, options: { tag: string; buildArgs?: Record<string, string>; target?: string; noCache?: boolean }): Promise<string>;
  /** Empty BuildKit's build cache, cache mounts included (a cache mount keeps what earlier runs wrote). */
  pruneBuildCache(): Promise<void>;
  /** `docker save` of a tag into a file. */
  save(tag: string, file: string): Promise<void>;
  docker(args: string[]): Promise<string>;
}

export type OracleEngine = 'current' | '20.10';

/**
 * Run one of ../shared/tools' oracle scripts (start or `env`) and return what it printed. An engine
 * that is slow to come up on a busy machine (the script waits 60 s for its first answer, then 30 s
 * for one already starting) is waited for again, and restarted once, before the run gives up: a
 * comparison must not fail because dockerd took 61 s to print its first line.
 */
export function runOracleScript(script: string, args: string[] = []): string {
  const run = (a: string[]) => execFileSync('bash', [script, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20 * 60_000 });
  const slow = (e: unknown) => /did not answer|does not answer/.test(String((e as { stderr?: string }).stderr ?? e));
  for (let attempt = 1; ; attempt++) {
    try {
      // The current engine's first start is a debootstrap and an install: minutes.
      return run(args);
    } catch (e) {
      if (!slow(e) || attempt === 5) throw e;
      if (attempt === 4) run(['stop']);
    }
  }
}

/** The environment `buildkit-oracle.sh env` asks for (DOCKER_HOST, the 28.x CLI on PATH), over this process's. */
export function oracleEnv(script: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const m of runOracleScript(script, ['env']).matchAll(/^export (\w+)=(.*)$/gm)) {
    env[m[1] as string] = (m[2] as string).replace(/^["']|["']$/g, '').replace(/\$(\w+)|\$\{(\w+)\}/g, (_, a?: string, b?: string) => process.env[(a ?? b) as string] ?? '');
  }
  return env;
}

/**
 * The environment of Docker 28.5 on the containerd image store (buildkit-oracle.sh with
 * ORACLE_MODERN_STORE=containerd: its own socket), started if it is not running: its CLI and
 * buildx. What multi-platform images and registry caches need; the classic store has neither.
 */
export function containerdOracleEnv(): NodeJS.ProcessEnv {
  const script = path.join(projectRoot, '..', 'shared', 'tools', 'buildkit-oracle.sh');
  if (!existsSync(script)) throw new Error(`${script} is missing: the BuildKit comparison needs it`);
  const before = process.env.ORACLE_MODERN_STORE;
  process.env.ORACLE_MODERN_STORE = 'containerd';
  let env: NodeJS.ProcessEnv;
  try {
    env = oracleEnv(script);
  } finally {
    if (before === undefined) delete process.env.ORACLE_MODERN_STORE;
    else process.env.ORACLE_MODERN_STORE = before;
  }
  if (!env.DOCKER_HOST?.includes('containerd')) throw new Error(`the containerd-store engine gave DOCKER_HOST=${env.DOCKER_HOST ?? ''}`);
  return env;
}

export function startOracle(engine: OracleEngine = '20.10'): Oracle | undefined {
  const name = engine === 'current' ? 'buildkit-oracle.sh' : 'dockerd-oracle.sh';
  const script = path.join(projectRoot, '..', 'shared', 'tools', name);
  if (!existsSync(script)) {
    if (process.env.CI === 'true') throw new Error(`${script} is missing: the BuildKit comparison needs it`);
    return undefined;
  }
  if (!haveTool('curl')) return undefined;
  let out: string;
  try {
    out = runOracleScript(script);
  } catch (e) {
    if (process.env.CI === 'true') throw e;
    return undefined;
  }
  const host = /DOCKER_HOST=(\S+)/.exec(out)?.[1];
  if (!host?.startsWith('unix://')) throw new Error(`${name} printed no unix DOCKER_HOST: ${out}`);
  const socket = host.slice('unix://'.length);
  const docker = async (args: string[]): Promise<string> => (await execa('docker', ['-H', host, ...args])).stdout;
  return {
    socket,
    docker,
    async build(context, options) {
      const q = new URLSearchParams({ version: '2', t: options.tag, networkmode: 'host', rm: '1' });
      if (options.buildArgs) q.set('buildargs', JSON.stringify(options.buildArgs));
      if (options.target) q.set('target', options.target);
      if (options.noCache) q.set('nocache', '1');
      // The docker CLI applies .dockerignore before it sends the context; do the same here.
      const list = contextFiles(context);
      // The tar streams into curl, as the docker CLI streams it: a context of any size.
      const tarred = execa('tar', ['-cf', '-', '--no-recursion', '-C', context, '-T', '-'], { input: list.join('\n'), buffer: false });
      const curl = execa('curl', ['-sS', '--unix-socket', socket, '-H', 'Content-Type: application/x-tar', '--data-binary', '@-', `http://docker/v1.41/build?${q}`], { stdin: 'pipe' });
      tarred.stdout?.pipe(curl.stdin as NodeJS.WritableStream);
      const [{ stdout }] = await Promise.all([curl, tarred]);
      let id = '';
      for (const line of stdout.split('\n')) {
        if (!line.trim()) continue;
        const msg = JSON.parse(line) as { error?: string; aux?: { ID?: string }; id?: string };
        if (msg.error) throw new Error(`BuildKit: ${msg.error}`);
        if (msg.id === 'moby.image.id' && msg.aux?.ID) id = msg.aux.ID;
      }
      if (!id) throw new Error(`BuildKit gave no image ID: ${stdout.slice(-500)}`);
      return id;
    },
    async pruneBuildCache() {
      await execa('curl', ['-sS', '-f', '-X', 'POST', '--unix-socket', socket, 'http://docker/v1.41/build/prune?all=1']);
    },
    async save(tag, file) {
      await docker(['save', '-o', file, tag]);
    },
  };
}

/** The context's paths the docker CLI would send: all but what .dockerignore excludes. */
function contextFiles(context: string): string[] {
  const file = path.join(context, '.dockerignore');
  const make = dockerignore as unknown as (o: object) => { add(p: string[]): { ignores(p: string): boolean } };
  const ig = make({ ignorecase: false }).add(existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []);
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(path.join(context, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      const keep = r === 'Dockerfile' || r === '.dockerignore' || !ig.ignores(r);
      if (keep) out.push(r);
      if (e.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}
