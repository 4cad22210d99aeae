import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { eraseCredentials, lookupCredentials, storeCredentials } from '../../src/registry/credentials.js';
import { parseChallenge } from '../../src/registry/client.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gantry-creds-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = (name: string, body: object) => {
  const f = path.join(dir, name, 'config.json');
  mkdirSync(path.dirname(f), { recursive: true });
  writeFileSync(f, JSON.stringify(body));
  return f;
};

describe('docker config credentials', () => {
  test('auths: base64 auth, identitytoken, docker.io aliases', async () => {
    const f = config('a', {
      auths: {
        'reg.example:5000': { auth: Buffer.from('alice:pa:ss').toString('base64') },
        'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') },
        'tok.example': { identitytoken: 'refresh-me' },
      },
    });
    expect(await lookupCredentials('reg.example:5000', f)).toEqual({ username: 'alice', password: 'pa:ss' });
    expect(await lookupCredentials('docker.io', f)).toEqual({ username: 'hub', password: 'pw' });
    expect(await lookupCredentials('tok.example', f)).toEqual({ identityToken: 'refresh-me' });
    expect(await lookupCredentials('other.example', f)).toBeUndefined();
    expect(await lookupCredentials('x', path.join(dir, 'missing', 'config.json'))).toBeUndefined();
  });

  test('credHelpers and credsStore run docker-credential-<name>', async () => {
    const bin = path.join(dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const store = path.join(dir, 'helper-store.json');
    writeFileSync(store, '{}');
    // A tiny credential helper: get/store/erase against a JSON file.
    const script = `#!/bin/sh
input=$(cat)
node -e '
const fs=require("fs"); const f=process.argv[1]; const act=process.argv[2]; const inp=process.argv[3];
const db=JSON.parse(fs.readFileSync(f,"utf8"));
if(act==="get"){ const e=db[inp]; if(!e){console.log("credentials not found in native keychain");process.exit(1)} console.log(JSON.stringify({ServerURL:inp,Username:e.u,Secret:e.s})) }
if(act==="store"){ const j=JSON.parse(inp); db[j.ServerURL]={u:j.Username,s:j.Secret}; fs.writeFileSync(f,JSON.stringify(db)) }
if(act==="erase"){ delete db[inp]; fs.writeFileSync(f,JSON.stringify(db)) }
' "${store}" "$1" "$input"
`;
    writeFileSync(path.join(bin, 'docker-credential-gtest'), script);
    chmodSync(path.join(bin, 'docker-credential-gtest'), 0o755);
    const oldPath = process.env.PATH;
    process.env.PATH = `${bin}:${oldPath}`;
    try {
      const f = config('b', { credsStore: 'gtest' });
      await storeCredentials('reg.example', 'carol', 'pw1', f);
      expect(JSON.parse(readFileSync(store, 'utf8'))).toEqual({ 'reg.example': { u: 'carol', s: 'pw1' } });
      expect(statSync(f).mode & 0o777).toBe(0o600);
      expect(await lookupCredentials('reg.example', f)).toEqual({ username: 'carol', password: 'pw1' });
      const g = config('c', { credHelpers: { 'h.example': 'gtest' } });
      writeFileSync(store, JSON.stringify({ 'h.example': { u: '<token>', s: 'idtok' } }));
      expect(await lookupCredentials('h.example', g)).toEqual({ identityToken: 'idtok' });
      expect(await eraseCredentials('h.example', g)).toBe(true);
      expect(JSON.parse(readFileSync(store, 'utf8'))).toEqual({});
    } finally {
      process.env.PATH = oldPath;
    }
  });
});

describe('WWW-Authenticate', () => {
  test('bearer with quoted parameters', () => {
    expect(parseChallenge('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
  });
});

describe('the loopback guard of the test suite', () => {
  test('GANTRY_LOOPBACK_ONLY=1 (set by vitest.config.ts) refuses other hosts before any traffic', async () => {
    expect(process.env.GANTRY_LOOPBACK_ONLY).toBe('1');
    const { RegistryClient } = await import('../../src/registry/client.js');
    const client = new RegistryClient('registry.example.com');
    await expect(client.request('GET', '/v2/', { scope: '' })).rejects.toThrow('allows loopback registries only');
    expect(client.log).toEqual([]);
    await client.close();
  });
});
