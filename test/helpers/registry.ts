import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { haveTool } from './tools.js';

export interface TestRegistry {
  /** host:port on 127.0.0.1 */
  host: string;
  /** The registry's storage directory (blobs under docker/registry/v2/blobs). */
  storage: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

/** A throwaway CA and a server certificate for 127.0.0.1, made with openssl. */
export function makeTls(dir: string): TlsFiles {
  haveTool('openssl');
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=gantry test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(f('ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '2', '-extfile', f('ext.cnf')]);
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

export interface RegistryOptions {
  /** htpasswd Basic auth with this user and password. */
  basic?: { username: string; password: string };
  /** Serve TLS with a test CA (its certificate is `tls.ca`). */
  tls?: boolean;
  /** Extra YAML appended to the config (for example an auth: token section). */
  extraConfig?: string;
}

/** Debian's docker-registry (the CNCF distribution registry) on a free loopback port. */
export async function startRegistry(options: RegistryOptions = {}): Promise<(TestRegistry & { tls?: TlsFiles }) | undefined> {
  if (!haveTool('docker-registry')) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'gantry-registry-'));
  const port = await freePort();
  const tls = options.tls ? makeTls(dir) : undefined;
  const lines: string[] = [];
  if (options.basic) {
    haveTool('htpasswd');
    const hp = execFileSync('htpasswd', ['-Bbn', options.basic.username, options.basic.password]).toString();
    writeFileSync(path.join(dir, 'htpasswd'), hp);
    lines.push('auth:', '  htpasswd:', '    realm: gantry-test', `    path: ${path.join(dir, 'htpasswd')}`);
  }
  const extraConfig = [...lines, options.extraConfig ?? ''].join('\n');
  const config = path.join(dir, 'config.yml');
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: error',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${path.join(dir, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(tls ? ['  tls:', `    certificate: ${tls.cert}`, `    key: ${tls.key}`] : []),
      extraConfig,
    ].join('\n'),
  );
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if (tls) {
        execFileSync('curl', ['-s', '-o', '/dev/null', '--cacert', tls.ca, `https://${host}/v2/`]);
        break;
      }
      const res = await fetch(`http://${host}/v2/`);
      if (res.status === 200 || res.status === 401) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    ...(tls ? { tls } : {}),
    storage: path.join(dir, 'data'),
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r).once('error', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `fn` with a registry of its own (startRegistry), stopped however `fn` ends; its host is given. */
export async function withRegistry<T>(fn: (host: string) => Promise<T>): Promise<T> {
  const registry = await startRegistry();
  if (!registry) throw new Error('docker-registry is not installed');
  try {
    return await fn(registry.host);
  } finally {
    await registry.stop();
  }
}

/** A platform image of an index in a registry: its platform (`os/arch[/variant]`), manifest, config and layers' bytes. */
export interface RegistryPlatformImage {
  platform: string;
  manifest: { config: { digest: string }; layers: { digest: string }[] };
  config: Record<string, unknown>;
  layers: Buffer[];
}

/**
 * A multi-platform image as a registry serves it: the index's digest, media type and document,
 * and each platform's image (attestations, platform unknown/unknown, left out), in the index's order.
 */
export async function registryIndex(host: string, repo: string, tag: string): Promise<{ digest: string; mediaType: string; index: { manifests: unknown[]; annotations?: Record<string, string> }; images: RegistryPlatformImage[] }> {
  const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json';
  const get = async (what: string): Promise<Response> => {
    const res = await fetch(`http://${host}/v2/${repo}/${what}`, { headers: { accept } });
    if (res.status !== 200) throw new Error(`GET ${repo}/${what}: HTTP ${res.status}`);
    return res;
  };
  const top = await get(`manifests/${tag}`);
  const digest = top.headers.get('docker-content-digest') ?? '';
  const mediaType = top.headers.get('content-type') ?? '';
  const index = (await top.json()) as { manifests: { digest: string; platform: { os: string; architecture: string; variant?: string } }[]; annotations?: Record<string, string> };
  const images: RegistryPlatformImage[] = [];
  for (const d of index.manifests) {
    if (d.platform.os === 'unknown') continue;
    const manifest = (await (await get(`manifests/${d.digest}`)).json()) as RegistryPlatformImage['manifest'];
    const config = (await (await get(`blobs/${manifest.config.digest}`)).json()) as Record<string, unknown>;
    const layers = await Promise.all(manifest.layers.map(async (l) => Buffer.from(await (await get(`blobs/${l.digest}`)).arrayBuffer())));
    images.push({ platform: [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/'), manifest, config, layers });
  }
  return { digest, mediaType, index, images };
}
