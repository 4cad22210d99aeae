import { execFileSync } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ownerOf } from '../../src/tar/pax.js';
import tar from '../../src/tar/tar.js';
import type { BuildSpec, Check, CheckFile, Expectations, Harness, ImageEntry } from '../buildkit-checks/types.js';
import { projectRoot } from '../helpers/conformance.js';
import { DEBIAN_PATH, debianBaseTarball } from '../helpers/debian.js';
import { suiteWorkDir } from '../helpers/gantry.js';
import { BUSYBOX, tarDir } from '../helpers/rootfs.js';

// BuildKit's own Dockerfile tests (frontend/dockerfile/*_test.go), ported as data under
// test/buildkit-checks/ (one module per BuildKit test file): each check builds its Dockerfile
// with gantry FROM a busybox image with every applet (as Docker Hub's busybox has them) and
// asserts what BuildKit's test asserts. The suite ends by printing how many of BuildKit's tests
// were ported, how many pass, and which were not ported and why.

const checksDir = path.join(projectRoot, 'test', 'buildkit-checks');
const modules = readdirSync(checksDir).filter((f) => f.endsWith('.ts') && f !== 'types.ts').sort();
const checkFiles: CheckFile[] = [];
for (const m of modules) checkFiles.push(((await import(path.join(checksDir, m))) as { default: CheckFile }).default);

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = suiteWorkDir('gantry-bkchecks-');
const root = path.join(work, 'store');
const g = (args: string[], input?: Buffer) => execa(bin, ['--root', root, ...args], { reject: false, all: true, ...(input ? { input } : {}) });
let debianReady: Promise<void> | undefined;
const results = { passed: 0, failed: [] as string[], gapsStillFailing: 0 };

/** `adduser [-D] [-H] [-S] [-u UID] [-G GROUP] [-h HOME] [-s SHELL] USER [GROUP]` and `addgroup [-S] [-g GID] GROUP | USER GROUP`, as busybox's. */
const ACCOUNT_TOOLS = {
  adduser: `#!/bin/sh
home= shell=/bin/sh uid= group= nohome=
while getopts DHSu:G:h:s:g: o; do case $o in u) uid=$OPTARG;; G) group=$OPTARG;; h) home=$OPTARG;; s) shell=$OPTARG;; H) nohome=1;; esac; done
shift $((OPTIND - 1))
user=$1
if [ -n "$2" ]; then sed -i "/^$2:/ s/[^:]$/&,$user/; /^$2:/ s/:$/:$user/" /etc/group; exit 0; fi
grep -q "^$user:" /etc/passwd && { echo "adduser: user '$user' in use" >&2; exit 1; }
[ -n "$uid" ] || uid=$(awk -F: 'BEGIN{m=999} $3>m && $3<60000 {m=$3} END{print m+1}' /etc/passwd)
if [ -n "$group" ]; then gid=$(awk -F: -v g="$group" '$1==g {print $3}' /etc/group); else gid=$uid; echo "$user:x:$gid:" >> /etc/group; fi
[ -n "$home" ] || home=/home/$user
echo "$user:x:$uid:$gid:Linux User,,,:$home:$shell" >> /etc/passwd
[ -f /etc/shadow ] && echo "$user:!:0:0:99999:7:::" >> /etc/shadow
if [ -z "$nohome" ]; then mkdir -p "$home" && chown "$uid:$gid" "$home" && chmod 2755 "$home"; fi
`,
  addgroup: `#!/bin/sh
gid=
while getopts Sg: o; do case $o in g) gid=$OPTARG;; esac; done
shift $((OPTIND - 1))
if [ -n "$2" ]; then exec adduser "$1" "$2"; fi
[ -n "$gid" ] || gid=$(awk -F: 'BEGIN{m=999} $3>m && $3<60000 {m=$3} END{print m+1}' /etc/group)
echo "$1:x:$gid:" >> /etc/group
`,
};

beforeAll(async () => {
  // busybox with all of its applets, as busybox:latest and under Docker Hub's full name.
  const rootfs = path.join(work, 'busybox-rootfs');
  for (const d of ['bin', 'etc', 'tmp', 'root', 'usr/bin', 'usr/sbin', 'sbin', 'var']) mkdirSync(path.join(rootfs, d), { recursive: true });
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  execFileSync('cp', [BUSYBOX, path.join(rootfs, 'bin', 'busybox')]);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) symlinkSync('busybox', path.join(rootfs, 'bin', a));
  writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n');
  writeFileSync(path.join(rootfs, 'etc', 'group'), 'root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n');
  // Debian's busybox-static lacks adduser and addgroup; stand-ins in sh do what BuildKit's tests use of them.
  for (const [name, text] of Object.entries(ACCOUNT_TOOLS)) writeFileSync(path.join(rootfs, 'bin', name), text, { mode: 0o755 });
  const tarball = tarDir(rootfs, path.join(work, 'busybox.tgz'));
  const r = await g(['import', tarball, 'busybox:latest', '-c', 'CMD ["sh"]', '-c', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  expect(r.exitCode, r.all).toBe(0);
}, 5 * 60_000);

afterAll(() => {
  const ported = checkFiles.reduce((n, f) => n + new Set(f.checks.map((c) => c.name)).size, 0);
  const notPorted = checkFiles.flatMap((f) => f.notPorted);
  const gaps = checkFiles.flatMap((f) => f.checks.filter((c) => c.gap).map((c) => `${f.file} ${c.name}: ${c.gap}`));
  const lines = [
    `BuildKit's Dockerfile tests: ${ported + notPorted.length} read, ${ported} ported as ${checkFiles.reduce((n, f) => n + f.checks.length, 0)} checks;`,
    `${results.passed} checks pass, ${gaps.length} are known differences (expected to fail), ${results.failed.length} failed.`,
    ...(gaps.length ? ['Known differences:', ...gaps.map((g) => `  ${g}`)] : []),
    `Not ported (${notPorted.length}):`,
    ...notPorted.map((n) => `  ${n.file} ${n.name}: ${n.reason}`),
  ];
  console.log(lines.join('\n'));
  rmSync(work, { recursive: true, force: true });
});

async function ensureDebian(): Promise<void> {
  debianReady ??= (async () => {
    const tarball = debianBaseTarball();
    if (!tarball) throw new Error('the Debian base tarball could not be made');
    const r = await g(['import', tarball, 'debian:bookworm', '-c', `ENV ${DEBIAN_PATH}`, '-c', 'CMD ["bash"]']);
    expect(r.exitCode, r.all).toBe(0);
  })();
  return debianReady;
}

async function readImage(file: string): Promise<Map<string, ImageEntry>> {
  const out = new Map<string, ImageEntry>();
  const extract = tar.extract();
  const input = createReadStream(file);
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  for await (const entry of extract) {
    const h = entry.header;
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
    if (!name) continue;
    const o = ownerOf(h);
    out.set(name, { type: h.type ?? 'file', mode: (h.mode ?? 0) & 0o7777, owner: `${o.uid}:${o.gid}`, linkname: h.linkname ?? '', content: Buffer.concat(chunks).toString('utf8') });
  }
  // A hard link's content is its target's.
  for (const e of out.values()) if (e.type === 'link') e.content = out.get(e.linkname.replace(/^\.?\/+/, ''))?.content ?? '';
  return out;
}

function writeContext(dir: string, spec: Partial<BuildSpec>, fresh: boolean): void {
  if (fresh) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  if (spec.dockerfile !== undefined) writeFileSync(path.join(dir, 'Dockerfile'), spec.dockerfile);
  for (const [name, e] of Object.entries(spec.context ?? {})) {
    const p = path.join(dir, name);
    mkdirSync(path.dirname(p), { recursive: true });
    rmSync(p, { recursive: true, force: true });
    if (typeof e === 'string') writeFileSync(p, e);
    else if (e.symlink !== undefined) symlinkSync(e.symlink, p);
    else if (e.dir) mkdirSync(p, { recursive: true });
    else writeFileSync(p, e.content ?? '');
    if (typeof e !== 'string' && e.mode !== undefined && e.symlink === undefined) chmodSync(p, e.mode);
  }
}

/** The harness a check runs in: its own context and work directory, the suite's store. */
function harnessFor(check: Check & { file: string }): Harness {
  const dir = path.join(work, 'checks', `${check.file}-${check.name}`);
  const ctx = path.join(dir, 'context');
  let builds = 0;
  const files = async (tag: string): Promise<Map<string, ImageEntry>> => {
    const file = path.join(dir, `rootfs-${tag.replace(/[/:]/g, '-')}.tar`);
    mkdirSync(dir, { recursive: true }); // a check that built from a URL made no context here
    const e = await g(['export', tag, '-o', file]);
    expect(e.exitCode, e.all).toBe(0);
    return readImage(file);
  };
  const inspect = async (tag: string) => {
    const i = await g(['inspect', tag]);
    expect(i.exitCode, i.all).toBe(0);
    return (JSON.parse(i.stdout) as (Record<string, unknown> & { Config: Record<string, unknown> })[])[0]!;
  };
  return {
    files,
    inspect,
    async gantry(args, input) {
      const r = await g(args, input);
      return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), output: String(r.all) };
    },
    async build(spec, options = {}) {
      writeContext(ctx, spec, !options.keepContext);
      for (const [name, text] of Object.entries(spec.workFiles ?? {})) writeFileSync(path.join(dir, name), text);
      const tag = options.tag ?? `checks/${check.name.toLowerCase()}:${builds++}`;
      const fill = (a: string) => a.replaceAll('{ctx}', ctx).replaceAll('{work}', dir);
      const r = await g([
        'build', '--progress', 'plain', '-t', tag,
        ...Object.entries(spec.buildArgs ?? {}).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`]),
        ...(spec.target ? ['--target', spec.target] : []),
        ...(spec.args ?? []).map(fill),
        ctx,
      ]);
      return { exitCode: r.exitCode ?? -1, output: String(r.all), tag, ctx, dir };
    },
    async expectImage(result, exp) {
      expect(result.exitCode, result.output).toBe(0);
      for (const re of exp.output ?? []) expect(result.output).toMatch(re);
      for (const re of exp.notOutput ?? []) expect(result.output).not.toMatch(re);
      if (exp.files || exp.absent || exp.present || exp.modes || exp.owners || exp.symlinks || exp.types) {
        const image = await files(result.tag);
        const at = (p: string): ImageEntry => {
          const found = image.get(p);
          expect(found, `${p} is missing from the image`).toBeDefined();
          return found!;
        };
        for (const [p, want] of Object.entries(exp.files ?? {})) {
          if (typeof want === 'string') expect(at(p).content, p).toBe(want);
          else expect(at(p).content, p).toMatch(want);
        }
        for (const p of exp.absent ?? []) expect(image.has(p), `${p} should not exist`).toBe(false);
        for (const p of exp.present ?? []) at(p);
        for (const [p, m] of Object.entries(exp.modes ?? {})) expect(at(p).mode.toString(8), p).toBe(m.toString(8));
        for (const [p, o] of Object.entries(exp.owners ?? {})) expect(at(p).owner, p).toBe(o);
        for (const [p, l] of Object.entries(exp.symlinks ?? {})) {
          expect(at(p).type, p).toBe('symlink');
          expect(at(p).linkname, p).toBe(l);
        }
        for (const [p, t] of Object.entries(exp.types ?? {})) expect(at(p).type, p).toBe(t);
      }
      if (exp.config) {
        const config = (await inspect(result.tag)).Config;
        for (const [k, v] of Object.entries(exp.config)) expect(config[k] ?? null, k).toEqual(v);
      }
    },
  };
}

/** One build of a data check: an expected failure, or an image that meets the expectations. */
async function buildStep(h: Harness, spec: BuildSpec, exp: Expectations & { error?: RegExp }, keepContext: boolean): Promise<void> {
  const r = await h.build(spec, { keepContext });
  if (exp.error) {
    expect(r.exitCode, r.output).not.toBe(0);
    expect(r.exitCode, r.output).not.toBe(70);
    expect(r.output).toMatch(exp.error);
    return;
  }
  await h.expectImage(r, exp);
}

for (const cf of checkFiles) {
  describe(cf.file, () => {
    for (const check of cf.checks) {
      const run = async (): Promise<void> => {
        if (check.debian) await ensureDebian();
        const h = harnessFor({ ...check, file: cf.file });
        if (check.custom) return check.custom(h);
        await buildStep(h, check, check, false);
        let spec: BuildSpec = check;
        for (const next of check.then ?? []) {
          spec = { ...spec, ...next, context: next.context ?? {} };
          await buildStep(h, spec, next, true);
        }
      };
      const title = check.gap ? `${check.name} (known difference: ${check.gap})` : check.name;
      const body = async (): Promise<void> => {
        try {
          await run();
          if (check.gap) results.gapsStillFailing--;
          else results.passed++;
        } catch (e) {
          if (check.gap) results.gapsStillFailing++;
          else results.failed.push(`${cf.file} ${check.name}`);
          throw e;
        }
      };
      if (check.gap) test.fails(title, body, 5 * 60_000);
      else test(title, body, 5 * 60_000);
    }
  });
}
