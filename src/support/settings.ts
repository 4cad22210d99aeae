/**
 * gantry's settings from its environment, in one place (with the one fact of its process that
 * many modules ask: whether it runs in a user namespace). gantry's own variables are read once
 * per process, when this module loads, into one Settings (the caller's PATH and the variables a secret
 * names are read when used); a module asks for the setting it needs and never
 * reads `process.env` itself, so docs/cli.md's list of variables is this file. A value is
 * parsed when it is first asked for: a bad one is an error naming the variable, raised by the
 * command that uses it (a bad GANTRY_REGISTRY_TIMEOUT does not stop `gantry images`).
 *
 * Tests that change a variable in-process call `resetSettings()` (or give one explicitly).
 */
import { readFileSync } from 'node:fs';
import { GantryError, OptionError } from '../errors/index.js';

/** The default extraction budget: 64 GiB (tar/limit.ts). */
const DEFAULT_EXTRACT_LIMIT = 64 * 1024 ** 3;

export class Settings {
  private readonly parsed = new Map<string, unknown>();
  private readonly env: Readonly<Record<string, string | undefined>>;
  /** GANTRY_TRACE=1: phase timings on stderr (support/process.ts). */
  readonly trace: boolean;

  /** GANTRY_OVERLAY=0: no overlay mounts, plain trees instead (rootfs/overlay.ts). */
  readonly overlay: boolean;

  /** GANTRY_KERNEL_HELPER=0: no kernel helper process (rootfs/kernel.ts). */
  readonly kernelHelper: boolean;

  /** GANTRY_RUNTIME=PATH: the OCI runtime a RUN starts (sandbox/runtime.ts). */
  readonly runtime: string | undefined;

  /** GANTRY_LOOPBACK_ONLY=1: contact loopback addresses only (the tests' guard, registry/client.ts). */
  readonly loopbackOnly: boolean;

  /** GANTRY_STATS_OUT=FILE: the build's counts written there (the tests read them). */
  readonly statsOut: string | undefined;

  /** SSL_CERT_FILE: more certificate authorities a registry's TLS is checked against. */
  readonly caCertFile: string | undefined;

  constructor(env: NodeJS.ProcessEnv) {
    this.env = { ...env };
    this.trace = this.env.GANTRY_TRACE === '1';
    this.overlay = this.env.GANTRY_OVERLAY !== '0';
    this.kernelHelper = this.env.GANTRY_KERNEL_HELPER !== '0';
    this.runtime = this.raw('GANTRY_RUNTIME');
    this.loopbackOnly = this.env.GANTRY_LOOPBACK_ONLY === '1';
    this.statsOut = this.raw('GANTRY_STATS_OUT');
    this.caCertFile = this.raw('SSL_CERT_FILE');
  }

  private once<T>(name: string, parse: () => T): T {
    if (!this.parsed.has(name)) this.parsed.set(name, parse());
    return this.parsed.get(name) as T;
  }

  private raw(name: string): string | undefined {
    const v = this.env[name]?.trim();
    return v ? v : undefined;
  }

  /** GANTRY_CRASH_AT=<point>[@n]: the fault tests' crash point (support/process.ts). */
  get crashAt(): { point: string; n: number } | undefined {
    return this.once('GANTRY_CRASH_AT', () => {
      const m = /^([a-z-]+)(?:@(\d+))?$/.exec(this.env.GANTRY_CRASH_AT ?? '');
      return m ? { point: m[1] as string, n: Number(m[2] ?? 1) } : undefined;
    });
  }

  /** GANTRY_STORE_BUDGET: the build cache's budget in bytes, when set. */
  get storeBudget(): number | undefined {
    return this.once('GANTRY_STORE_BUDGET', () => this.size('GANTRY_STORE_BUDGET'));
  }

  /** GANTRY_TRASH_BUDGET: the trash's budget in bytes, when set. */
  get trashBudget(): number | undefined {
    return this.once('GANTRY_TRASH_BUDGET', () => this.size('GANTRY_TRASH_BUDGET'));
  }

  /** GANTRY_EXTRACT_LIMIT: how far an archive or a layer may expand (default 64 GiB). */
  get extractLimit(): number {
    return this.once('GANTRY_EXTRACT_LIMIT', () => this.size('GANTRY_EXTRACT_LIMIT') ?? DEFAULT_EXTRACT_LIMIT);
  }

  /** GANTRY_REGISTRY_TIMEOUT: a registry request's deadline, in milliseconds (default 60 s). */
  get registryTimeout(): number {
    return this.once('GANTRY_REGISTRY_TIMEOUT', () => {
      const raw = this.raw('GANTRY_REGISTRY_TIMEOUT');
      if (raw === undefined) return 60_000;
      const seconds = Number(raw);
      if (!Number.isFinite(seconds) || seconds <= 0) {
        throw new OptionError('OPTION_INVALID', `GANTRY_REGISTRY_TIMEOUT=${raw}: expected a number of seconds greater than 0`);
      }
      return seconds * 1000;
    });
  }

  /**
   * GANTRY_DOCKER_HUB_SEARCH: the base URL `search` asks Docker Hub's search endpoint
   * (`/v1/search`) at, in place of https://index.docker.io (the tests' stand-in, or a proxy).
   */
  get dockerHubSearch(): string {
    return this.once('GANTRY_DOCKER_HUB_SEARCH', () => {
      const raw = this.raw('GANTRY_DOCKER_HUB_SEARCH');
      if (raw === undefined) return 'https://index.docker.io';
      let url: URL | undefined;
      try {
        url = new URL(raw);
      } catch {
        // said below
      }
      if (!url || !['http:', 'https:'].includes(url.protocol) || url.search || url.hash || url.username || url.password) {
        throw new OptionError('OPTION_INVALID', `GANTRY_DOCKER_HUB_SEARCH=${raw}: expected a base URL such as https://index.docker.io or http://127.0.0.1:5000 (no query, fragment or user)`);
      }
      return url.origin + url.pathname.replace(/\/+$/, '');
    });
  }

  /**
   * This process runs in a user namespace (its uid map is not the initial namespace's identity
   * map): a rootless build (sandbox/rootless.ts). Read from /proc/self/uid_map when first asked.
   */
  get inUserNamespace(): boolean {
    return this.once('/proc/self/uid_map', () => {
      try {
        return !/^\s*0\s+0\s+4294967295\s*$/.test(readFileSync('/proc/self/uid_map', 'utf8'));
      } catch {
        return false;
      }
    });
  }

  /** PATH, for the tools gantry starts (git): the caller's, read when used. */
  get path(): string {
    return process.env.PATH ?? '/usr/bin:/bin';
  }

  /** SOURCE_DATE_EPOCH as seconds; undefined when unset or not a whole number. */
  get sourceDateEpoch(): number | undefined {
    return epochSeconds(this.env.SOURCE_DATE_EPOCH);
  }

  /**
   * A variable gantry passes on by name (a secret's `env=`): the caller's, read when the build
   * uses it, not from the snapshot (a program using the API may set it between builds).
   */
  variable(name: string): string | undefined {
    return process.env[name];
  }

  private size(variable: string): number | undefined {
    const raw = this.raw(variable);
    return raw === undefined ? undefined : parseSize(variable, raw);
  }
}

/** A SOURCE_DATE_EPOCH value (the variable's, or the build argument's) as seconds; undefined when unset or not a whole number. */
export function epochSeconds(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** A size as gantry's environment variables take it: bytes, or with a K, M, G or T suffix (binary). */
function parseSize(variable: string, raw: string): number {
  const m = /^(\d+)\s*([KMGT]?)i?B?$/i.exec(raw.trim());
  if (!m) throw new GantryError('OPTION_INVALID', `${variable}=${raw}: expected a size in bytes, such as 1073741824 or 1G`);
  const scale = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 }[(m[2] ?? '').toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Number(m[1]) * scale;
}

/**
 * This process's settings, read from its environment when this module loads (a field read,
 * not a call: modules read `settings.overlay` where they need it).
 */
export let settings: Settings = new Settings(process.env);

/** Read the environment again, or use `env`'s. For tests that change a variable in-process. */
export function resetSettings(env?: NodeJS.ProcessEnv): void {
  settings = new Settings(env ?? process.env);
}
