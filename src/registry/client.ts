/**
 * A distribution-spec client over undici: one instance per registry host. It answers
 * `WWW-Authenticate` challenges (Bearer token service or Basic), caches tokens per scope,
 * retries idempotent requests on network errors, 429 and 5xx with backoff, and follows
 * redirects itself so the registry's Authorization never reaches another host.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';

/** undici is loaded on the first request: a build from local images never pays for it. */
let undiciModule: Promise<typeof import('undici')> | undefined;
const undici = (): Promise<typeof import('undici')> => (undiciModule ??= import('undici'));
/** node:tls too, only when extra CA certificates are given: loading it costs every command 3 ms. */
const tls = (): typeof import('node:tls') => createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
import { RegistryError } from '../errors/index.js';
import { DEFAULT_DOMAIN } from '../oci/reference.js';
import { settings } from '../support/settings.js';

export interface Credentials {
  username?: string;
  password?: string;
  /** An OAuth2 refresh token (docker's `identitytoken`). */
  identityToken?: string;
}

export type CredentialLookup = (registry: string) => Promise<Credentials | undefined> | Credentials | undefined;

export interface RegistryClientOptions {
  /** Hosts (with port) reached over plain HTTP besides loopback ones. */
  insecureRegistries?: string[];
  credentials?: CredentialLookup;
  /** Attempts for idempotent requests (default 4). */
  attempts?: number;
  /** Base backoff in ms (default 200), doubled per attempt. */
  backoffMs?: number;
  dispatcher?: Dispatcher;
  userAgent?: string;
  /** Extra trusted CA certificates (PEM), added to the system's roots. */
  caCerts?: string;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/;

export function isLoopback(host: string): boolean {
  return LOOPBACK.test(host);
}

/** 169.254.0.0/16 and fe80::/10: where cloud metadata services answer; no registry lives there. */
export function isLinkLocal(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return /^169\.254\.\d{1,3}\.\d{1,3}$/.test(h) || /^fe[89ab][0-9a-f]?:/.test(h);
}

/**
 * Every address gantry is about to contact on a registry's word (a redirect, a token realm)
 * passes here: never a link-local address, and only loopback under GANTRY_LOOPBACK_ONLY=1.
 */
function checkDestination(url: URL, why: string): void {
  const unsafe = unsafeDestination(url);
  if (unsafe === 'link-local') {
    throw new RegistryError('REGISTRY_UNSAFE_HOST', `${why} leads to ${url.origin}, a link-local address (where cloud metadata services answer): refused`, { url: url.toString() });
  }
  if (unsafe === 'not-loopback') {
    throw new RegistryError('REGISTRY_LOOPBACK_ONLY', `refusing to contact ${url.origin} (${why}): GANTRY_LOOPBACK_ONLY=1 allows loopback registries only`, { url: url.toString() });
  }
}


/** Why gantry must not contact `url`: a link-local address, or not loopback under GANTRY_LOOPBACK_ONLY=1. */
export function unsafeDestination(url: URL): 'link-local' | 'not-loopback' | undefined {
  if (isLinkLocal(url.hostname)) return 'link-local';
  if (settings.loopbackOnly && !isLoopback(url.host)) return 'not-loopback';
  return undefined;
}

/** The API host of a registry named in a reference (docker.io is served elsewhere). */
export function registryHost(domain: string): string {
  return domain === DEFAULT_DOMAIN ? 'registry-1.docker.io' : domain;
}

/** Loopback hosts and hosts given as insecure may be reached over plain HTTP (HTTPS is tried first). */
export function plainHttpAllowed(domain: string, insecure: readonly string[] = []): boolean {
  const host = registryHost(domain);
  return isLoopback(host) || insecure.includes(domain) || insecure.includes(host);
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parse `Bearer realm="...",service="...",scope="..."` (one challenge; the first wins). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (let p = re.exec(m[2] as string); p; p = re.exec(m[2] as string)) {
    params[(p[1] as string).toLowerCase()] = (p[2] ?? p[3] ?? '').replace(/\\(.)/g, '$1');
  }
  return { scheme: (m[1] as string).toLowerCase(), params };
}

/**
 * The deadline of a request to a registry, in milliseconds: `GANTRY_REGISTRY_TIMEOUT` seconds
 * (default 60). A document (a manifest, a config, a token, an error) must arrive whole within
 * it, counted from the request; a transfer (a blob fetched or uploaded) must start within it and
 * then move at least MIN_TRANSFER_RATE bytes a second over each such period. A registry that
 * answers a byte every few seconds is stopped there, whatever undici's own timers (which restart
 * on every byte) would allow.
 */

/** Bytes a second a blob transfer must keep, averaged over each deadline period (once it started). */
export const MIN_TRANSFER_RATE = 1024;

/**
 * One request's deadline: an AbortSignal that fires with an error naming the request (a
 * RegistryError unless `fail` makes another). It stops when the response body closes (read to
 * its end, dumped or destroyed), or when stop() is called. ADD's URL downloads use it too.
 */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private moved = 0;
  private answered = false;

  constructor(
    private readonly what: string,
    private readonly url: string,
    private readonly transfer: boolean,
    private readonly ms: number,
    private readonly fail: (message: string, url: string) => Error = (message, url) => new RegistryError('REGISTRY_TIMEOUT', message, { url, temporary: true }),
  ) {
    this.arm();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private arm(): void {
    this.timer = setTimeout(() => this.expire(), this.ms);
    // A request under way keeps the process alive by its socket; the timer need not.
    this.timer.unref();
  }

  private expire(): void {
    if (this.transfer && this.moved >= (MIN_TRANSFER_RATE * this.ms) / 1000) {
      this.moved = 0;
      this.arm();
      return;
    }
    const s = this.ms / 1000;
    const why =
      !this.answered && this.moved === 0
        ? `no answer within ${s} s`
        : this.transfer
          ? `${this.moved} bytes in the last ${s} s, slower than the ${MIN_TRANSFER_RATE} bytes/s a transfer must keep`
          : `the answer did not arrive whole within ${s} s`;
    this.controller.abort(this.fail(`${this.what}: ${why} (GANTRY_REGISTRY_TIMEOUT sets the deadline, in seconds)`, this.url));
  }

  /** The response's headers came: a transfer's first period starts now. */
  headers(): void {
    this.answered = true;
    if (!this.transfer) return;
    clearTimeout(this.timer);
    this.moved = 0;
    this.arm();
  }

  count(n: number): void {
    this.moved += n;
  }

  stop(): void {
    clearTimeout(this.timer);
  }

  /** Watch a response body: its bytes count for a transfer, and its end stops the deadline. */
  watch(body: Readable): void {
    if (this.transfer) {
      // undici hands each chunk to push(): counting there sees the bytes as they arrive, whether
      // the caller iterates the body, dumps it or reads it as text.
      const push = body.push.bind(body);
      body.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
        if (chunk) this.count((chunk as { length: number }).length);
        return push(chunk, encoding);
      };
    }
    body.once('close', () => this.stop());
  }
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | Readable | string;
  /** The token scope the request needs, e.g. `repository:library/alpine:pull`. */
  scope: string;
  /** Statuses that count as success; others become a RegistryError. */
  ok?: number[];
  /** Safe to retry (GET, HEAD, PUT of a manifest, ...). Default: true unless the body is a stream. */
  idempotent?: boolean;
  /**
   * A blob's bytes go one way or the other (a layer fetched, an upload): the deadline is on its
   * start and its rate (GANTRY_REGISTRY_TIMEOUT, settings.registryTimeout), not on its whole, which depends on its size.
   */
  transfer?: boolean;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  url: string;
}

interface CachedToken {
  value: string;
  expires: number;
}

export class RegistryClient {
  /** `https://host` or, after HTTPS failed on a host that allows it, `http://host`. */
  endpoint: string;
  private probed: boolean;
  private readonly tokens = new Map<string, CachedToken>();
  private basic: string | undefined;
  private agent: Promise<Dispatcher> | undefined;
  private aborted = false;
  private readonly stopper = new AbortController();
  private readonly connect: { timeout: number; ca?: string[] };
  private timeoutSetting: number | undefined;
  /** Requests made, for tests and progress: method and path. */
  readonly log: { method: string; path: string; status: number }[] = [];

  constructor(
    readonly domain: string,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.endpoint = `https://${registryHost(domain)}`;
    this.probed = !plainHttpAllowed(domain, options.insecureRegistries);
    this.connect = options.caCerts ? { timeout: 30_000, ca: [...tls().rootCertificates, options.caCerts] } : { timeout: 30_000 };
  }

  /** GANTRY_REGISTRY_TIMEOUT, parsed when a request first needs it (a bad value fails that request). */
  private get timeout(): number {
    return (this.timeoutSetting ??= settings.registryTimeout);
  }

  private dispatcher(): Promise<Dispatcher> {
    if (this.options.dispatcher) return Promise.resolve(this.options.dispatcher);
    this.agent ??= undici().then(({ Agent }) => new Agent({ connect: this.connect, headersTimeout: 60_000, bodyTimeout: 120_000 }));
    return this.agent;
  }

  /** For hosts that allow plain HTTP: try HTTPS once; a TLS-level failure means HTTP (docker does the same). */
  private async probe(): Promise<void> {
    if (this.probed) return;
    this.probed = true;
    const deadline = new Deadline(`GET ${this.endpoint}/v2/`, `${this.endpoint}/v2/`, false, this.timeout);
    try {
      const { request } = await undici();
      const res = await request(`${this.endpoint}/v2/`, { method: 'GET', dispatcher: await this.dispatcher(), headers: { 'user-agent': this.options.userAgent ?? 'gantry' }, signal: deadline.signal });
      await res.body.dump();
    } catch (err) {
      const code = String((err as { code?: string }).code ?? '');
      const message = String((err as Error).message ?? '');
      if (code.startsWith('ERR_SSL') || code === 'EPROTO' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || /wrong version number|ssl/i.test(message)) {
        this.endpoint = this.endpoint.replace(/^https:/, 'http:');
      }
    } finally {
      deadline.stop();
    }
  }

  async request(method: string, path: string, options: RequestOptions): Promise<Response> {
    /** The URL asked for, as errors say it (a path is the registry's; an upload's location may be a whole URL). */
    const full = path.startsWith('http') ? path : this.endpoint + path;
    // A guard for test suites and sealed CI: GANTRY_LOOPBACK_ONLY=1 refuses every other host.
    if (settings.loopbackOnly && !isLoopback(new URL(path.startsWith('http') ? path : this.endpoint).host)) {
      throw new RegistryError('REGISTRY_LOOPBACK_ONLY', `refusing to contact ${this.endpoint}: GANTRY_LOOPBACK_ONLY=1 allows loopback registries only`, { url: this.endpoint });
    }
    await this.probe();
    const ok = options.ok ?? [200];
    const idempotent = options.idempotent ?? !(options.body && typeof options.body === 'object' && !Buffer.isBuffer(options.body));
    const attempts = idempotent ? (this.options.attempts ?? 4) : 1;
    let authRetried = false;
    const timeout = this.timeout;
    for (let attempt = 1; ; attempt++) {
      if (this.aborted) throw new RegistryError('REGISTRY_ABORTED', `${method} ${full}: cancelled`, { url: full });
      let res: Response;
      const url = path.startsWith('http') ? path : this.endpoint + path;
      const deadline = new Deadline(`${method} ${url}`, url, options.transfer ?? false, timeout);
      try {
        res = await this.send(method, url, options, deadline);
      } catch (err) {
        deadline.stop();
        if (err instanceof RegistryError) throw err;
        // Certificate problems do not go away by trying again.
        const certError = /CERT|SELF_SIGNED|ALTNAME|UNABLE_TO_VERIFY/.test(String((err as { code?: string }).code ?? ''));
        if (attempt < attempts && !certError) {
          await this.backoff(attempt);
          continue;
        }
        throw new RegistryError('REGISTRY_UNREACHABLE', `${method} ${full}: ${(err as Error).message}`, { url: full, temporary: true }, { cause: err });
      }
      this.log.push({ method, path, status: res.status });
      if (res.status === 401 && !authRetried) {
        await res.body.dump();
        authRetried = true;
        await this.authenticate(res, options.scope);
        attempt--; // an auth round trip is not a failed attempt
        continue;
      }
      if (ok.includes(res.status)) return res;
      const temporary = res.status === 429 || res.status >= 500;
      if (temporary && attempt < attempts) {
        await res.body.dump();
        await this.backoff(attempt, res.headers['retry-after']);
        continue;
      }
      throw await this.error(method, path, res, temporary);
    }
  }

  private async send(method: string, url: string, options: RequestOptions, deadline: Deadline, hops = 0): Promise<Response> {
    const target = new URL(url);
    if (hops > 0) checkDestination(target, `a redirect from ${this.endpoint}`);
    const sameHost = target.origin === new URL(this.endpoint).origin;
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'gantry', ...options.headers };
    if (sameHost) {
      const auth = this.authorization(options.scope);
      if (auth) headers.authorization = auth;
    }
    const { request } = await undici();
    // An upload's bytes count for its transfer rate as undici takes them.
    const upload = options.body;
    const body =
      options.transfer && upload !== undefined && typeof upload === 'object' && !Buffer.isBuffer(upload)
        ? Readable.from(
            (async function* counted(): AsyncGenerator<Buffer> {
              for await (const chunk of upload) {
                deadline.count((chunk as Buffer).length);
                yield chunk as Buffer;
              }
            })(),
            { objectMode: false },
          )
        : upload;
    const res = await request(url, {
      method: method as Dispatcher.HttpMethod,
      headers,
      ...(body !== undefined ? { body } : {}),
      dispatcher: await this.dispatcher(),
      // The deadline's, or `abort()`: either ends the request where it is, body upload included.
      signal: AbortSignal.any([deadline.signal, this.stopper.signal]),
    });
    const location = res.headers.location;
    if ([301, 302, 303, 307, 308].includes(res.statusCode) && typeof location === 'string' && (method === 'GET' || method === 'HEAD')) {
      await res.body.dump();
      if (hops >= 5) throw new RegistryError('REGISTRY_REDIRECTS', `${method} ${url}: too many redirects`, { url });
      // Follow by hand: another host never sees the registry's Authorization header.
      return this.send(method, new URL(location, url).toString(), options, deadline, hops + 1);
    }
    deadline.headers();
    deadline.watch(res.body);
    return { status: res.statusCode, headers: res.headers, body: res.body, url };
  }

  private authorization(scope: string): string | undefined {
    const t = this.tokens.get(scope);
    if (t && t.expires > Date.now()) return `Bearer ${t.value}`;
    return this.basic;
  }

  private readonly pendingAuth = new Map<string, Promise<void>>();

  /** One token request per scope at a time: parallel requests that all got a 401 share it. */
  private authenticate(res: Response, scope: string): Promise<void> {
    const cached = this.tokens.get(scope);
    if (cached && cached.expires > Date.now()) return Promise.resolve();
    let p = this.pendingAuth.get(scope);
    if (!p) {
      p = this.fetchAuth(res, scope).finally(() => this.pendingAuth.delete(scope));
      this.pendingAuth.set(scope, p);
    }
    return p;
  }

  private async fetchAuth(res: Response, scope: string): Promise<void> {
    const header = res.headers['www-authenticate'];
    const challenge = parseChallenge(Array.isArray(header) ? (header[0] ?? '') : (header ?? ''));
    const creds = await this.options.credentials?.(this.domain);
    if (!challenge) throw new RegistryError('REGISTRY_AUTH', `${this.endpoint}: 401 without a usable WWW-Authenticate challenge`, { status: 401, url: this.endpoint });
    if (challenge.scheme === 'basic') {
      if (!creds?.username) throw new RegistryError('REGISTRY_AUTH', `${this.endpoint}: authentication required (run gantry login ${this.domain})`, { status: 401, url: this.endpoint });
      this.basic = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
      return;
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) {
      throw new RegistryError('REGISTRY_AUTH', `${this.endpoint}: unsupported authentication scheme "${challenge.scheme}"`, { status: 401, url: this.endpoint });
    }
    const realm = new URL(challenge.params.realm);
    checkDestination(realm, `the token realm of ${this.endpoint}`);
    // Credentials go to a token service on another host only over HTTPS (Docker Hub's realm
    // is auth.docker.io): a registry cannot have them sent in clear text to a host it names.
    const otherHost = realm.hostname !== new URL(this.endpoint).hostname; // another port of the same host is the same host
    if (otherHost && realm.protocol !== 'https:' && (creds?.username || creds?.identityToken)) {
      throw new RegistryError('REGISTRY_AUTH', `${this.endpoint}: its token realm ${realm.origin} is another host over plain HTTP; the credentials for ${this.domain} are not sent there`, { url: realm.toString() });
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    // Ask for what the whole operation needs (pull,push), not only what this request needs.
    const wanted = scope || challenge.params.scope || '';
    for (const one of wanted.split(' ').filter(Boolean)) realm.searchParams.append('scope', one);
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent ?? 'gantry' };
    let method: 'GET' | 'POST' = 'GET';
    let body: string | undefined;
    if (creds?.identityToken) {
      method = 'POST';
      headers['content-type'] = 'application/x-www-form-urlencoded';
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, client_id: 'gantry' });
      if (challenge.params.service) form.set('service', challenge.params.service);
      if (wanted) form.set('scope', wanted);
      body = form.toString();
    } else if (creds?.username) {
      headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password ?? ''}`).toString('base64')}`;
    }
    const { request } = await undici();
    const deadline = new Deadline(`${method} ${realm.origin}${realm.pathname}`, realm.toString(), false, this.timeout);
    let r: Dispatcher.ResponseData;
    let text: string;
    try {
      r = await request(realm.toString(), { method, headers, ...(body ? { body } : {}), dispatcher: await this.dispatcher(), signal: deadline.signal });
      text = await r.body.text();
    } catch (err) {
      if (err instanceof RegistryError) throw err;
      throw new RegistryError('REGISTRY_AUTH', `token service ${realm.origin}${realm.pathname}: ${(err as Error).message}`, { url: realm.toString(), temporary: true }, { cause: err });
    } finally {
      deadline.stop();
    }
    if (r.statusCode !== 200) {
      throw new RegistryError('REGISTRY_AUTH', `token service ${realm.origin}${realm.pathname} refused (${r.statusCode}): ${text.slice(0, 200)}`, { status: r.statusCode, url: realm.toString() });
    }
    let json: { token?: string; access_token?: string; expires_in?: number };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new RegistryError('REGISTRY_AUTH', `token service ${realm.origin}${realm.pathname} answered something that is not JSON`, { url: realm.toString() });
    }
    const token = json.token ?? json.access_token;
    if (!token) throw new RegistryError('REGISTRY_AUTH', `token service ${realm.origin}${realm.pathname} gave no token`, { url: realm.toString() });
    this.tokens.set(scope, { value: token, expires: Date.now() + Math.max(60, json.expires_in ?? 60) * 1000 - 10_000 });
  }

  private async backoff(attempt: number, retryAfter?: string | string[]): Promise<void> {
    const ra = Number(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    const ms = Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, 10_000) : (this.options.backoffMs ?? 200) * 2 ** (attempt - 1);
    await new Promise((r) => setTimeout(r, ms));
  }

  private async error(method: string, path: string, res: Response, temporary: boolean): Promise<RegistryError> {
    // At most 64 KiB of an error's body is read (its first 300 characters are said): a registry
    // that answers an error with an endless body costs nothing more.
    const text = method === 'HEAD' ? '' : await bodyHead(res.body, 64 * 1024);
    if (method === 'HEAD') await res.body.dump().catch(() => undefined);
    let detail = text.slice(0, 300);
    try {
      const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      if (j.errors?.length) detail = j.errors.map((e) => `${e.code ?? ''}: ${e.message ?? ''}`).join('; ');
    } catch {
      // not JSON: keep the text
    }
    // What a 401 or 403 means for the user, said first: the raw answer follows.
    const meaning =
      res.status === 401
        ? `authentication failed: ${this.domain} did not accept the credentials or token sent (check them with gantry login ${this.domain}); `
        : res.status === 403
          ? `access denied by ${this.domain}: the account may not ${method === 'GET' || method === 'HEAD' ? 'read' : 'write'} this repository; `
          : '';
    return new RegistryError(
      res.status === 401 || res.status === 403 ? 'REGISTRY_DENIED' : res.status === 404 ? 'REGISTRY_NOT_FOUND' : 'REGISTRY_ERROR',
      `${meaning}${method} ${res.url}: ${res.status}${detail ? ` ${detail}` : ''}`,
      { status: res.status, url: res.url, temporary },
    );
  }

  /** Stop: requests under way fail now, and no more are made (an aborted pull or push). */
  async abort(): Promise<void> {
    this.aborted = true;
    this.stopper.abort();
    if (!this.options.dispatcher && this.agent) await (await this.agent).destroy();
  }

  async close(): Promise<void> {
    if (this.aborted) return; // destroyed already
    if (!this.options.dispatcher && this.agent) await (await this.agent).close();
  }
}

/** The first `limit` bytes of a body as text; the rest is not read (the body is destroyed). */
async function bodyHead(body: Response['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body) {
      chunks.push(Buffer.from(c as Uint8Array));
      n += (c as Uint8Array).length;
      if (n >= limit) break;
    }
  } catch {
    // a body that fails is said as far as it came
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}
