import { execFileSync } from 'node:child_process';
import { createSign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { freePort, startRegistry, type TestRegistry, type TlsFiles } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { haveTool } from '../helpers/tools.js';

// (c) token auth: the registry trusts a certificate the test made; a token server the test
// runs on another loopback port signs JWTs for user bob.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-regc-'));
const root = path.join(work, 'store');
const dockerConfig = path.join(work, 'docker');
const g = (store: string, args: string[], input?: string) =>
  execa(bin, ['--root', store, ...args], { reject: false, env: { DOCKER_CONFIG: dockerConfig }, ...(input !== undefined ? { input } : {}) });
let reg: TestRegistry & { tls?: TlsFiles };
let tokenServer: Server;
const tokenRequests: { scope: string | null; user: string | null }[] = [];

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

beforeAll(async () => {
  haveTool('openssl');
  const key = path.join(work, 'token.key');
  const cert = path.join(work, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=gantry token issuer'], { stdio: 'ignore' });
  const der = new X509Certificate(readFileSync(cert)).raw;
  const pem = readFileSync(key, 'utf8');
  const port = await freePort();
  tokenServer = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization;
    let user = auth?.startsWith('Basic ') ? Buffer.from(auth.slice(6), 'base64').toString() : null;
    if (req.method === 'POST') {
      // OAuth2 refresh-token grant: docker's identitytoken.
      let body = '';
      for await (const c of req) body += c;
      const form = new URLSearchParams(body);
      for (const sc of form.getAll('scope')) url.searchParams.append('scope', sc);
      if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== 'idtok-bob') {
        res.writeHead(401).end('{"details":"bad refresh token"}');
        return;
      }
      user = 'bob:hunter2';
    }
    tokenRequests.push({ scope: url.searchParams.get('scope'), user });
    if (user !== null && user !== 'bob:hunter2') {
      res.writeHead(401).end('{"details":"bad credentials"}');
      return;
    }
    const access = (url.searchParams.getAll('scope').join(' ') || '')
      .split(' ')
      .filter(Boolean)
      .map((s) => {
        const [type, name, actions] = s.split(':');
        // Anonymous users may only pull.
        const granted = (actions ?? '').split(',').filter((a) => user !== null || a === 'pull');
        return { type, name, actions: granted };
      });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [der.toString('base64')] };
    const claims = { iss: 'gantry-test-issuer', sub: user?.split(':')[0] ?? '', aud: 'gantry-test-registry', exp: now + 300, nbf: now - 10, iat: now, jti: String(Math.random()), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(pem);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `${input}.${b64url(sig)}`, expires_in: 300 }));
  });
  await new Promise<void>((r) => tokenServer.listen(port, '127.0.0.1', r));
  const started = await startRegistry({
    tls: true,
    extraConfig: ['auth:', '  token:', `    realm: http://127.0.0.1:${port}/token`, '    service: gantry-test-registry', '    issuer: gantry-test-issuer', `    rootcertbundle: ${cert}`].join('\n'),
  });
  if (!started?.tls) throw new Error('docker-registry is not installed');
  reg = started;
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  expect((await g(root, ['import', tarDir(rootfs, path.join(work, 'base.tgz')), 'base:1'])).exitCode).toBe(0);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  tokenServer?.close();
  rmSync(work, { recursive: true, force: true });
});

describe('token auth', () => {
  test('anonymous push is refused by the registry', async () => {
    const r = await g(root, ['push', '--ca-cert', reg.tls?.ca ?? '', 'base:1', `${reg.host}/team/base:1`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/401|denied|unauthorized/i);
  });

  test('login, push, pull into an empty store with the same digest; tokens are cached per scope', async () => {
    const ca = reg.tls?.ca ?? '';
    const login = await g(root, ['login', '--ca-cert', ca, '-u', 'bob', '--password-stdin', reg.host], 'hunter2');
    expect(login.exitCode, login.stderr).toBe(0);
    tokenRequests.length = 0;
    const push = await g(root, ['push', '--ca-cert', ca, 'base:1', `${reg.host}/team/base:1`]);
    expect(push.exitCode, push.stderr).toBe(0);
    // One token for the push scope, however many blob requests the push made.
    expect(tokenRequests.map((t) => t.scope)).toEqual(['repository:team/base:pull,push']);
    expect(tokenRequests[0]?.user).toBe('bob:hunter2');
    const store = path.join(mkdtempSync(path.join(work, 's-')), 'store');
    const pull = await g(store, ['pull', '--ca-cert', ca, `${reg.host}/team/base:1`]);
    expect(pull.exitCode, pull.stderr).toBe(0);
    const digest = async (s: string, ref: string) => JSON.parse((await g(s, ['inspect', ref])).stdout)[0].Descriptor.digest;
    expect(await digest(store, `${reg.host}/team/base:1`)).toBe(await digest(root, 'base:1'));
    const again = await g(root, ['push', '--ca-cert', ca, 'base:1', `${reg.host}/team/base:2`]);
    expect(again.stdout.match(/: exists/g)).toHaveLength(2);
  });

  test('an identity token (refresh_token grant) from the docker config', async () => {
    const cfg = path.join(dockerConfig, 'config.json');
    writeFileSync(cfg, JSON.stringify({ auths: { [reg.host]: { identitytoken: 'idtok-bob' } } }));
    const r = await g(root, ['push', '--ca-cert', reg.tls?.ca ?? '', 'base:1', `${reg.host}/team/base:3`]);
    expect(r.exitCode, r.stderr).toBe(0);
    writeFileSync(cfg, JSON.stringify({ auths: { [reg.host]: { identitytoken: 'stale' } } }));
    const bad = await g(root, ['push', '--ca-cert', reg.tls?.ca ?? '', 'base:1', `${reg.host}/team/base:4`]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('refused (401)');
  });

  test('a wrong password at the token service is a clear error', async () => {
    const r = await g(root, ['login', '--ca-cert', reg.tls?.ca ?? '', '-u', 'bob', '--password-stdin', reg.host], 'nope');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('refused (401)');
  });
});
