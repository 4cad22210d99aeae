import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { haveTool } from './tools.js';

/**
 * A CI fleet on one machine: hosts in network namespaces of their own, each with one veth into a
 * bridge in the registry's namespace, where a docker-registry listens. A host reaches the
 * registry (10.231.0.1:5000) and nothing else: not the machine's loopback, not its network.
 */
export interface Fleet {
  /** The registry as every host reaches it: host:port. */
  registry: string;
  /** Each host's network namespace, by the name given. */
  hosts: Record<string, string>;
  /** `command args…` run in host `name`'s namespace. */
  exec(name: string, command: string, args: string[]): { command: string; args: string[] };
  stop(): Promise<void>;
}

const ip = (args: string[]): void => void execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export async function startFleet(names: string[]): Promise<Fleet> {
  for (const tool of ['ip', 'nsenter', 'docker-registry', 'curl']) if (!haveTool(tool)) throw new Error(`${tool} is missing`);
  const id = randomBytes(3).toString('hex');
  const regNs = `gantry-reg-${id}`;
  const hosts = Object.fromEntries(names.map((n, i) => [n, `gantry-${i}-${id}`]));
  const made: string[] = [];
  const dir = mkdtempSync(path.join(tmpdir(), 'gantry-fleet-'));
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child?.once('exit', r));
    }
    for (const ns of made.splice(0).reverse()) {
      try {
        ip(['netns', 'del', ns]);
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    ip(['netns', 'add', regNs]);
    made.push(regNs);
    ip(['-n', regNs, 'link', 'set', 'lo', 'up']);
    ip(['-n', regNs, 'link', 'add', 'br0', 'type', 'bridge']);
    ip(['-n', regNs, 'addr', 'add', '10.231.0.1/24', 'dev', 'br0']);
    ip(['-n', regNs, 'link', 'set', 'br0', 'up']);
    Object.values(hosts).forEach((ns, i) => {
      ip(['netns', 'add', ns]);
      made.push(ns);
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', regNs, 'link', 'add', `h${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      ip(['-n', regNs, 'link', 'set', `h${i}`, 'master', 'br0', 'up']);
      ip(['-n', ns, 'addr', 'add', `10.231.0.${10 + i}/24`, 'dev', 'eth0']);
      ip(['-n', ns, 'link', 'set', 'eth0', 'up']);
    });
    const config = path.join(dir, 'config.yml');
    writeFileSync(
      config,
      ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${path.join(dir, 'data')}`, 'http:', '  addr: 10.231.0.1:5000', ''].join('\n'),
    );
    const started = spawn('ip', ['netns', 'exec', regNs, 'docker-registry', 'serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = started;
    let stderr = '';
    started.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    // Up when the first host reaches it.
    const first = Object.values(hosts)[0] as string;
    for (let i = 0; ; i++) {
      try {
        execFileSync('ip', ['netns', 'exec', first, 'curl', '-sf', '-o', '/dev/null', '--max-time', '2', 'http://10.231.0.1:5000/v2/']);
        break;
      } catch {
        if (started.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
        if (i >= 100) throw new Error(`docker-registry did not answer in the fleet's network: ${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    registry: '10.231.0.1:5000',
    hosts,
    // nsenter enters the network namespace only: `ip netns exec` also mounts a sysfs of its own,
    // which hides the cgroup file system RUN's runtime needs.
    exec: (name, command, args) => ({ command: 'nsenter', args: [`--net=/run/netns/${hosts[name] as string}`, '--', command, ...args] }),
    stop,
  };
}
