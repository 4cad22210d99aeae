/** COPY's and ADD's dispatch: where they read (the context, a stage, an image), their sources and flags. */
import { parseChmod } from '../dockerfile/chmod.js';
import { DockerfileError } from '../errors/index.js';
import type { CopyInstruction } from '../dockerfile/instructions.js';
import { heredocBody } from '../dockerfile/parser.js';
import { expand, type EnvLookup } from '../dockerfile/shell.js';
import { gitOptions, parseGitRef } from '../dockerfile/gitref.js';
import type { At, Planning, StageScope } from './dispatch.js';
import type { CopySource, PendingStep } from './types.js';

export function* dispatchCopy(st: StageScope, ins: CopyInstruction, at: At): Planning<void> {
  const { where } = at;
  const one = at.one;
  // As BuildKit 28: --from names a stage or an image as written, never through a variable.
  if (ins.from !== undefined && /\$(\{|[A-Za-z_])/.test(ins.from)) {
    throw new DockerfileError('DOCKERFILE_FLAG', 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', where, ins.kind);
  }
  const source: CopySource = ins.from !== undefined ? yield* at.resolveFrom(ins.from, ins.kind) : { type: 'context' };
  const heredocNames = new Set(ins.heredocs.map((h) => h.name));
  const inline = ins.heredocs.map((h) => ({
    name: h.name,
    content: h.expand ? expandHeredoc(heredocBody(h), st.scope.lookup) : heredocBody(h),
  }));
  const sources = ins.sources.map((s) => (isHeredocRef(s, heredocNames) ? s : one(s)));
  // An empty --chmod is none (BuildKit); a mode that came from a variable is checked here.
  const checksum = ins.checksum !== undefined ? one(ins.checksum) : undefined;
  if (checksum !== undefined) {
    // As BuildKit: one source, fetched (HTTP(S) or git), never a local one.
    if (sources.length !== 1) throw new DockerfileError('DOCKERFILE_FLAG', "checksum can't be specified for multiple sources", where, ins.kind);
    if (!/^(https?:\/\/|git@|git:\/\/)/.test(sources[0] as string)) throw new DockerfileError('DOCKERFILE_FLAG', 'checksum requires HTTP(S) or Git sources', where, ins.kind);
  }
  if (ins.kind === 'ADD') {
    const fetched = sources.filter((s) => !isHeredocRef(s, heredocNames));
    checkFetchedSources(fetched, { ...(ins.keepGitDir !== undefined ? { keepGitDir: ins.keepGitDir } : {}), ...(checksum !== undefined ? { checksum } : {}) }, (m) => new DockerfileError('DOCKERFILE_FLAG', m, where, ins.kind));
  }
  const chmod = ins.chmod !== undefined ? one(ins.chmod) : undefined;
  if (chmod) {
    try {
      parseChmod(chmod);
    } catch (err) {
      throw new DockerfileError('DOCKERFILE_FLAG', (err as Error).message, where, ins.kind);
    }
  }
  const step: PendingStep = {
    ...at.base,
    op: 'copy',
    kind: ins.kind,
    source,
    sources,
    dest: one(ins.dest),
    inline,
    link: ins.link,
    parents: ins.parents,
    exclude: ins.exclude.map((e) => one(e)),
    ...(ins.keepGitDir !== undefined ? { keepGitDir: ins.keepGitDir } : {}),
    ...(ins.unpack !== undefined ? { unpack: ins.unpack } : {}),
    ...(ins.chown !== undefined ? { chown: one(ins.chown) } : {}),
    ...(chmod ? { chmod } : {}),
    ...(checksum !== undefined ? { checksum } : {}),
  };
  st.steps.push(step);
}

/** The here-document a COPY/ADD source names (`<<EOF`, `<<-"EOF"`, `3<<EOF`), when it is one of `names`. */
export function heredocRefName(word: string, names: ReadonlySet<string>): string | undefined {
  const m = /^\d*<<-?(.*)$/.exec(word);
  if (!m) return undefined;
  const name = (m[1] as string).replace(/^["']|["']$/g, '');
  return names.has(name) ? name : undefined;
}

function isHeredocRef(word: string, names: Set<string>): boolean {
  return heredocRefName(word, names) !== undefined;
}

/**
 * The body of a here-document with an unquoted delimiter, as BuildKit expands it: `$VAR` and
 * `${...}` expanded, quotes kept as they are, and a backslash (always the backslash, whatever
 * `# escape=` says) makes the next character literal and goes: `\$X` is `$X`, a backslash at
 * the end of a line leaves the line break.
 */
function expandHeredoc(body: string, lookup: EnvLookup): string {
  try {
    return expand(body, lookup, { escapeToken: '\\', skipQuotes: true }).word;
  } catch {
    return body;
  }
}

/**
 * ADD's fetched sources checked before the build, as BuildKit's frontend does: a git URL's query
 * and fragment, merged with --keep-git-dir and --checksum (a hex commit hash for git); a URL's
 * --checksum as <algorithm>:<hex digest>.
 */
function checkFetchedSources(sources: string[], flags: { keepGitDir?: boolean; checksum?: string }, error: (message: string) => Error): void {
  for (const src of sources) {
    try {
      const git = parseGitRef(src);
      if (git) gitOptions(git, flags);
      else if (flags.checksum && !/^sha(256|384|512):[0-9a-f]+$/.test(flags.checksum)) {
        throw new Error(`invalid --checksum "${flags.checksum}": expected <algorithm>:<hex digest>`);
      }
    } catch (err) {
      throw error((err as Error).message);
    }
  }
}
