/**
 * npm run bench: gantry side by side with BuildKit (and buildah when installed) on the same
 * workloads, same machine, same run. Prints the median of interleaved runs per phase, the
 * ratios, and gantry's peak memory (its VmHWM, which it reports as it ends).
 *
 *   npm run bench -- [--runs N] [--workloads app,bigrun,multistage,apt,bigstage,ctx50k,stages2,runs30]
 *                    [--tools gantry,buildkit,buildah] [--buildkit current,20.10] [--growth N] [--keep-node-ca] [--no-settle]
 *   npm run bench -- --fleet [--workloads multistage] [--runs N]
 *   npm run bench -- --platforms [--runs N]
 *
 * --fleet: a fleet's second runner instead of the table below (bench/fleet.ts): host B's build
 * of one workload with --cache-from a registry cache host A exported, and with none, gantry
 * against Docker 28.5 on the containerd image store, with the bytes each pulled.
 *
 * --platforms: a two-platform build (linux/amd64,linux/arm64; arm64's RUN under qemu) against
 * Docker 28.5 on the containerd image store, cold and warm (bench/platforms.ts).
 *
 * --growth N: after the table, N more one-file edits of the first workload built by gantry, the
 * store's size (du) said every ten: what 30 edit builds leave is bounded by the store budget
 * (GANTRY_STORE_BUDGET, default 10% of the file system).
 *
 * BuildKit is current BuildKit (Docker 28.5, ../shared/tools/buildkit-oracle.sh); --buildkit
 * current,20.10 adds the older engine of dockerd-oracle.sh as a column of its own (the ratios
 * are gantry's against each).
 *
 * Workloads (base images come from a loopback registry and are local to every tool before
 * the first timed build):
 *   app         busybox base, a 5,000-file / 70 MB context, COPY of it twice, two RUNs
 *   bigrun      Debian base, RUN writing ~150 MB (cp -a /usr plus 40 MB of random bytes), then
 *               a RUN deleting part of it; one-file edit = a COPY'd file before the RUNs
 *   multistage  a Debian stage writing 2,000 files and a tar, an unused stage, COPY --from into busybox
 *   apt         a project of real shape: Debian, apt-get install python3 (from the Debian mirror),
 *               the app's 300 source files, a compile step, a final stage COPY --from; edit = one source file
 *   bigstage    a stage FROM a 300 MB earlier stage: WORKDIR, COPY of one file, a RUN; edit = that file
 *   ctx50k      a 50,000-file (about 190 MB) context COPY'd whole; edit = one file of it. The
 *               limit is printed beside it: `cp -a` of the same tree on the same disk
 *   stages2     two independent Debian stages (1,500 files and their sums each), a final stage
 *               COPY --from both; edit = a file both stages COPY
 *   runs30      30 one-line RUNs on busybox; edit = a file COPY'd before the 16th
 * Phases: cold (--no-cache), warm (nothing changed), edit (one context file changed); and for
 * bigrun, push: the image just built by the edit phase (a fresh ~190 MB layer) pushed to a new
 * repository of the loopback registry (gantry push, docker push, buildah push), compression
 * included.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../test/helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../test/helpers/debian.js';
import { writeTree } from '../test/helpers/files.js';
import { startOracle, type Oracle, type OracleEngine } from '../test/helpers/oracle.js';
import { benchFleet } from './fleet.js';
import { benchPlatforms } from './platforms.js';
import { startRegistry } from '../test/helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../test/helpers/rootfs.js';

type Phase = 'cold' | 'warm' | 'edit' | 'push';
type Tool = 'gantry' | 'buildkit' | 'buildkit-20.10' | 'buildah';

interface Workload {
  name: string;
  describe: string;
  context: string;
  /** Change one context file; `n` is unique across bench invocations, so no peer's old cache matches. */
  edit: (n: string) => void;
}

const argv = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] ? (argv[i + 1] as string) : fallback;
};
const runs = Number(opt('runs', '3'));
const growth = Number(opt('growth', '0'));
const only = opt('workloads', 'app,bigrun,multistage,apt,bigstage,ctx50k,stages2,runs30').split(',');
const fleet = argv.includes('--fleet');
const platformsMode = argv.includes('--platforms');
/** --fleet and --platforms start their own peer (the containerd-store engine, bench/fleet.ts, bench/platforms.ts). */
const toolsWanted = (fleet || platformsMode ? 'gantry' : opt('tools', 'gantry,buildkit,buildah')).split(',') as Tool[];
const buildkitEngines = opt('buildkit', 'current').split(',') as OracleEngine[];
for (const e of buildkitEngines) if (e !== 'current' && e !== '20.10') throw new Error(`--buildkit takes current and 20.10, not ${e}`);
/** The column of a BuildKit engine. */
const engineTool = (e: OracleEngine): Tool => (e === 'current' ? 'buildkit' : 'buildkit-20.10');

const gantryBin = path.join(projectRoot, 'bin', 'gantry');
/**
 * gantry is timed without NODE_EXTRA_CA_CERTS unless --keep-node-ca is given: Node reads and
 * parses that file at every start, before any of gantry's code runs (40 ms on the bench
 * machine, where it is set for npm's proxy). A user who has not set it never pays that; the
 * Go peers never read it. The bench says so when it drops it.
 */
const keepNodeCa = argv.includes('--keep-node-ca');
/**
 * Before each timed build, `sync` and a pause of 0.5 s (neither timed), so that no build shares
 * the machine with what the one before it left running: its write-back, a daemon's clean-up
 * after it returned. BuildKit's multistage cold samples were 0.43 to 0.98 s without it and 0.32
 * to 0.61 s with it; gantry's did not change. --no-settle leaves it out.
 */
const settle = !argv.includes('--no-settle');
const droppedCa = !keepNodeCa && process.env.NODE_EXTRA_CA_CERTS !== undefined;
const gantryEnv: NodeJS.ProcessEnv = { ...process.env };
if (droppedCa) delete gantryEnv.NODE_EXTRA_CA_CERTS;
const runGantry = (file: string, args: string[], env: NodeJS.ProcessEnv = {}) => execa(file, args, { reject: false, env: { ...gantryEnv, ...env }, extendEnv: false });
const work = process.env.GANTRY_BENCH_DIR ?? path.join(tmpdir(), 'gantry-bench');
const store = path.join(work, 'store');

const say = (s: string) => process.stderr.write(s + '\n');
/** `xs` starting at its `k`-th element (modulo its length). */
const rotated = <T>(xs: T[], k: number): T[] => [...xs.slice(k % xs.length), ...xs.slice(0, k % xs.length)];
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

/** Deterministic bytes: a SHA-256 counter stream (incompressible, like built assets). */
function bytes(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n);
  let off = 0;
  for (let i = 0; off < n; i++) {
    const block = createHash('sha256').update(`${seed}:${i}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

/** 5,000 files in 50 directories, 70 MB: a third text-like (compressible), the rest random. */
function makeAppContext(dir: string): void {
  const total = 70 * 1024 * 1024;
  const files = 5000;
  const avg = Math.floor(total / files);
  for (let i = 0; i < files; i++) {
    const d = path.join(dir, 'src', `d${String(i % 50).padStart(2, '0')}`);
    if (i < 50) mkdirSync(d, { recursive: true });
    const size = Math.floor(avg * (0.5 + ((i * 7919) % 1000) / 1000));
    const name = path.join(d, `f${String(i).padStart(4, '0')}.${i % 3 === 0 ? 'js' : 'bin'}`);
    if (i % 3 === 0) writeFileSync(name, `// module ${i}\n`.repeat(Math.ceil(size / 16)).slice(0, size));
    else writeFileSync(name, bytes(`f${i}`, size));
  }
}

const dockerfile = (...lines: string[]): string => lines.join('\n') + '\n';

/** `files` files in directories of 250, `total` bytes in all: small text files, as a source tree holds. */
function makeManyFiles(dir: string, files: number, total: number): void {
  const avg = Math.floor(total / files);
  for (let i = 0; i < files; i++) {
    const d = path.join(dir, `d${String(Math.floor(i / 250)).padStart(3, '0')}`);
    if (i % 250 === 0) mkdirSync(d, { recursive: true });
    const size = Math.floor(avg * (0.25 + ((i * 7919) % 1000) / 666));
    writeFileSync(path.join(d, `f${String(i % 1000).padStart(4, '0')}.txt`), `line ${i}\n`.repeat(Math.ceil(size / 10)).slice(0, size));
  }
}

function workloads(): Workload[] {
  const all: Workload[] = [];
  const app = path.join(work, 'ctx-app');
  makeAppContext(app);
  writeFileSync(
    path.join(app, 'Dockerfile'),
    dockerfile(
      'ARG REGISTRY',
      'FROM ${REGISTRY}/library/busybox:latest',
      'COPY src /app/src',
      'RUN busybox find /app -type f | busybox wc -l > /app/count',
      'COPY src/d00 /app/again',
      'RUN echo built > /app/done',
      'CMD ["cat", "/app/count"]',
    ),
  );
  all.push({ name: 'app', describe: 'busybox, 5,000 files / 70 MB context, 2 COPY + 2 RUN', context: app, edit: (n) => appendFileSync(path.join(app, 'src', 'd07', 'f0057.js'), `// edit ${n}\n`) });

  const big = writeTree(path.join(work, 'ctx-bigrun'), {
    'version.txt': '0\n',
    Dockerfile: dockerfile(
      'ARG REGISTRY',
      'FROM ${REGISTRY}/library/debian:bookworm',
      'COPY version.txt /version.txt',
      'RUN cp -a /usr /usr2 && head -c 40000000 /dev/urandom > /usr2/random.bin',
      'RUN rm -rf /usr2/share /usr2/lib/x86_64-linux-gnu/perl-base',
    ),
  });
  all.push({ name: 'bigrun', describe: 'Debian, RUN writing ~150 MB then a RUN deleting part of it', context: big, edit: (n) => writeFileSync(path.join(big, 'version.txt'), `${n}\n`) });

  const multi = writeTree(path.join(work, 'ctx-multistage'), {
    'main.c': 'int main(void) { return 0; }\n',
    Dockerfile: dockerfile(
      'ARG REGISTRY',
      'FROM ${REGISTRY}/library/debian:bookworm AS build',
      'COPY main.c /src/main.c',
      'RUN mkdir -p /out/files && for i in $(seq 1 2000); do echo "file $i" > /out/files/$i.txt; done && tar -cf /out/bundle.tar -C /out files',
      'FROM ${REGISTRY}/library/debian:bookworm AS unused',
      'RUN echo never > /never',
      'FROM ${REGISTRY}/library/busybox:latest',
      'COPY --from=build /out/bundle.tar /bundle.tar',
      'COPY --from=build /src/main.c /main.c',
    ),
  });
  all.push({ name: 'multistage', describe: 'Debian build stage (2,000 files + tar), unused stage, COPY --from into busybox', context: multi, edit: (n) => appendFileSync(path.join(multi, 'main.c'), `/* ${n} */\n`) });

  if (only.includes('apt')) {
    const sources: Record<string, string> = {};
    for (let i = 0; i < 300; i++) sources[`app/pkg${i % 10}/mod${i}.py`] = `# module ${i}\n${'def f(x):\n    return x * 2\n'.repeat(20)}`;
    for (let i = 0; i < 10; i++) sources[`app/pkg${i}/__init__.py`] = '';
    const apt = writeTree(path.join(work, 'ctx-apt'), {
      ...sources,
      Dockerfile: dockerfile(
        'ARG REGISTRY',
        'FROM ${REGISTRY}/library/debian:bookworm AS base',
        'RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null && rm -rf /var/lib/apt/lists/*',
        'FROM base AS build',
        'WORKDIR /src',
        'COPY app /src/app',
        'RUN python3 -m compileall -q /src/app && tar -cf /src/app.tar -C /src app',
        'FROM base',
        'COPY --from=build /src/app.tar /srv/app.tar',
        'RUN mkdir -p /srv/app && tar -xf /srv/app.tar -C /srv && rm /srv/app.tar',
        'CMD ["python3", "-c", "import sys; sys.path.insert(0, \'/srv\'); import app.pkg0.mod0"]',
      ),
    });
    all.push({ name: 'apt', describe: 'Debian, apt-get install python3, 300 source files, compile stage, final stage COPY --from', context: apt, edit: (n) => appendFileSync(path.join(apt, 'app', 'pkg3', 'mod33.py'), `# ${n}\n`) });
  }

  if (only.includes('bigstage')) {
    const bigstage = writeTree(path.join(work, 'ctx-bigstage'), {
      'config.txt': '0\n',
      Dockerfile: dockerfile(
        'ARG REGISTRY',
        'FROM ${REGISTRY}/library/debian:bookworm AS big',
        'RUN cp -a /usr /usr2 && cp -a /usr /usr3 && head -c 150000000 /dev/urandom > /blob.bin',
        'FROM big',
        'WORKDIR /code',
        'COPY config.txt /code/config.txt',
        'RUN wc -c /code/config.txt > /code/size',
      ),
    });
    all.push({ name: 'bigstage', describe: 'a stage FROM a 300 MB earlier stage: WORKDIR, COPY of one file, RUN', context: bigstage, edit: (n) => writeFileSync(path.join(bigstage, 'config.txt'), `${n}\n`) });
  }

  if (only.includes('ctx50k')) {
    const ctx = path.join(work, 'ctx-ctx50k');
    makeManyFiles(path.join(ctx, 'tree'), 50_000, 190 * 1024 * 1024);
    writeFileSync(path.join(ctx, 'Dockerfile'), dockerfile('ARG REGISTRY', 'FROM ${REGISTRY}/library/busybox:latest', 'COPY tree /tree'));
    all.push({ name: 'ctx50k', describe: 'a 50,000-file (190 MB) context COPY\'d whole', context: ctx, edit: (n) => appendFileSync(path.join(ctx, 'tree', 'd123', 'f0123.txt'), `${n}\n`) });
  }

  if (only.includes('stages2')) {
    // Two independent stages: BuildKit runs them side by side, and so does gantry.
    const loop = (name: string) => `RUN mkdir /out && for i in $(seq 1 1500); do echo "${name} $i" > /out/$i.txt; done && sha256sum /out/*.txt > /${name}.sums`;
    const stages2 = writeTree(path.join(work, 'ctx-stages2'), {
      'one.txt': '0\n',
      Dockerfile: dockerfile(
        'ARG REGISTRY',
        'FROM ${REGISTRY}/library/debian:bookworm AS one',
        'COPY one.txt /one.txt',
        loop('one'),
        'FROM ${REGISTRY}/library/debian:bookworm AS two',
        'COPY one.txt /one.txt',
        loop('two'),
        'FROM ${REGISTRY}/library/busybox:latest',
        'COPY --from=one /one.sums /one.sums',
        'COPY --from=two /two.sums /two.sums',
      ),
    });
    all.push({ name: 'stages2', describe: 'two independent Debian stages (1,500 files and their sums each), COPY --from both', context: stages2, edit: (n) => writeFileSync(path.join(stages2, 'one.txt'), `${n}\n`) });
  }

  if (only.includes('runs30')) {
    const lines = ['ARG REGISTRY', 'FROM ${REGISTRY}/library/busybox:latest'];
    for (let i = 0; i < 30; i++) {
      if (i === 15) lines.push('COPY version.txt /version.txt');
      lines.push(`RUN echo step ${i} > /step${i}`);
    }
    const runs30 = writeTree(path.join(work, 'ctx-runs30'), { 'version.txt': '0\n', Dockerfile: dockerfile(...lines) });
    all.push({ name: 'runs30', describe: '30 one-line RUNs on busybox, a COPY before the 16th', context: runs30, edit: (n) => writeFileSync(path.join(runs30, 'version.txt'), `${n}\n`) });
  }
  return all.filter((w) => only.includes(w.name));
}

interface Sample {
  seconds: number;
  rssMB?: number;
}

async function timeGantry(w: Workload, registry: string, phase: Phase): Promise<Sample> {
  const rssFile = path.join(work, 'rss.txt');
  const args = ['--root', store, 'build', '--progress', 'plain', '--build-arg', `REGISTRY=${registry}`, '-t', `bench/${w.name}:gantry`, ...(phase === 'cold' ? ['--no-cache'] : []), w.context];
  rmSync(rssFile, { force: true });
  const t0 = process.hrtime.bigint();
  // gantry reports its own peak RSS (GANTRY_RSS_OUT: its VmHWM, what GNU time would say within
  // 1 MB): /usr/bin/time in front of it cost every gantry row 2 ms that no peer paid.
  const r = await runGantry(gantryBin, args, { GANTRY_RSS_OUT: rssFile });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.exitCode !== 0) throw new Error(`gantry build of ${w.name} failed:\n${r.stderr.slice(-2000)}`);
  const kb = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
  return { seconds, rssMB: kb / 1024 };
}

async function timeBuildkit(oracle: Oracle, w: Workload, registry: string, phase: Phase): Promise<Sample> {
  const t0 = process.hrtime.bigint();
  await oracle.build(w.context, { tag: `bench/${w.name}:buildkit`, buildArgs: { REGISTRY: registry }, noCache: phase === 'cold' });
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

let pushes = 0;
/** Push the image `tool` built for `w` to a repository never used before. */
async function timePush(tool: Tool, oracles: Map<Tool, Oracle>, w: Workload, registry: string): Promise<Sample> {
  const oracle = oracles.get(tool);
  const dest = `${registry}/push/${w.name}-${tool}-${process.pid}-${++pushes}:1`;
  const t0 = process.hrtime.bigint();
  if (tool === 'gantry') {
    const r = await runGantry(gantryBin, ['--root', store, 'push', `bench/${w.name}:gantry`, dest]);
    if (r.exitCode !== 0) throw new Error(`gantry push failed:\n${r.stderr.slice(-2000)}`);
  } else if (oracle) {
    await oracle.docker(['tag', `bench/${w.name}:buildkit`, dest]);
    const t1 = process.hrtime.bigint(); // the tag is not the push
    await oracle.docker(['push', '-q', dest]);
    return { seconds: Number(process.hrtime.bigint() - t1) / 1e9 };
  } else {
    const r = await execa('buildah', ['push', '-q', '--tls-verify=false', `bench/${w.name}:buildah`, `docker://${dest}`], { reject: false });
    if (r.exitCode !== 0) throw new Error(`buildah push failed:\n${r.stderr.slice(-2000)}`);
  }
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

async function timeBuildah(w: Workload, registry: string, phase: Phase): Promise<Sample> {
  const args = ['bud', '--layers', '--isolation', 'chroot', '--storage-driver', 'overlay', '--tls-verify=false', '--build-arg', `REGISTRY=${registry}`, '-t', `bench/${w.name}:buildah`, ...(phase === 'cold' ? ['--no-cache'] : []), w.context];
  const t0 = process.hrtime.bigint();
  const r = await execa('buildah', args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`buildah bud of ${w.name} failed:\n${r.stderr.slice(-2000)}`);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

const has = (cmd: string): boolean => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

async function main(): Promise<void> {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const debian = debianBaseTarball();
  if (!debian) throw new Error('debootstrap is missing: apt-get install debootstrap (the Debian base is made with it)');
  const reg = await startRegistry();
  if (!reg) throw new Error('docker-registry is missing: apt-get install docker-registry');
  const tools: Tool[] = ['gantry'];
  const oracles = new Map<Tool, Oracle>();
  if (toolsWanted.includes('buildkit')) {
    for (const engine of buildkitEngines) {
      const o = startOracle(engine);
      if (o) {
        tools.push(engineTool(engine));
        oracles.set(engineTool(engine), o);
        say(`BuildKit (${engineTool(engine)}): Docker ${await o.docker(['version', '--format', '{{.Server.Version}}'])}`);
      } else say(`BuildKit: not available (the ${engine} engine could not start); skipped`);
    }
  }
  if (toolsWanted.includes('buildah')) {
    if (has('buildah')) tools.push('buildah');
    else say('buildah: not installed (apt-get install buildah); skipped');
  }
  try {
    // What earlier invocations left: the peers keep every image they built (buildah's storage
    // grew by 5 to 8 GB per invocation here), and a nearly full disk changes every tool's
    // figures (gantry removes its trash at once under 5% available). It goes before anything
    // is timed; the first, untimed build of each workload primes the caches again.
    if (tools.includes('buildah')) await execa('buildah', ['rmi', '--all', '--force'], { reject: false });
    for (const oracle of oracles.values()) {
      await oracle.docker(['builder', 'prune', '--all', '--force']).catch(() => undefined);
      await oracle.docker(['image', 'prune', '--all', '--force']).catch(() => undefined);
    }
    const disk = statfsSync(work);
    const free = (disk.bavail * disk.bsize) / (disk.blocks * disk.bsize);
    say(`disk: ${(free * 100).toFixed(1)}% available where the bench works${free < 0.1 ? ' (under 10%: the figures may suffer)' : ''}`);
    if (platformsMode) {
      const samples = await benchPlatforms({ registry: reg.host, runs, work, gantry: (args) => runGantry(gantryBin, args), say });
      const med = (tool: string, phase: string) => median(samples.filter((x) => x.tool === tool && x.phase === phase).map((x) => x.seconds));
      const rows = (['cold', 'warm'] as const).map((phase) => `| ${phase} | ${med('gantry', phase).toFixed(2)} | ${med('buildkit', phase).toFixed(2)} | ${(med('gantry', phase) / med('buildkit', phase)).toFixed(2)} |`);
      process.stdout.write(`\nlinux/amd64,linux/arm64 in one build (arm64's RUN under qemu), Docker 28.5 on the containerd image store; medians of ${runs}\n\n| phase | gantry (s) | buildkit (s) | gantry/buildkit |\n|---|---|---|---|\n${rows.join('\n')}\n`);
      return;
    }
    say(`bases: importing busybox and Debian, pushing them to ${reg.host}`);
    const g = (args: string[]) => execa(gantryBin, ['--root', store, ...args]);
    const busybox = tarDir(makeBusyboxRootfs(path.join(work, 'busybox-rootfs')), path.join(work, 'busybox.tgz'));
    await g(['import', busybox, `${reg.host}/library/busybox:latest`, '-c', 'CMD ["sh"]']);
    await g(['push', `${reg.host}/library/busybox:latest`]);
    await g(['import', debian, `${reg.host}/library/debian:bookworm`, '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
    await g(['push', `${reg.host}/library/debian:bookworm`]);
    for (const oracle of oracles.values()) {
      for (const b of ['busybox:latest', 'debian:bookworm']) await oracle.docker(['pull', '-q', `${reg.host}/library/${b}`]);
    }
    if (tools.includes('buildah')) {
      for (const b of ['busybox:latest', 'debian:bookworm']) await execa('buildah', ['pull', '-q', '--tls-verify=false', `${reg.host}/library/${b}`]);
    }
    if (droppedCa) say(`gantry: timed without NODE_EXTRA_CA_CERTS (set here to ${process.env.NODE_EXTRA_CA_CERTS}; Node parses it at every start); --keep-node-ca keeps it`);
    say('contexts: generating');
    const ws = workloads();
    if (fleet) {
      const w = ws.find((x) => x.name === (only[0] ?? 'multistage')) ?? ws.find((x) => x.name === 'multistage');
      if (!w) throw new Error('--fleet builds the multistage workload (or the first of --workloads)');
      const samples = await benchFleet({ context: w.context, name: w.name, registry: reg.host, runs, work, gantry: (args) => runGantry(gantryBin, args), say });
      const med = (tool: string, how: string, key: 'seconds' | 'pulled') => median(samples.filter((s) => s.tool === tool && s.how === how).map((s) => s[key]));
      const rows = (['cache-from', 'no cache'] as const).map((how) => {
        const g = med('gantry', how, 'seconds');
        const b = med('buildkit', how, 'seconds');
        return `| ${how} | ${g.toFixed(2)} | ${b.toFixed(2)} | ${(g / b).toFixed(2)} | ${(med('gantry', how, 'pulled') / 1e6).toFixed(1)} | ${(med('buildkit', how, 'pulled') / 1e6).toFixed(1)} |`;
      });
      process.stdout.write(
        `\nhost B of a fleet (an empty store; host A exported its cache with --cache-to type=registry,mode=max), ${w.name}: ${w.describe}; medians of ${runs}\n\n` +
          `| host B | gantry (s) | buildkit (s) | gantry/buildkit | gantry pulled (MB) | buildkit pulled (MB) |\n|---|---|---|---|---|---|\n${rows.join('\n')}\n`,
      );
      return;
    }

    const results: { workload: string; phase: Phase; tool: Tool; samples: Sample[] }[] = [];
    const record = (workload: string, phase: Phase, tool: Tool, s: Sample) => {
      let r = results.find((x) => x.workload === workload && x.phase === phase && x.tool === tool);
      if (!r) results.push((r = { workload, phase, tool, samples: [] }));
      r.samples.push(s);
    };
    // Peers keep their caches between bench invocations (the stores of gantry do not): an edit
    // must never repeat the content of an earlier invocation's edit, or it would be a cache hit.
    const invocation = `${Date.now().toString(36)}-${process.pid}`;
    let edits = 0;
    let turn = 0;
    // gantry and BuildKit alternate in rounds of their own, and buildah's rounds follow: the
    // BuildKit build that came next after one of buildah's (its edit build, here) took up to
    // twice as long (multistage cold: 0.41 s before, 0.89 to 1.08 s after, 0.44 to 0.47 s for
    // the ones after that), which made every BuildKit figure of a mixed round too high.
    const groups = [tools.filter((t) => t !== 'buildah'), tools.filter((t) => t === 'buildah')].filter((g) => g.length > 0);
    for (const w of ws) {
      for (const group of groups) {
        // A first build per tool that is not timed: base layers unpacked, caches primed.
        for (const tool of group) await measure(tool, w, 'cold');
        for (let i = 0; i < runs; i++) {
          for (const phase of ['cold', 'warm', 'edit'] as Phase[]) {
            if (phase === 'edit') w.edit(`${invocation}-${++edits}`);
            // Each round starts with the next tool: whoever runs right after another tool's build
            // shares the disk with that tool's clean-up (ext4 without a journal skips the inodes
            // freed in the last 30 s), so no tool is always the one that follows the same peer.
            for (const tool of rotated(group, turn++)) {
              if (settle) await quiet();
              const s = await measure(tool, w, phase);
              record(w.name, phase, tool, s);
              say(`${w.name} ${phase} ${tool}: ${s.seconds.toFixed(2)} s${s.rssMB ? `, peak RSS ${s.rssMB.toFixed(0)} MB` : ''}`);
            }
          }
          if (w.name === 'bigrun') {
            // What the edit phase just built has a layer no registry has seen.
            for (const tool of group) {
              const s = await timePush(tool, oracles, w, reg!.host);
              record(w.name, 'push', tool, s);
              say(`${w.name} push ${tool}: ${s.seconds.toFixed(2)} s`);
            }
          }
        }
      }
    }

    async function quiet(): Promise<void> {
      await execa('sync');
      await new Promise((resolve) => setTimeout(resolve, 500));
    }

    async function measure(tool: Tool, w: Workload, phase: Phase): Promise<Sample> {
      if (tool === 'gantry') return timeGantry(w, reg!.host, phase);
      const oracle = oracles.get(tool);
      const peer = () => (oracle ? timeBuildkit(oracle, w, reg!.host, phase) : timeBuildah(w, reg!.host, phase));
      // A peer's build that fails for a reason of its own (buildah 1.28's RUN fails now and then
      // with "Close_Fd sealing memfd copy: Device or resource busy") is run once more, and said;
      // a second failure ends the bench. gantry's failures are never retried.
      try {
        return await peer();
      } catch (err) {
        say(`${w.name} ${phase} ${tool}: failed, run once more: ${(err as Error).message.split('\n').slice(0, 2).join(' ')}`);
        return peer();
      }
    }

    // The table: medians, ratios, gantry's peak RSS.
    const cell = (w: string, p: Phase, t: Tool) => results.find((r) => r.workload === w && r.phase === p && r.tool === t);
    const head = ['workload', 'phase', ...tools.map((t) => `${t} (s)`), ...tools.filter((t) => t !== 'gantry').map((t) => `gantry/${t}`), 'gantry peak RSS (MB)'];
    const rows: string[][] = [];
    for (const w of ws) {
      for (const p of ['cold', 'warm', 'edit', 'push'] as Phase[]) {
        if (!cell(w.name, p, 'gantry')) continue;
        const med = (t: Tool) => median((cell(w.name, p, t)?.samples ?? []).map((s) => s.seconds));
        const g = med('gantry');
        const rss = Math.max(...(cell(w.name, p, 'gantry')?.samples ?? []).map((s) => s.rssMB ?? 0));
        rows.push([w.name, p, ...tools.map((t) => med(t).toFixed(2)), ...tools.filter((t) => t !== 'gantry').map((t) => (g / med(t)).toFixed(2)), rss > 0 ? rss.toFixed(0) : '-']);
      }
    }
    // The limit of the cold 50,000-file COPY: the same tree copied by cp -a on the same disk.
    let limit = '';
    const many = ws.find((w) => w.name === 'ctx50k');
    if (many) {
      const times: number[] = [];
      for (let i = 0; i < Math.max(runs, 3); i++) {
        const dest = path.join(work, 'cp-limit');
        rmSync(dest, { recursive: true, force: true });
        await quiet();
        const t0 = process.hrtime.bigint();
        await execa('cp', ['-a', path.join(many.context, 'tree'), dest]);
        await execa('sync', ['-f', dest]).catch(() => undefined);
        times.push(Number(process.hrtime.bigint() - t0) / 1e9);
        rmSync(dest, { recursive: true, force: true });
      }
      const g = median((cell('ctx50k', 'cold', 'gantry')?.samples ?? []).map((x) => x.seconds));
      limit = `\nctx50k's limit: cp -a of the same tree on the same disk, median ${median(times).toFixed(2)} s; gantry's cold build ${g.toFixed(2)} s (${(g / median(times)).toFixed(2)}x)\n`;
    }
    const table = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
    const caNote = droppedCa ? '; gantry timed without NODE_EXTRA_CA_CERTS (--keep-node-ca keeps it)' : '';
    const settleNote = settle ? '; each timed build after a sync and a 0.5 s pause' : '';
    process.stdout.write(`\nmedians of ${runs} interleaved runs (buildah in rounds of its own, after gantry's and BuildKit's)${settleNote}${caNote}; ${ws.map((w) => `${w.name}: ${w.describe}`).join('; ')}\n\n${table}\n${limit}`);
    if (growth > 0 && ws[0]) {
      const w = ws[0];
      // The whole store (du) and, from `system df`, what the budget bounds (the build cache and
      // the step snapshots) apart from the images (the dangling ones included: a tag moved to the
      // newer build leaves the older image, as docker does, until `gantry prune`).
      const du = async () => Number((await execa('du', ['-sb', store])).stdout.split('\t')[0]) / 1024 / 1024;
      const df = async (): Promise<string> => {
        const rows = (JSON.parse((await runGantry(gantryBin, ['--root', store, 'system', 'df', '--format', 'json'])).stdout) as { rows: { type: string; size: number }[] }).rows;
        const mb = (t: string) => ((rows.find((r) => r.type === t)?.size ?? 0) / 1024 / 1024).toFixed(0);
        return `${(await du()).toFixed(0)} MB (images ${mb('Images')}, build cache ${mb('Build Cache')}, snapshots ${mb('Step snapshots')})`;
      };
      const sizes = [`before: ${await df()}`];
      for (let i = 1; i <= growth; i++) {
        w.edit(`${invocation}-growth-${i}`);
        await timeGantry(w, reg.host, 'edit');
        if (i % 10 === 0 || i === growth) sizes.push(`after ${i}: ${await df()}`);
      }
      const budget = process.env.GANTRY_STORE_BUDGET ?? '10% of the file system';
      process.stdout.write(`\nstore growth over ${growth} edit builds of ${w.name} (budget ${budget}): ${sizes.join(', ')}\n`);
    }
    writeFileSync(path.join(work, 'results.json'), JSON.stringify({ runs, tools, results }, null, 2));
    say(`raw samples: ${path.join(work, 'results.json')}`);
  } finally {
    await reg.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(1);
});
