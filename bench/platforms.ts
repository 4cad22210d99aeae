/**
 * `npm run bench -- --platforms`: a two-platform build (issue 25), gantry against Docker 28.5 on
 * the containerd image store (`docker buildx build --platform linux/amd64,linux/arm64`, the
 * image kept in the engine's store, as gantry keeps it in its own).
 *
 * The bases are Debian for amd64 and arm64 (debootstrap; arm64's second stage under
 * qemu-user-static), pushed to a loopback registry as one index and pulled by each tool before
 * anything is timed. The Dockerfile is a cross-compiling project's shape: a stage on
 * $BUILDPLATFORM that writes 2,000 files for $TARGETARCH and tars them (native), a final stage
 * on the target platform that runs a few programs (emulated for arm64: dpkg, sha256sum over
 * /usr/bin) and copies the tar in. Phases: cold (--no-cache) and warm (nothing changed).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { projectRoot } from '../test/helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../test/helpers/debian.js';
import { containerdOracleEnv } from '../test/helpers/oracle.js';

export interface PlatformSample {
  tool: 'gantry' | 'buildkit';
  phase: 'cold' | 'warm';
  seconds: number;
}

const DOCKERFILE = `ARG REGISTRY
FROM --platform=$BUILDPLATFORM \${REGISTRY}/library/debian:bookworm AS build
ARG TARGETARCH
COPY src /src
RUN mkdir -p /out && for i in $(seq 1 2000); do echo "$TARGETARCH $i" > /out/f$i.txt; done && tar -C /out -cf /app-$TARGETARCH.tar . && sha256sum /src/* > /app.sums
FROM \${REGISTRY}/library/debian:bookworm
ARG TARGETARCH
RUN dpkg --print-architecture > /arch && sha256sum /usr/bin/* > /usr-bin.sums && uname -m >> /arch
COPY --from=build /app-$TARGETARCH.tar /app.sums /opt/
CMD ["cat", "/arch"]
`;

/**
 * Time `runs` samples of each phase, gantry's and Docker 28.5's interleaved. `registry` is a
 * loopback registry; `gantry` runs the command (with the bench's environment).
 */
export async function benchPlatforms(options: { registry: string; runs: number; work: string; gantry: (args: string[]) => Promise<{ exitCode?: number; stderr: string }>; say: (s: string) => void }): Promise<PlatformSample[]> {
  const { registry: reg, runs, work, gantry, say } = options;
  const env = containerdOracleEnv();
  const docker = (args: string[]) => execa('docker', args, { env });
  say(`platforms: Docker ${(await docker(['version', '--format', '{{.Server.Version}}'])).stdout} (containerd image store)`);
  // The two-platform base, pushed, then pulled by each tool.
  const amd64 = debianBaseTarball();
  if (!amd64) throw new Error('debootstrap is missing: apt-get install debootstrap');
  const arm64 = execFileSync(path.join(projectRoot, 'scripts', 'debian-base.sh'), { encoding: 'utf8', env: { ...process.env, GANTRY_DEBIAN_ARCH: 'arm64' }, stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const seed = mkdtempSync(path.join(work, 'platforms-seed-'));
  const must = async (args: string[]): Promise<void> => {
    const r = await gantry(args);
    if (r.exitCode !== 0) throw new Error(`gantry ${args.join(' ')}: ${r.stderr}`);
  };
  await must(['--root', seed, 'import', amd64, 'deb:amd64', '--platform', 'linux/amd64', '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
  await must(['--root', seed, 'import', arm64, 'deb:arm64', '--platform', 'linux/arm64', '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
  const baseCtx = mkdtempSync(path.join(work, 'platforms-base-'));
  writeFileSync(path.join(baseCtx, 'Dockerfile'), 'ARG TARGETARCH\nFROM deb:${TARGETARCH}\n');
  await must(['--root', seed, 'build', '--progress', 'quiet', '--platform', 'linux/amd64,linux/arm64', '-t', `${reg}/library/debian:bookworm`, '--push', baseCtx]);
  const context = mkdtempSync(path.join(work, 'platforms-ctx-'));
  writeFileSync(path.join(context, 'Dockerfile'), DOCKERFILE);
  mkdirSync(path.join(context, 'src'));
  for (let i = 0; i < 200; i++) writeFileSync(path.join(context, 'src', `m${i}.c`), `int f${i}(void) { return ${i}; }\n`.repeat(40));
  const root = mkdtempSync(path.join(work, 'platforms-store-'));
  const common = ['--platform', 'linux/amd64,linux/arm64', '--build-arg', `REGISTRY=${reg}`];
  const ours = (extra: string[]) => ['--root', root, 'build', '--progress', 'quiet', ...common, ...extra, '-t', 'bench/platforms:1', context];
  // RUN on the host's network: the containerd engine's bridge does not work in its chroot.
  const theirs = (extra: string[]) => ['buildx', 'build', '--progress', 'quiet', '--network', 'host', ...common, ...extra, '-t', 'bench/platforms:1', context];
  // Untimed first builds: the bases pulled and unpacked by each.
  await must(ours([]));
  await docker(theirs([]));
  const samples: PlatformSample[] = [];
  const time = async (fn: () => Promise<unknown>): Promise<number> => {
    execFileSync('sync');
    const t = performance.now();
    await fn();
    return (performance.now() - t) / 1000;
  };
  for (let i = 0; i < runs; i++) {
    for (const phase of ['cold', 'warm'] as const) {
      const extra = phase === 'cold' ? ['--no-cache'] : [];
      const g = await time(() => must(ours(extra)));
      samples.push({ tool: 'gantry', phase, seconds: g });
      const b = await time(() => docker(theirs(extra)));
      samples.push({ tool: 'buildkit', phase, seconds: b });
      say(`platforms ${phase}: gantry ${g.toFixed(2)} s, buildkit ${b.toFixed(2)} s`);
    }
  }
  return samples;
}
