/** RUN's dispatch: its mounts (which can name other stages), its environment and its proxy variables. */
import { DockerfileError } from '../errors/index.js';
import type { RunInstruction } from '../dockerfile/instructions.js';
import { MountError, parseMount, type Mount } from '../dockerfile/mounts.js';
import type { At, Planning, StageScope } from './dispatch.js';

/** The proxy variables BuildKit passes to RUN from build args, each in both spellings. */
const PROXY_NAMES = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'] as const;

export const PROXY_ARGS: readonly string[] = PROXY_NAMES.flatMap((n) => [n.toUpperCase(), n]);

/**
 * The proxy variables a RUN gets from the build args, as BuildKit sets them: a build arg whose
 * name is one of the five proxy names in either case (`http_proxy`, `HTTP_PROXY`...) gives the
 * RUN both spellings with its value; when both spellings are given, the lower-case one (the
 * later of the names sorted) wins.
 */
export function proxyEnvOf(buildArgs: ReadonlyMap<string, string>): string[] {
  const values = new Map<string, string>();
  for (const k of [...buildArgs.keys()].sort()) {
    const lower = k.toLowerCase();
    if ((PROXY_NAMES as readonly string[]).includes(lower)) values.set(lower, buildArgs.get(k) as string);
  }
  const out: string[] = [];
  for (const name of PROXY_NAMES) {
    const v = values.get(name);
    if (v) out.push(`${name.toUpperCase()}=${v}`, `${name}=${v}`);
  }
  return out;
}

export function* dispatchRun(st: StageScope, ins: RunInstruction, at: At): Planning<void> {
  const { where } = at;
  const mounts: Mount[] = [];
  for (const raw of ins.rawMounts) {
    // from= names a stage or an image as written: a variable there is refused, as BuildKit refuses it.
    for (const field of raw.split(',')) {
      const eq = field.indexOf('=');
      const value = field.slice(eq + 1);
      const dollar = value.indexOf('$');
      if (eq > 0 && field.slice(0, eq).trim().toLowerCase() === 'from' && dollar !== -1 && dollar !== value.length - 1) {
        throw new DockerfileError('DOCKERFILE_FLAG', "'from' doesn't support variable expansion, define alias stage instead", where, 'RUN');
      }
    }
    const text = at.one(raw);
    let m: Mount;
    try {
      m = parseMount(text);
    } catch (err) {
      if (!(err instanceof MountError)) throw err;
      throw new DockerfileError('DOCKERFILE_FLAG', `--mount=${text}: ${err.message}`, where, 'RUN');
    }
    if (m.from !== undefined) {
      const src = yield* at.resolveFrom(m.from, 'RUN', m.target ?? '');
      m.from = src.type === 'stage' ? String(src.stage) : src.type === 'image' ? src.ref : m.from;
    }
    mounts.push(m);
  }
  const { scope } = st;
  const runEnv = [...scope.env].map(([k, v]) => `${k}=${v}`);
  for (const [k, v] of scope.args) if (v !== undefined && !scope.env.has(k)) runEnv.push(`${k}=${v}`);
  const proxyEnv = proxyEnvOf(at.buildArgs).filter((e) => {
    const k = e.slice(0, e.indexOf('='));
    return !scope.args.has(k) && !scope.env.has(k);
  });
  st.steps.push({
    ...at.base,
    op: 'run',
    command: ins.command,
    heredocs: ins.heredocs,
    mounts,
    network: ins.network ?? 'default',
    security: ins.security ?? 'sandbox',
    runEnv,
    proxyEnv,
    historyArgs: [...scope.args].map(([k, v]) => `${k}=${scope.env.get(k) ?? v ?? ''}`),
  });
}
