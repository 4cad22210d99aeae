/**
 * Issue 21, as a CI job uses `gantry build`: the digest a push reports, the progress a person
 * and a machine read (pulls, steps, outputs, the total time, JSON events with warnings and the
 * error), buildx's flags (--pull, -q, --check, --annotation, --add-host, --secret env=,
 * BUILDKIT_PROGRESS, -o type=tar and standard output), the errors that must say what went wrong
 * and where, and Ctrl-C in a real terminal (tmux).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { freePort, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { mountsUnder, processesWith, waitForNoProcesses } from '../helpers/faults.js';
import { haveTool } from '../helpers/tools.js';
import { serveLoopback } from '../helpers/http.js';

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-ci-'));
const root = path.join(work, 'store');
let reg: TestRegistry;
let base: string;

const g = (args: string[], options: { store?: string; env?: Record<string, string>; cwd?: string } = {}) =>
  execa(bin, ['--root', options.store ?? root, ...args], { reject: false, env: { NO_COLOR: '1', CI: 'true', ...options.env }, cwd: options.cwd ?? work, encoding: 'buffer' }).then((r) => ({
    ...r,
    stdout: Buffer.from(r.stdout as Uint8Array).toString('utf8'),
    stdoutBytes: Buffer.from(r.stdout as Uint8Array),
    stderr: Buffer.from(r.stderr as Uint8Array).toString('utf8'),
  }));
const fresh = (): string => path.join(mkdtempSync(path.join(work, 's-')), 'store');
let contexts = 0;
function context(files: Record<string, string>): string {
  const dir = path.join(work, `ctx-${++contexts}`);
  execFileSync('mkdir', ['-p', dir]);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}
const insecure = (): string[] => ['--insecure-registry', reg.host];
const jsonLines = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });

beforeAll(async () => {
  const started = await startRegistry();
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  symlinkSync('busybox', path.join(rootfs, 'bin', 'sleep'));
  const imported = await g(['import', tarDir(rootfs, path.join(work, 'base.tgz')), 'base:1']);
  expect(imported.exitCode, imported.stderr).toBe(0);
  base = `${reg.host}/lib/base:1`;
  const pushed = await g(['push', ...insecure(), 'base:1', base]);
  expect(pushed.exitCode, pushed.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('the digest of a pushed image', () => {
  test('--metadata-file and inspect give the digest the registry holds, and name@digest pulls', async () => {
    const ctx = context({ Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: 'a\n' });
    const meta = path.join(work, 'meta.json');
    const r = await g(['build', ...insecure(), '-t', `${reg.host}/app:1`, '--push', '--metadata-file', meta, ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(meta, 'utf8')) as Record<string, { digest: string; size: number; mediaType: string } | string>;
    const digest = m['containerimage.digest'] as string;
    expect(m['image.name']).toBe(`${reg.host}/app:1`);
    expect(m['containerimage.config.digest']).toBe(r.stdout.trim());
    // The registry serves that digest, and its bytes hash to it.
    const res = await fetch(`http://${reg.host}/v2/app/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(`sha256:${createHash('sha256').update(body).digest('hex')}`).toBe(digest);
    expect(m['containerimage.descriptor']).toEqual({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: body.length });
    const info = JSON.parse((await g(['inspect', `${reg.host}/app:1`])).stdout)[0] as { RepoDigests: string[]; Descriptor: { digest: string } };
    expect(info.RepoDigests).toEqual([`${reg.host}/app@${digest}`]);
    // The store keeps the image uncompressed: its own manifest differs from the registry's.
    expect(info.Descriptor.digest).not.toBe(digest);
    const pulled = await g(['pull', ...insecure(), `${reg.host}/app@${digest}`], { store: fresh() });
    expect(pulled.exitCode, pulled.stderr).toBe(0);
  });

  test('an image only built has no RepoDigests; a pulled one has the digest it was pulled by', async () => {
    const ctx = context({ Dockerfile: 'FROM base:1\nCOPY a /b\n', a: 'b\n' });
    expect((await g(['build', '-t', 'local:1', ctx])).exitCode).toBe(0);
    expect(JSON.parse((await g(['inspect', 'local:1'])).stdout)[0].RepoDigests).toEqual([]);
    const store = fresh();
    expect((await g(['pull', ...insecure(), base], { store })).exitCode).toBe(0);
    const info = JSON.parse((await g(['inspect', base], { store })).stdout)[0] as { RepoDigests: string[]; Descriptor: { digest: string } };
    expect(info.RepoDigests).toEqual([`${reg.host}/lib/base@${info.Descriptor.digest}`]);
  });
});

describe('progress', () => {
  test('plain: the pull, the steps, the push, then the total time', async () => {
    const ctx = context({ Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: 'plain\n' });
    const r = await g(['build', '--progress', 'plain', ...insecure(), '-t', `${reg.host}/app:plain`, '--push', ctx], { store: fresh() });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toBe(`#0 building with gantry 0.1.0: context ${ctx}`);
    expect(lines).toContain(`#0 pulling ${base}`);
    expect(lines.some((l) => new RegExp(`^#0 pulled ${base}: 1 layers, [\\d.]+ [kM]B in [\\d.]+s$`).test(l)), r.stderr).toBe(true);
    expect(lines).toContain('#1 [2/2] COPY a /a');
    expect(lines).toContain(`#0 pushing ${reg.host}/app:plain`);
    expect(lines.some((l) => new RegExp(`^#0 pushing ${reg.host}/app:plain: DONE [\\d.]+s$`).test(l))).toBe(true);
    // Each blob as the registry has it: the new layer and the config uploaded, the base's taken from where it is.
    const blobs = lines.filter((l) => l.startsWith(`#0 pushing ${reg.host}/app:plain: sha256:`));
    expect(blobs, r.stderr).toHaveLength(3);
    for (const l of blobs) expect(l).toMatch(/: sha256:[0-9a-f]{64} (uploaded|mounted|exists)$/);
    expect(blobs.filter((l) => l.endsWith(' uploaded')).length).toBeGreaterThanOrEqual(2);
    expect(lines.at(-1)).toMatch(/^\[\+\] Building [\d.]+s \(1\/1\) FINISHED$/);
    // The order a person reads: pull, step, push, total.
    const at = (s: string): number => lines.findIndex((l) => l.startsWith(s));
    expect(at('#0 pulling')).toBeLessThan(at('#1 '));
    expect(at('#1 ')).toBeLessThan(at('#0 pushing'));
  });

  test('--pull pulls a base the store has; without it the store serves', async () => {
    const ctx = context({ Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: 'pull\n' });
    const store = fresh();
    expect((await g(['build', ...insecure(), ctx], { store })).stderr).toContain('#0 pulling');
    expect((await g(['build', ...insecure(), ctx], { store })).stderr).not.toContain('#0 pulling');
    const again = await g(['build', '--pull', ...insecure(), ctx], { store });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toContain(`#0 pulling ${base}`);
  });

  test('json: one object a line, warnings and the end included', async () => {
    const ctx = context({ Dockerfile: 'FROM base:1\nENV PASSWORD=x\nCOPY a /a\n', a: 'json\n' });
    const r = await g(['build', '--progress', 'json', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const events = jsonLines(r.stderr);
    expect(events[0]).toEqual({ type: 'start', version: '0.1.0', context: ctx });
    expect(events).toContainEqual(expect.objectContaining({ type: 'warning', rule: 'SecretsUsedInArgOrEnv', location: expect.objectContaining({ line: 2 }) }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'step', name: '[2/2] COPY a /a', status: 'start' }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'image', configDigest: r.stdout.trim() }));
    expect(events.at(-1)).toEqual({ type: 'finished', seconds: expect.any(Number) });
  });

  test('json: a failed build ends with an error event, and nothing but JSON is printed', async () => {
    const ctx = context({ Dockerfile: `FROM ${reg.host}/lib/nothing:1\n` });
    const r = await g(['build', '--progress', 'json', ...insecure(), ctx]);
    expect(r.exitCode).toBe(1);
    const events = jsonLines(r.stderr);
    const last = events.at(-1) as { type: string; code: string; message: string };
    expect(last).toMatchObject({ type: 'error', code: 'REGISTRY_NOT_FOUND' });
    expect(last.message).toContain(`Dockerfile:1: image ${reg.host}/lib/nothing:1 not found`);
  });

  test('BUILDKIT_PROGRESS picks the mode when --progress is not given; rawjson is refused', async () => {
    const ctx = context({ Dockerfile: 'FROM base:1\nCOPY a /a\n', a: 'env\n' });
    const r = await g(['build', ctx], { env: { BUILDKIT_PROGRESS: 'json' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(jsonLines(r.stderr).at(-1)).toMatchObject({ type: 'finished' });
    const plain = await g(['build', '--progress', 'plain', ctx], { env: { BUILDKIT_PROGRESS: 'json' } });
    expect(plain.stderr).toMatch(/FINISHED$/);
    const raw = await g(['build', ctx], { env: { BUILDKIT_PROGRESS: 'rawjson' } });
    expect(raw.exitCode).toBe(2);
    expect(raw.stderr).toContain('BUILDKIT_PROGRESS rawjson');
  });

  test('-q prints the image ID and nothing else', async () => {
    const ctx = context({ Dockerfile: 'FROM base:1\nCOPY a /a\n', a: 'quiet\n' });
    const r = await g(['build', '-q', ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(r.stderr).toBe('');
  });
});

describe('buildx flags', () => {
  test('--check runs the build checks only: BuildKit\'s summary, exit 1 on a warning', async () => {
    const warned = context({ Dockerfile: 'FROM base:1\nENV PASSWORD=x\ncopy a /a\n', a: '' });
    const store = fresh();
    const r = await g(['build', '--check', warned], { store });
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain('Check complete, 2 warnings have been found!');
    expect(r.stdout).toContain('SecretsUsedInArgOrEnv');
    expect(r.stdout).toContain('ConsistentInstructionCasing');
    expect(existsSync(path.join(store, 'index.json'))).toBe(false); // nothing built
    const clean = await g(['build', '--check', context({ Dockerfile: 'FROM base:1\n' })], { store });
    expect(clean.exitCode).toBe(0);
    expect(clean.stdout).toContain('Check complete, no warnings found.');
  });

  test('--annotation sets the manifest\'s annotations (kept when pushed); index: is refused', async () => {
    const ctx = context({ Dockerfile: 'FROM base:1\nCOPY a /a\n', a: 'annotated\n' });
    const meta = path.join(work, 'annotated.json');
    const r = await g(['build', ...insecure(), '--annotation', 'org.opencontainers.image.source=https://example.test/app', '--annotation', 'manifest:dev.example.k=v', '-t', `${reg.host}/annotated:1`, '--push', '--metadata-file', meta, ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    const digest = (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'] as string;
    const res = await fetch(`http://${reg.host}/v2/annotated/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const manifest = (await res.json()) as { annotations?: Record<string, string> };
    expect(manifest.annotations).toEqual({ 'org.opencontainers.image.source': 'https://example.test/app', 'dev.example.k': 'v' });
    const bad = await g(['build', '--annotation', 'index:a=b', ctx]);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('index annotations need a multi-platform index');
  });

  test('--add-host and --secret env= reach RUN; the secret is never on a command line', async () => {
    const ctx = context({
      Dockerfile: 'FROM base:1\nRUN --mount=type=secret,id=tok,target=/run/tok cat /etc/hosts /run/tok > /out.txt\n',
    });
    const out = path.join(work, 'hosts-out');
    const r = await g(['build', '--add-host', 'db.example.test:10.1.2.3', '--secret', 'id=tok,env=GANTRY_TEST_TOKEN', '-o', `type=local,dest=${out}`, ctx], {
      env: { GANTRY_TEST_TOKEN: 'token-from-env' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const text = readFileSync(path.join(out, 'out.txt'), 'utf8');
    expect(text).toMatch(/^10\.1\.2\.3\s+db\.example\.test$/m);
    expect(text).toContain('token-from-env');
    const unset = await g(['build', '--no-cache', '--secret', 'id=tok,env=GANTRY_TEST_UNSET', ctx]);
    expect(unset.exitCode).toBe(2);
    expect(unset.stderr).toContain('GANTRY_TEST_UNSET is not set');
    const badHost = await g(['build', '--add-host', 'x:not-an-ip', ctx]);
    expect(badHost.exitCode).toBe(2);
  });

  test('-o type=tar writes the files as a tar; -o - sends it to standard output without the ID', async () => {
    const ctx = context({ Dockerfile: 'FROM scratch\nCOPY a /dir/a\n', a: 'tar\n' });
    const file = path.join(work, 'files.tar');
    const r = await g(['build', '-o', `type=tar,dest=${file}`, ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(execFileSync('tar', ['-tf', file], { encoding: 'utf8' }).split('\n')).toContain('dir/a');
    const s = await g(['build', '-o', '-', ctx]);
    expect(s.exitCode, s.stderr).toBe(0);
    const listed = execFileSync('tar', ['-t'], { input: s.stdoutBytes, encoding: 'utf8' });
    expect(listed.split('\n')).toContain('dir/a');
    expect(s.stdout).not.toContain('sha256:');
  });
});

describe('errors that say what and where', () => {
  test('a base image the registry lacks: the Dockerfile line and "not found"', async () => {
    const ctx = context({ Dockerfile: `FROM scratch\nFROM ${reg.host}/lib/missing:1\n` });
    const r = await g(['build', ...insecure(), ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`Dockerfile:2: image ${reg.host}/lib/missing:1 not found in its registry`);
  });

  test('a registry nothing listens on: "cannot reach the registry"', async () => {
    const port = await freePort();
    const ctx = context({ Dockerfile: `FROM 127.0.0.1:${port}/x:1\n` });
    const r = await g(['build', '--insecure-registry', `127.0.0.1:${port}`, ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`Dockerfile:1: cannot reach the registry 127.0.0.1:${port}`);
    expect(r.stderr).not.toContain('internal error');
  });

  test('ADD of a URL nothing answers: an error at its line naming the URL, no internal error', async () => {
    const port = await freePort();
    const ctx = context({ Dockerfile: `FROM scratch\nADD http://127.0.0.1:${port}/file.txt /f\n` });
    const r = await g(['build', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`Dockerfile:2: ADD: cannot fetch http://127.0.0.1:${port}/file.txt`);
    expect(r.stderr).not.toContain('internal error');
  });

  test('COPY --from a mistyped stage: did you mean the stage', async () => {
    const ctx = context({ Dockerfile: `FROM base:1 AS build\nFROM base:1\nCOPY --from=buidl /a /a\n` });
    const r = await g(['build', ctx], { env: { GANTRY_LOOPBACK_ONLY: '1' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('Dockerfile:3');
    expect(r.stderr).toContain('no stage is named "buidl"; did you mean the stage "build"?');
  });

  test('a context directory that does not exist; an output with no type', async () => {
    const missing = await g(['build', '-f', path.join(context({ Dockerfile: 'FROM scratch\n' }), 'Dockerfile'), path.join(work, 'no-such-dir')]);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`build context ${path.join(work, 'no-such-dir')}: no such directory`);
    const untyped = await g(['build', '-o', 'dest=x', context({ Dockerfile: 'FROM scratch\n' })]);
    expect(untyped.exitCode).toBe(2);
    expect(untyped.stderr).toContain('no type=');
  });

  test('a push with wrong credentials: authentication failed, the registry named', async () => {
    const secured = await startRegistry({ basic: { username: 'ci', password: 'right' } });
    if (!secured) throw new Error('docker-registry is not installed');
    try {
      const config = mkdtempSync(path.join(work, 'docker-config-'));
      writeFileSync(path.join(config, 'config.json'), JSON.stringify({ auths: { [secured.host]: { auth: Buffer.from('ci:wrong').toString('base64') } } }));
      const ctx = context({ Dockerfile: 'FROM base:1\nCOPY a /a\n', a: 'auth\n' });
      const r = await g(['build', '--insecure-registry', secured.host, '-t', `${secured.host}/app:1`, '--push', ctx], { env: { DOCKER_CONFIG: config } });
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`authentication failed: ${secured.host} did not accept the credentials`);
    } finally {
      await secured.stop();
    }
  });
});

/** A shell command line for tmux from words. */
const sh = (words: string[]): string => words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');

/** The text of a tmux pane, polled until `until` matches it (or the deadline passes: then the test fails with the pane). */
async function paneUntil(session: string, until: RegExp, ms = 60_000): Promise<string> {
  const deadline = Date.now() + ms;
  for (;;) {
    const text = execFileSync('tmux', ['capture-pane', '-p', '-J', '-S', '-200', '-t', session], { encoding: 'utf8' });
    if (until.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`tmux pane never showed ${until}:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('in a real terminal (tmux)', () => {
  beforeAll(() => {
    if (!haveTool('tmux')) throw new Error('tmux is not installed');
  });

  test('the spinners show the pull, the steps and the push with times, and the total', async () => {
    const session = `gantry-tty-${process.pid}`;
    const ctx = context({ Dockerfile: `FROM ${base}\nCOPY a /a\nRUN echo built\n`, a: 'tty\n' });
    const cmd = sh([bin, '--root', fresh(), 'build', ...insecure(), '-t', `${reg.host}/app:tty`, '--push', ctx]);
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '150', '-y', '50', `${cmd}; echo EXIT=$?; sleep 600`], { env: { ...process.env, CI: '', NO_COLOR: '1' } });
    try {
      const text = await paneUntil(session, /EXIT=\d+/);
      expect(text, text).toContain('EXIT=0');
      expect(text).toMatch(new RegExp(`pulled ${base}: 1 layers, [\\d.]+ [kM]B [\\d.]+s`));
      expect(text).toMatch(/#1 \[2\/3\] COPY a \/a [\d.]+s|#1 \[2\/3\] COPY a \/a\s*$/m);
      expect(text).toMatch(/#2 \[3\/3\] RUN echo built [\d.]+s/);
      expect(text).toMatch(new RegExp(`pushing ${reg.host}/app:tty [\\d.]+s`));
      expect(text).toContain('[+] Building with gantry 0.1.0: context');
      expect(text).toMatch(/\[\+\] Building [\d.]+s \(2\/2\) FINISHED/);
    } finally {
      execFileSync('tmux', ['kill-session', '-t', session]);
    }
  });

  test('Ctrl-C cancels: it says so, exits 130, and leaves no mount, temp tree or process', async () => {
    const session = `gantry-cancel-${process.pid}`;
    const mark = `gantry-cancel-${process.pid}-${Date.now()}`;
    const store = fresh();
    const ctx = context({ Dockerfile: `FROM base:1\nRUN echo started-${mark} && sleep 1000 && echo ${mark}\n` });
    // The store needs the base: saved from the suite's store and loaded.
    const archive = path.join(work, 'base.tar');
    expect((await g(['save', '-o', archive, 'base:1'])).exitCode).toBe(0);
    expect((await g(['load', '-i', archive], { store })).exitCode).toBe(0);
    const cmd = sh([bin, '--root', store, 'build', '--no-cache', ctx]);
    execFileSync('tmux', ['new-session', '-d', '-s', session, '-x', '150', '-y', '50', `${cmd}; echo EXIT=$?; sleep 600`], { env: { ...process.env, CI: '', NO_COLOR: '1' } });
    try {
      await paneUntil(session, new RegExp(`started-${mark}`));
      execFileSync('tmux', ['send-keys', '-t', session, 'C-c']);
      const text = await paneUntil(session, /EXIT=\d+/);
      expect(text).toContain('EXIT=130');
      expect(text).toContain('error: build cancelled');
      expect(text).toMatch(/\[\+\] Building [\d.]+s \(\d+\/1\) CANCELED/);
      expect(await waitForNoProcesses(mark)).toEqual([]);
      expect(mountsUnder(store)).toEqual([]);
      const tmp = path.join(store, 'tmp');
      expect(existsSync(tmp) ? readdirSync(tmp).filter((n) => !n.startsWith('stat')) : []).toEqual([]);
      expect(processesWith(mark)).toEqual([]);
    } finally {
      execFileSync('tmux', ['kill-session', '-t', session]);
    }
  });
});

describe('cancelling through the API while a base is pulled', () => {
  /** A registry stand-in whose one layer trickles forever; it tells when the layer is asked for and what was asked. */
  async function tricklingRegistry(): Promise<{ host: string; layerAsked: Promise<void>; requests: string[]; close: () => void }> {
    const layer = Buffer.alloc(1024);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${createHash('sha256').update(layer).digest('hex')}`] }, config: {} }));
    const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: 10 * 1024 * 1024 }],
      }),
    );
    const requests: string[] = [];
    let asked!: () => void;
    const layerAsked = new Promise<void>((r) => (asked = r));
    const timers = new Set<NodeJS.Timeout>();
    const { host, server } = await serveLoopback((req, res) => {
      requests.push(`${req.method} ${req.url}`);
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.url?.includes('/manifests/')) return void res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': sha(manifest) }).end(req.method === 'HEAD' ? undefined : manifest);
      if (req.url?.endsWith(sha(config))) return void res.writeHead(200).end(config);
      // The layer: a byte now and then, never the whole of it.
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      asked();
      const t = setInterval(() => res.write(Buffer.alloc(1)), 200);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    });
    return {
      host,
      layerAsked,
      requests,
      close: () => {
        for (const t of timers) clearInterval(t);
        server.closeAllConnections();
        server.close();
      },
    };
  }

  test('an abort during the pull stops it at once; an already-aborted signal pulls nothing', async () => {
    const { build } = await import('../../src/index.js');
    const trickle = await tricklingRegistry();
    try {
      const ctx = context({ Dockerfile: `FROM ${trickle.host}/slow:1\nRUN true\n` });
      const controller = new AbortController();
      const store = fresh();
      const running = build({ root: store, context: ctx, insecureRegistries: [trickle.host], signal: controller.signal });
      const outcome = running.then(
        () => 'finished',
        (err: unknown) => err,
      );
      // The pull is under way (the layer asked for, never finished): abort, and the build ends
      // with the abort's reason rather than the registry's slow answer.
      await Promise.race([trickle.layerAsked, outcome]);
      controller.abort(new Error('stop now'));
      expect(((await outcome) as Error).message).toBe('stop now');

      const before = trickle.requests.length;
      const aborted = new AbortController();
      aborted.abort(new Error('never started'));
      await expect(build({ root: fresh(), context: ctx, insecureRegistries: [trickle.host], signal: aborted.signal })).rejects.toThrow('never started');
      expect(trickle.requests.length).toBe(before);
    } finally {
      trickle.close();
    }
  });
});

describe('a context from standard input', () => {
  const gIn = (args: string[], input: Buffer) =>
    execa(bin, ['--root', root, ...args], { reject: false, input, env: { NO_COLOR: '1', CI: 'true' }, cwd: work });

  test('a Dockerfile on standard input builds with an empty context', async () => {
    const out = path.join(work, 'stdin-df');
    const r = await gIn(['build', '-o', `type=local,dest=${out}`, '-'], Buffer.from('FROM scratch\nCOPY . /ctx/\nLABEL from=stdin\n'));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readdirSync(path.join(out, 'ctx'))).toEqual([]);
  });

  test('a gzip tar on standard input is the context; -f names a Dockerfile inside it', async () => {
    const src = context({ a: 'from the tar\n' });
    execFileSync('mkdir', ['-p', path.join(src, 'sub')]);
    writeFileSync(path.join(src, 'sub', 'Dockerfile.ci'), 'FROM scratch\nCOPY a /a\n');
    const tgz = path.join(work, 'ctx.tgz');
    execFileSync('tar', ['-czf', tgz, '-C', src, '.']);
    const out = path.join(work, 'stdin-tar');
    const r = await gIn(['build', '-f', 'sub/Dockerfile.ci', '-o', `type=local,dest=${out}`, '-'], readFileSync(tgz));
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'a'), 'utf8')).toBe('from the tar\n');
  });

  test('a tar whose member climbs out is refused, nothing written outside', async () => {
    const evil = path.join(work, 'evil');
    execFileSync('mkdir', ['-p', path.join(evil, 'in')]);
    writeFileSync(path.join(evil, 'in', 'Dockerfile'), 'FROM scratch\n');
    // A member that would land in /tmp itself from any depth of temp directory (GNU tar keeps ../ with -P).
    const name = `escaped-by-gantry-${process.pid}`;
    const target = path.join(tmpdir(), name);
    writeFileSync(target, 'x');
    const tarFile = path.join(work, 'evil.tar');
    const climb = `${'../'.repeat(12)}${target.slice(1)}`;
    execFileSync('tar', ['-cPf', tarFile, '-C', path.join(evil, 'in'), 'Dockerfile', climb]);
    rmSync(target);
    expect(execFileSync('tar', ['-tPf', tarFile], { encoding: 'utf8' })).toContain(climb);
    const r = await gIn(['build', '-'], readFileSync(tarFile));
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('climbs out of the root');
    expect(existsSync(target)).toBe(false);
  });

  test('the context and the Dockerfile cannot both come from standard input', async () => {
    const r = await gIn(['build', '-f', '-', '-'], Buffer.from('FROM scratch\n'));
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('cannot both be read from standard input');
  });
});

describe('how layers leave: compression and media types', () => {
  const manifestOf = async (repo: string, digest: string) => {
    const res = await fetch(`http://${reg.host}/v2/${repo}/manifests/${digest}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(res.status).toBe(200);
    return (await res.json()) as { mediaType: string; config: { mediaType: string }; layers: { mediaType: string; digest: string }[] };
  };
  const pushWith = async (format: string, tag: string) => {
    const ctx = context({ Dockerfile: `FROM ${base}\nCOPY a /a\n`, a: `${tag}\n` });
    const meta = path.join(work, `${tag}.json`);
    const store = fresh();
    const r = await g(['build', ...insecure(), '-o', `type=registry,name=${reg.host}/fmt:${tag},${format}`, '--metadata-file', meta, ctx], { store });
    expect(r.exitCode, r.stderr).toBe(0);
    return manifestOf('fmt', (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'] as string);
  };
  const gzipLayer = 'application/vnd.oci.image.layer.v1.tar+gzip';
  const zstdLayer = 'application/vnd.oci.image.layer.v1.tar+zstd';

  test('zstd: the built layer is zstd, the pulled base keeps gzip unless forced', async () => {
    const kept = await pushWith('compression=zstd,compression-level=19', 'zstd');
    expect(kept.layers.map((l) => l.mediaType)).toEqual([gzipLayer, zstdLayer]);
    const forced = await pushWith('compression=zstd,force-compression=true', 'zstd-forced');
    expect(forced.layers.map((l) => l.mediaType)).toEqual([zstdLayer, zstdLayer]);
  });

  test('an image with zstd layers is a base like any other, and exports', async () => {
    const store = fresh();
    const ctx = context({ Dockerfile: `FROM ${reg.host}/fmt:zstd-forced\nCOPY b /b\n`, b: 'on zstd\n' });
    const out = path.join(work, 'on-zstd');
    const r = await g(['build', ...insecure(), '-o', `type=local,dest=${out}`, ctx], { store });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'a'), 'utf8')).toBe('zstd-forced\n');
    expect(readFileSync(path.join(out, 'bin', 'busybox')).length).toBeGreaterThan(0);
    const exported = await g(['export', `${reg.host}/fmt:zstd-forced`, '-o', '-'], { store });
    expect(exported.exitCode, exported.stderr).toBe(0);
    expect(execFileSync('tar', ['-t'], { input: exported.stdoutBytes, encoding: 'utf8' }).split('\n')).toContain('a');
  });

  test('uncompressed, and Docker media types with oci-mediatypes=false', async () => {
    const plain = await pushWith('compression=uncompressed,force-compression=true', 'tar');
    expect(plain.layers.map((l) => l.mediaType)).toEqual(['application/vnd.oci.image.layer.v1.tar', 'application/vnd.oci.image.layer.v1.tar']);
    const docker = await pushWith('oci-mediatypes=false', 'docker');
    expect(docker.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(docker.config.mediaType).toBe('application/vnd.docker.container.image.v1+json');
    expect(docker.layers.map((l) => l.mediaType)).toEqual(['application/vnd.docker.image.rootfs.diff.tar.gzip', 'application/vnd.docker.image.rootfs.diff.tar.gzip']);
    // zstd has no Docker media type: OCI's are used all the same, as BuildKit does.
    const zstdDocker = await pushWith('compression=zstd,force-compression=true,oci-mediatypes=false', 'zstd-docker');
    expect(zstdDocker.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(zstdDocker.layers.map((l) => l.mediaType)).toEqual([zstdLayer, zstdLayer]);
  });

  test('what BuildKit cannot write either is refused before the build', async () => {
    const ctx = context({ Dockerfile: 'FROM scratch\n' });
    for (const [spec, why] of [
      ['type=oci,dest=x.tar,compression=gzip,compression-level=12', 'gzip takes 0 to 9'],
      ['type=oci,dest=x.tar,compression=estargz', 'eStargz is not supported'],
      ['type=local,dest=x,compression=gzip', 'does not take compression='],
    ] as const) {
      const r = await g(['build', '-o', spec, ctx]);
      expect(r.exitCode, spec).toBe(2);
      expect(r.stderr, spec).toContain(why);
    }
  });
});

describe('--shm-size and --ulimit', () => {
  const ctx = (): string =>
    context({ Dockerfile: 'FROM base:1\nRUN cat /proc/self/limits > /limits; cat /proc/mounts > /mounts\n' });

  test('the oci isolation: /dev/shm has the size, the limits are set (unlimited too)', async () => {
    const out = path.join(work, 'limits-oci');
    const r = await g(['build', '--isolation', 'oci', '--shm-size', '128m', '--ulimit', 'nofile=1000:2000', '--ulimit', 'core=-1', '-o', `type=local,dest=${out}`, ctx()]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'limits'), 'utf8')).toMatch(/^Max open files\s+1000\s+2000\s+files/m);
    expect(readFileSync(path.join(out, 'limits'), 'utf8')).toMatch(/^Max core file size\s+unlimited\s+unlimited\s+bytes/m);
    expect(readFileSync(path.join(out, 'mounts'), 'utf8')).toMatch(/^shm \/dev\/shm tmpfs \S*size=131072k/m);
  });

  test('the chroot isolation: the limits are set; --shm-size is refused there', async () => {
    const out = path.join(work, 'limits-chroot');
    // No /proc in the chroot isolation: the shell's ulimit reads the limits.
    const chrooted = context({ Dockerfile: 'FROM base:1\nRUN ulimit -u > /soft; ulimit -H -u > /hard\n' });
    const r = await g(['build', '--isolation', 'chroot', '--ulimit', 'nproc=500:600', '-o', `type=local,dest=${out}`, chrooted]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'soft'), 'utf8').trim()).toBe('500');
    expect(readFileSync(path.join(out, 'hard'), 'utf8').trim()).toBe('600');
    const shm = await g(['build', '--isolation', 'chroot', '--no-cache', '--shm-size', '1g', ctx()]);
    expect(shm.exitCode).toBe(1);
    expect(shm.stderr).toContain('--shm-size sizes the /dev/shm a RUN mounts');
  });

  test('a changed limit runs the RUN again (part of its cache key); bad values are refused', async () => {
    const c = ctx();
    expect((await g(['build', '--ulimit', 'nofile=1100', c])).exitCode).toBe(0);
    expect((await g(['build', '--progress', 'plain', '--ulimit', 'nofile=1100', c])).stderr).toContain('CACHED');
    expect((await g(['build', '--progress', 'plain', '--ulimit', 'nofile=1200', c])).stderr).not.toContain('CACHED');
    for (const bad of [['--ulimit', 'nofiles=1'], ['--ulimit', 'nofile=10:5'], ['--shm-size', 'lots']]) {
      const r = await g(['build', ...bad, c]);
      expect(r.exitCode, bad.join(' ')).toBe(2);
    }
  });
});

describe('--build-context', () => {
  test('an image name replaced by another image; a directory read by COPY --from, with its .dockerignore', async () => {
    const dir = context({ 'tool.txt': 'from the named dir\n', secret: 'left out\n', '.dockerignore': 'secret\n' });
    const ctx = context({ Dockerfile: 'FROM alpine:3.99\nCOPY --from=tools /tool.txt /\nCOPY --from=tools / /all/\n' });
    const out = path.join(work, 'named-out');
    const r = await g(['build', '--build-context', 'alpine:3.99=docker-image://base:1', '--build-context', `tools=${dir}`, '-o', `type=local,dest=${out}`, ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'tool.txt'), 'utf8')).toBe('from the named dir\n');
    expect(existsSync(path.join(out, 'bin', 'busybox'))).toBe(true); // base:1's files
    expect(existsSync(path.join(out, 'all', 'secret'))).toBe(false);
  });

  test('a layout named by tag; what a directory cannot be is refused at its line', async () => {
    const layoutCtx = context({ Dockerfile: 'FROM scratch\nCOPY a /from-layout\n', a: 'layout\n' });
    const layout = path.join(work, 'named-layout');
    expect((await g(['build', '-t', 'lay:v2', '-o', `type=oci,dest=${layout},tar=false`, layoutCtx])).exitCode).toBe(0);
    const ctx = context({ Dockerfile: 'FROM scratch\nCOPY --from=thing /from-layout /got\n' });
    const out = path.join(work, 'named-layout-out');
    const r = await g(['build', '--build-context', `thing=oci-layout://${layout}:v2`, '-o', `type=local,dest=${out}`, ctx]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(out, 'got'), 'utf8')).toBe('layout\n');
    const missing = await g(['build', '--build-context', `thing=oci-layout://${layout}:v9`, ctx]);
    expect(missing.exitCode).toBe(1);
    expect(missing.stderr).toContain('no image tagged v9 in the layout');

    const dir = context({ f: 'x' });
    const from = await g(['build', '--build-context', `thing=${dir}`, context({ Dockerfile: 'FROM thing\n' })]);
    expect(from.exitCode).toBe(1);
    expect(from.stderr).toMatch(/Dockerfile:1:.*the named context "thing" is a directory/);
    const mount = await g(['build', '--build-context', `thing=${dir}`, context({ Dockerfile: 'FROM base:1\nRUN --mount=from=thing,target=/t true\n' })]);
    expect(mount.exitCode).toBe(1);
    expect(mount.stderr).toMatch(/Dockerfile:2:.*RUN --mount cannot mount it yet/);
    for (const bad of ['nothing', 'x=', `x=${path.join(work, 'no-such-dir')}`, 'x=target:y']) {
      const r2 = await g(['build', '--build-context', bad, ctx]);
      expect(r2.exitCode, bad).toBe(2);
    }
  });
});

describe('hostile contexts, layouts and registries (review of issue 21)', () => {
  test('a Dockerfile cannot name an OCI layout on the host: oci-layout:// comes only from --build-context', async () => {
    const layoutCtx = context({ Dockerfile: 'FROM scratch\nCOPY a /secret\n', a: 'host data\n' });
    const layout = path.join(work, 'host-layout');
    expect((await g(['build', '-o', `type=oci,dest=${layout},tar=false`, layoutCtx])).exitCode).toBe(0);
    for (const df of [`FROM oci-layout://${layout}\n`, `FROM scratch\nCOPY --from=oci-layout://${layout} /secret /got\n`]) {
      const r = await g(['build', context({ Dockerfile: df })]);
      expect(r.exitCode, df).toBe(1);
      expect(r.stderr).toContain('an OCI layout is read only when --build-context names it');
    }
  });

  test('an OCI layout whose index names a digest that climbs out is refused before anything is read', async () => {
    const layout = path.join(work, 'evil-layout');
    execFileSync('mkdir', ['-p', path.join(layout, 'blobs', 'sha256')]);
    writeFileSync(path.join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    const evil = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:../../../../../../../../dev/zero', size: 10 };
    writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [evil] }));
    const ctx = context({ Dockerfile: 'FROM base\n' });
    const r = await g(['build', '--build-context', `base=oci-layout://${layout}`, ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/index\.json: manifests\[0\]: .*digest/);
    // Not JSON, or a manifest entry that is an index: errors naming the layout, never exit 70.
    writeFileSync(path.join(layout, 'index.json'), '{"schemaVersion": 2, "manifests": [');
    const broken = await g(['build', '--build-context', `base=oci-layout://${layout}`, ctx]);
    expect(broken.exitCode).toBe(1);
    expect(broken.stderr).toContain('index.json is not valid JSON');
  });

  test('a remote context whose Dockerfile or .dockerignore links out of it, or is a FIFO: refused, nothing read from the host', async () => {
    const src = context({ a: 'a\n' });
    execFileSync('ln', ['-s', '/etc/shadow', path.join(src, 'Dockerfile')]);
    const tarFile = path.join(work, 'link-df.tar');
    execFileSync('tar', ['-cf', tarFile, '-C', src, '.']);
    const r = await execa(bin, ['--root', root, 'build', '-'], { reject: false, input: readFileSync(tarFile), env: { CI: 'true' } });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('the context has no Dockerfile');
    expect(r.stderr).not.toContain('root:');
    // A local context: the default Dockerfile is read inside it too.
    const local = await g(['build', src]);
    expect(local.exitCode).toBe(2);
    expect(local.stderr).toContain('a link that leads outside the context');
    // A .dockerignore that is a FIFO: an error at once, not a wait for a writer.
    const fifo = context({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a\n' });
    execFileSync('mkfifo', [path.join(fifo, '.dockerignore')]);
    const f = await g(['build', fifo]);
    expect(f.exitCode).toBe(2);
    expect(f.stderr).toContain('.dockerignore is not a regular file');
  });

  test('credentials in a context URL are never printed', async () => {
    const port = await freePort();
    const url = `http://ci:s3cret-token@127.0.0.1:${port}/ctx.tar`;
    for (const mode of ['plain', 'json']) {
      const r = await g(['build', '--progress', mode, url]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).not.toContain('s3cret-token');
      expect(r.stderr).toContain('http://***@127.0.0.1');
    }
    const named = await g(['build', '--build-context', `x=${url}`, context({ Dockerfile: 'FROM scratch\n' })]);
    expect(named.exitCode).toBe(1);
    expect(named.stderr).not.toContain('s3cret-token');
  });

  test('a URL named context that is not an archive is one file named context, as BuildKit fetches it', async () => {
    const { host, server } = await serveLoopback((_req, res) => void res.writeHead(200).end('{"a":1}\n'));
    try {
      const ctx = context({ Dockerfile: 'FROM scratch\nCOPY --from=data context /data.json\n' });
      const out = path.join(work, 'named-url');
      const r = await g(['build', '--build-context', `data=http://${host}/data.json`, '-o', `type=local,dest=${out}`, ctx]);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(readFileSync(path.join(out, 'data.json'), 'utf8')).toBe('{"a":1}\n');
    } finally {
      server.close();
    }
  });

  test('a registry answering an error with an endless body: the error said, the body not read to its end', async () => {
    const { host, server } = await serveLoopback((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      res.writeHead(404, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const more = (): void => {
        while (res.write(chunk));
        res.once('drain', more);
      };
      more();
      res.on('close', () => res.removeAllListeners('drain'));
    });
    try {
      const ctx = context({ Dockerfile: `FROM ${host}/endless:1\n` });
      const r = await g(['build', '--insecure-registry', host, ctx]);
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toContain(`image ${host}/endless:1 not found in its registry`);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test('--metadata-file in a directory that does not exist: an error naming it, not an internal error; -o refused in JSON mode is a JSON line', async () => {
    const ctx = context({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'm\n' });
    const r = await g(['build', '--metadata-file', path.join(work, 'no-dir', 'm.json'), ctx]);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`cannot write ${path.join(work, 'no-dir', 'm.json')}: ${path.join(work, 'no-dir')} does not exist`);
    expect(r.stderr).toContain('ERROR');
    const json = await g(['build', '--progress', 'json', '-o', 'type=zip,dest=x', ctx]);
    expect(json.exitCode).toBe(2);
    expect(jsonLines(json.stderr).at(-1)).toMatchObject({ type: 'error', code: 'OUTPUT_INVALID' });
  });

  test('an abort while a push is under way stops it at once', async () => {
    const { build } = await import('../../src/index.js');
    let uploading!: () => void;
    const started = new Promise<void>((r) => (uploading = r));
    // A registry that takes uploads and never answers them.
    const { host, server } = await serveLoopback((req, res) => {
      if (req.url === '/v2/') return void res.writeHead(200).end('{}');
      if (req.method === 'HEAD') return void res.writeHead(404).end();
      if (req.method === 'POST') return void res.writeHead(202, { location: `/v2/app/blobs/uploads/u${Math.random()}` }).end();
      uploading(); // PATCH or PUT: held
    });
    try {
      const ctx = context({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'push\n' });
      const controller = new AbortController();
      const outcome = build({ root: fresh(), context: ctx, tags: [`${host}/app:1`], push: true, insecureRegistries: [host], signal: controller.signal }).then(
        () => 'finished',
        (err: unknown) => err,
      );
      await Promise.race([started, outcome]);
      controller.abort(new Error('stop the push'));
      expect(((await outcome) as Error).message).toBe('stop the push');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
