/**
 * Credentials the way docker keeps them: `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`) with `auths` (base64 `auth`, `identitytoken`), `credsStore` and
 * `credHelpers` (`docker-credential-<name>` executables speaking JSON on stdin/stdout).
 */
import { mkdir, readFile, rename, writeFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GantryError } from '../errors/index.js';
import { childProcess } from '../support/process.js';
import type { Credentials } from './client.js';

export interface DockerConfig {
  auths?: Record<string, { auth?: string; identitytoken?: string; username?: string; password?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [key: string]: unknown;
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || path.join(env.HOME || os.homedir(), '.docker');
  return path.join(dir, 'config.json');
}

/** The keys docker may have used for a registry in `auths`. */
export function authKeys(registry: string): string[] {
  if (['docker.io', 'index.docker.io', 'registry-1.docker.io'].includes(registry)) {
    return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];
  }
  return [registry, `https://${registry}`, `http://${registry}`];
}

/** The key docker writes for a registry. */
export function authKey(registry: string): string {
  return authKeys(registry)[0] as string;
}

export async function readDockerConfig(file = dockerConfigPath()): Promise<DockerConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new GantryError('CREDENTIALS_CONFIG', `cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as DockerConfig;
  } catch (err) {
    throw new GantryError('CREDENTIALS_CONFIG', `${file} is not valid JSON: ${(err as Error).message}`);
  }
}

async function writeDockerConfig(config: DockerConfig, file: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(config, null, '\t') + '\n', { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
}

function helper(name: string, action: 'get' | 'store' | 'erase', input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = childProcess().execFile(`docker-credential-${name}`, [action], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new GantryError('CREDENTIALS_HELPER', `docker-credential-${name} ${action}: ${(stderr || stdout || err.message).trim()}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

/** Credentials for a registry from the docker config, or undefined when there are none. */
export async function lookupCredentials(registry: string, file = dockerConfigPath()): Promise<Credentials | undefined> {
  const config = await readDockerConfig(file);
  const name = config.credHelpers?.[registry] ?? config.credsStore;
  for (const key of authKeys(registry)) {
    const entry = config.auths?.[key];
    if (!entry) continue;
    if (entry.identitytoken) return { identityToken: entry.identitytoken };
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
    }
    if (entry.username) return { username: entry.username, password: entry.password ?? '' };
  }
  if (name) {
    for (const key of [registry, authKey(registry)]) {
      try {
        const out = JSON.parse(await helper(name, 'get', key)) as { Username?: string; Secret?: string };
        if (out.Username === '<token>') return { identityToken: out.Secret ?? '' };
        if (out.Username) return { username: out.Username, password: out.Secret ?? '' };
      } catch {
        // not known to the helper under this key
      }
    }
  }
  return undefined;
}

export async function storeCredentials(registry: string, username: string, password: string, file = dockerConfigPath()): Promise<void> {
  const config = await readDockerConfig(file);
  const name = config.credHelpers?.[registry] ?? config.credsStore;
  const key = authKey(registry);
  if (name) {
    await helper(name, 'store', JSON.stringify({ ServerURL: key, Username: username, Secret: password }));
    config.auths = { ...(config.auths ?? {}), [key]: {} };
  } else {
    config.auths = { ...(config.auths ?? {}), [key]: { auth: Buffer.from(`${username}:${password}`).toString('base64') } };
  }
  await writeDockerConfig(config, file);
}

export async function eraseCredentials(registry: string, file = dockerConfigPath()): Promise<boolean> {
  const config = await readDockerConfig(file);
  const name = config.credHelpers?.[registry] ?? config.credsStore;
  let found = false;
  for (const key of authKeys(registry)) {
    if (config.auths?.[key]) {
      delete config.auths[key];
      found = true;
    }
  }
  if (name) await helper(name, 'erase', authKey(registry)).then(() => (found = true)).catch(() => undefined);
  if (found) await writeDockerConfig(config, file);
  return found;
}
