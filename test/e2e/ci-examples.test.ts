import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { parse } from 'yaml';
import { projectRoot } from '../helpers/conformance.js';
import { startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';

// examples/ci holds a GitHub Actions workflow, a GitLab CI job and a Kubernetes Job that build
// with a registry cache (issue 24). Each is parsed, and its gantry command lines are run as the
// CI system would run them, against a local registry instead of the example's, on a runner that
// starts empty; a second runner, also empty, takes every step from the cache the first left.

const bin = path.join(projectRoot, 'bin', 'gantry');
const examples = path.join(projectRoot, 'examples', 'ci');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-ci-examples-'));
let reg: TestRegistry;
/** A directory holding `gantry`, first on the PATH the command lines run with. */
const binDir = path.join(work, 'bin');

beforeAll(async () => {
  const started = await startRegistry();
  if (!started) throw new Error('docker-registry is not installed');
  reg = started;
  mkdirSync(binDir);
  symlinkSync(bin, path.join(binDir, 'gantry'));
  const seed = path.join(work, 'seed');
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  for (const args of [['import', tarDir(rootfs, path.join(work, 'base.tgz')), 'busybox:1'], ['push', 'busybox:1', `${reg.host}/lib/busybox:1`]]) {
    const r = await execa(bin, ['--root', seed, ...args], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
  }
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  rmSync(work, { recursive: true, force: true });
});

/** A checkout of the project the examples build: examples/hello, its base in the local registry. */
function checkout(): string {
  const dir = mkdtempSync(path.join(work, 'checkout-'));
  cpSync(path.join(projectRoot, 'examples', 'hello'), dir, { recursive: true });
  const dockerfile = path.join(dir, 'Dockerfile');
  writeFileSync(dockerfile, readFileSync(dockerfile, 'utf8').replace('ARG BASE=busybox:latest', `ARG BASE=${reg.host}/lib/busybox:1`));
  return dir;
}

interface Ran {
  /** Steps that ran and steps taken from the cache, by name. */
  done: string[];
  cached: string[];
}

/** One runner: a store of its own, empty; progress as JSON (BUILDKIT_PROGRESS) so the test can count. */
async function runner(run: (env: Record<string, string>, cwd: string) => Promise<{ exitCode?: number; stderr: string }>): Promise<Ran> {
  const env = { GANTRY_ROOT: path.join(mkdtempSync(path.join(work, 'runner-')), 'store'), GANTRY_LOOPBACK_ONLY: '1', BUILDKIT_PROGRESS: 'json', PATH: `${binDir}:${process.env.PATH ?? ''}` };
  const r = await run(env, checkout());
  expect(r.exitCode, r.stderr).toBe(0);
  const steps = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { type: string; name?: string; status?: string })
    .filter((e) => e.type === 'step');
  return { done: steps.filter((e) => e.status === 'done').map((e) => e.name ?? ''), cached: steps.filter((e) => e.status === 'cached').map((e) => e.name ?? '') };
}

/** The first runner runs the build's RUN; the second, empty too, takes it and every other step from the registry cache. */
async function expectShared(run: (env: Record<string, string>, cwd: string) => Promise<{ exitCode?: number; stderr: string }>): Promise<void> {
  const first = await runner(run);
  expect(first.done.some((n) => / RUN echo/.test(n))).toBe(true);
  const second = await runner(run);
  expect(second.done.filter((n) => / (RUN|COPY) /.test(n))).toEqual([]);
  expect(second.cached.some((n) => / RUN echo/.test(n))).toBe(true);
}

const sh = (script: string) => (env: Record<string, string>, cwd: string) => execa('sh', ['-c', script], { cwd, env, reject: false });

describe('examples/ci', () => {
  test('GitHub Actions: the job runs in gantry\'s image, and its build step shares the cache through the registry', async () => {
    const workflow = parse(readFileSync(path.join(examples, 'github-actions.yml'), 'utf8')) as {
      jobs: Record<string, { container: { image: string }; env: Record<string, string>; steps: { run?: string }[] }>;
    };
    const job = Object.values(workflow.jobs)[0];
    expect(job?.container.image).toMatch(/gantry/);
    const runs = (job?.steps ?? []).flatMap((s) => (s.run ? [s.run] : []));
    expect(runs.some((r) => /\| gantry login .*--password-stdin/.test(r))).toBe(true);
    const buildLine = runs.find((r) => r.startsWith('gantry build')) as string;
    expect(buildLine).toContain('--cache-to type=registry');
    const image = (job?.env.IMAGE ?? '').replace('ghcr.io', reg.host);
    await expectShared((env, cwd) => sh(buildLine)({ ...env, IMAGE: image, GITHUB_SHA: 'c0ffee' }, cwd));
    // What it pushed is there.
    const r = await execa(bin, ['--root', path.join(work, 'check'), 'pull', `${image}:c0ffee`], { reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
  });

  test('GitLab CI: the script\'s build line, with the job\'s variables', async () => {
    const pipeline = parse(readFileSync(path.join(examples, 'gitlab-ci.yml'), 'utf8')) as Record<string, { image: { name: string }; variables: Record<string, string>; script: string[] }>;
    const job = pipeline['build-image'];
    expect(job?.image.name).toMatch(/gantry/);
    const buildLine = (job?.script ?? []).find((l) => l.startsWith('gantry build')) as string;
    expect(buildLine).toContain('mode=max');
    const predefined = { CI_REGISTRY_IMAGE: `${reg.host}/gitlab/app`, CI_COMMIT_SHORT_SHA: 'c0ffee' };
    // GitLab expands the job's variables with the predefined ones before the script runs.
    const variables = Object.fromEntries(Object.entries(job?.variables ?? {}).map(([k, v]) => [k, v.replace(/\$(\w+)/g, (_m, name: string) => predefined[name as keyof typeof predefined] ?? '')]));
    await expectShared((env, cwd) => sh(buildLine)({ ...env, ...predefined, ...variables }, cwd));
  });

  test('Kubernetes: the Job\'s container runs gantry without privileges, its arguments build against the registry', async () => {
    const job = parse(readFileSync(path.join(examples, 'kubernetes-job.yml'), 'utf8')) as {
      kind: string;
      spec: { template: { spec: { containers: { image: string; args: string[]; securityContext?: { privileged?: boolean } }[] } } };
    };
    expect(job.kind).toBe('Job');
    const container = job.spec.template.spec.containers[0];
    expect(container?.image).toMatch(/gantry/);
    expect(container?.securityContext?.privileged).not.toBe(true);
    const args = (container?.args ?? []).map((a) => a.replace('registry.example.com', reg.host));
    expect(args[0]).toBe('build');
    await expectShared((env, cwd) => execa(bin, args.map((a) => (a === '/workspace' ? cwd : a)), { env, reject: false }));
  });
});
