/**
 * `npm run bench -- --fleet`: a CI fleet's second runner (issue 24). Host A builds a multi-stage
 * Dockerfile and exports its cache to a loopback registry (`--cache-to type=registry,mode=max`);
 * host B starts empty (no image, no build cache, not even the base) and builds the same, timed:
 * with `--cache-from` the registry's cache, and without it. The bytes B pulls are counted by a
 * proxy in front of the registry that every build goes through. Docker 28.5 on the containerd
 * image store (its docker driver exports registry caches there; the classic store's does not)
 * does the same with `docker buildx build --cache-to/--cache-from type=registry`: "host B" is
 * the engine emptied (`buildx prune -af`, every image removed) before each of its samples.
 */
import { createServer, request as httpRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { containerdOracleEnv } from '../test/helpers/oracle.js';

export interface FleetSample {
  tool: 'gantry' | 'buildkit';
  how: 'cache-from' | 'no cache';
  seconds: number;
  /** Bytes the registry sent B (blobs and manifests). */
  pulled: number;
}

/** A proxy to `upstream` (host:port) that counts the bytes of its answers. */
async function countingProxy(upstream: string): Promise<{ host: string; take: () => number; close: () => void }> {
  let bytes = 0;
  const [uh, up] = upstream.split(':') as [string, string];
  const server = createServer((req, res) => {
    const out = httpRequest({ host: uh, port: Number(up), path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.on('data', (c: Buffer) => (bytes += c.length));
      r.pipe(res);
    });
    out.on('error', () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    take: () => {
      const n = bytes;
      bytes = 0;
      return n;
    },
    close: () => server.close(),
  };
}

/**
 * Time host B against `context` (a Dockerfile taking `ARG REGISTRY` for its bases, which are in
 * `registry` already), `runs` samples of each way, gantry's and Docker 28.5's interleaved.
 */
export async function benchFleet(options: { context: string; name: string; registry: string; runs: number; work: string; gantry: (args: string[]) => Promise<{ exitCode?: number; stderr: string }>; say: (s: string) => void }): Promise<FleetSample[]> {
  const { context, name, runs, work, gantry, say } = options;
  const proxy = await countingProxy(options.registry);
  const reg = proxy.host;
  const samples: FleetSample[] = [];
  // The containerd-store engine (its own socket), started if it is not running; its CLI and buildx.
  const env = containerdOracleEnv();
  const docker = (args: string[]) => execa('docker', args, { env });
  say(`fleet: Docker ${(await docker(['version', '--format', '{{.Server.Version}}'])).stdout} (containerd image store), buildx ${(await docker(['buildx', 'version'])).stdout.split(' ')[1] ?? '?'}`);
  const buildArg = ['--build-arg', `REGISTRY=${reg}`];
  const gantryCache = `${reg}/cache/${name}:gantry`;
  const dockerCache = `${reg}/cache/${name}:buildkit`;
  const emptyDocker = async () => {
    await docker(['buildx', 'prune', '-af']);
    const images = (await docker(['images', '-aq'])).stdout.split('\n').filter(Boolean);
    if (images.length > 0) await docker(['rmi', '-f', ...new Set(images)]).catch(() => undefined);
  };
  try {
    say('fleet: host A builds and exports its cache (gantry, then Docker 28.5)');
    const a = await gantry(['--root', mkdtempSync(path.join(work, 'fleet-a-')), 'build', '--progress', 'plain', ...buildArg, '--cache-to', `type=registry,ref=${gantryCache},mode=max`, context]);
    if (a.exitCode !== 0) throw new Error(`gantry on host A failed:\n${a.stderr.slice(-2000)}`);
    await emptyDocker();
    await docker(['buildx', 'build', '--progress', 'quiet', '--network', 'host', ...buildArg, '--cache-to', `type=registry,ref=${dockerCache},mode=max`, '-t', `bench/${name}:fleet`, context]);
    for (let i = 0; i < runs; i++) {
      for (const how of ['cache-from', 'no cache'] as const) {
        const root = mkdtempSync(path.join(work, 'fleet-b-'));
        proxy.take();
        let t0 = process.hrtime.bigint();
        const b = await gantry(['--root', root, 'build', '--progress', 'plain', ...buildArg, ...(how === 'cache-from' ? ['--cache-from', `type=registry,ref=${gantryCache}`] : []), context]);
        if (b.exitCode !== 0) throw new Error(`gantry on host B failed:\n${b.stderr.slice(-2000)}`);
        samples.push({ tool: 'gantry', how, seconds: Number(process.hrtime.bigint() - t0) / 1e9, pulled: proxy.take() });
        rmSync(root, { recursive: true, force: true });
        await emptyDocker();
        proxy.take();
        t0 = process.hrtime.bigint();
        await docker(['buildx', 'build', '--progress', 'quiet', '--network', 'host', ...buildArg, ...(how === 'cache-from' ? ['--cache-from', `type=registry,ref=${dockerCache}`] : []), '-t', `bench/${name}:fleet`, context]);
        samples.push({ tool: 'buildkit', how, seconds: Number(process.hrtime.bigint() - t0) / 1e9, pulled: proxy.take() });
        for (const s of samples.slice(-2)) say(`fleet ${name} host B ${how} ${s.tool}: ${s.seconds.toFixed(2)} s, ${(s.pulled / 1e6).toFixed(1)} MB pulled`);
      }
    }
  } finally {
    proxy.close();
  }
  return samples;
}
