import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RegistryClient } from '../../src/registry/client.js';
import { projectRoot } from '../helpers/conformance.js';
import { startRegistry, type TestRegistry, type TlsFiles } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// (b) htpasswd Basic auth over TLS, with a CA the test generates.

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-regb-'));
const root = path.join(work, 'store');
const dockerConfig = path.join(work, 'docker');
const g = (store: string, args: string[], input?: string) =>
  execa(bin, ['--root', store, ...args], { reject: false, env: { DOCKER_CONFIG: dockerConfig }, ...(input !== undefined ? { input } : {}) });
const fresh = () => path.join(mkdtempSync(path.join(work, 's-')), 'store');
let reg: TestRegistry & { tls?: TlsFiles };
let ca: string;

beforeAll(async () => {
  const started = await startRegistry({ tls: true, basic: { username: 'alice', password: 's3cret' } });
  if (!started?.tls) throw new Error('docker-registry is not installed');
  reg = started;
  ca = started.tls.ca;
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  expect((await g(root, ['import', tarDir(rootfs, path.join(work, 'base.tgz')), 'base:1'])).exitCode).toBe(0);
}, 60_000);

afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('Basic auth over TLS', () => {
  test('without the CA the TLS error is clear', async () => {
    const r = await g(root, ['push', 'base:1', `${reg.host}/a/base:1`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/certificate/i);
    expect(r.stderr).toContain(`https://${reg.host}`);
  });

  test('without credentials: authentication required, with the hint', async () => {
    const r = await g(root, ['push', '--ca-cert', ca, 'base:1', `${reg.host}/a/base:1`]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(`authentication required (run gantry login ${reg.host})`);
  });

  test('a wrong password is a clear error and no retry storm', async () => {
    const r = await g(root, ['login', '--ca-cert', ca, '-u', 'alice', '--password-stdin', reg.host], 'wrong');
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/401/);
    const client = new RegistryClient(reg.host, { caCerts: readFileSync(ca, 'utf8'), credentials: () => ({ username: 'alice', password: 'wrong' }) });
    await expect(client.request('GET', '/v2/', { scope: '' })).rejects.toThrow(/401/);
    expect(client.log.length).toBeLessThanOrEqual(2);
    await client.close();
  });

  test('login stores the credentials like docker (0600); push and pull use them', async () => {
    const login = await g(root, ['login', '--ca-cert', ca, '-u', 'alice', '--password-stdin', reg.host], 's3cret');
    expect(login.stdout.trim()).toBe('Login Succeeded');
    const file = path.join(dockerConfig, 'config.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const config = JSON.parse(readFileSync(file, 'utf8'));
    expect(Buffer.from(config.auths[reg.host].auth, 'base64').toString()).toBe('alice:s3cret');

    const push = await g(root, ['push', '--ca-cert', ca, 'base:1', `${reg.host}/a/base:1`]);
    expect(push.exitCode, push.stderr).toBe(0);
    const store = fresh();
    const pull = await g(store, ['pull', '--ca-cert', ca, `${reg.host}/a/base:1`]);
    expect(pull.exitCode, pull.stderr).toBe(0);
    const digest = async (s: string, ref: string) => JSON.parse((await g(s, ['inspect', ref])).stdout)[0].Descriptor.digest;
    expect(await digest(store, `${reg.host}/a/base:1`)).toBe(await digest(root, 'base:1'));
    const again = await g(root, ['push', '--ca-cert', ca, 'base:1', `${reg.host}/a/base:2`]);
    expect(again.stdout.match(/: exists/g)).toHaveLength(2);
  });

  test('SSL_CERT_FILE works like --ca-cert; logout removes the entry', async () => {
    const r = await execa(bin, ['--root', root, 'push', 'base:1', `${reg.host}/b/base:1`], {
      reject: false,
      env: { DOCKER_CONFIG: dockerConfig, SSL_CERT_FILE: ca },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const out = await g(root, ['logout', reg.host]);
    expect(out.stdout.trim()).toBe(`Removing login credentials for ${reg.host}`);
    expect(JSON.parse(readFileSync(path.join(dockerConfig, 'config.json'), 'utf8')).auths[reg.host]).toBeUndefined();
  });
});
