import { createReadStream, createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import tar from '../../src/tar/tar.js';

// Runs the real command (bin/gantry over the compiled dist/), as a user would.
const bin = path.join(projectRoot, 'bin', 'gantry');

function gantry(args: string[], options: { input?: string; cwd?: string; env?: Record<string, string> } = {}) {
  return execa(bin, args, { reject: false, cwd: options.cwd ?? projectRoot, env: { NO_COLOR: '1', ...options.env }, ...(options.input !== undefined ? { input: options.input } : {}) });
}

const made: string[] = [];
afterAll(() => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

function tempContext(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'gantry-cli-'));
  made.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return dir;
}

beforeAll(() => {
  if (!existsSync(path.join(projectRoot, 'dist', 'cli', 'main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (npm test does) before the e2e suite');
  }
});

describe('gantry --help and --version', () => {
  test('help lists the commands and the global --root', async () => {
    const r = await gantry(['--help']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('gantry build [context]');
    expect(r.stdout).toContain('gantry lint [context]');
    expect(r.stdout).toContain('--root');
  });
  test('version', async () => {
    const r = await gantry(['--version']);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
  test('an unknown command is an error that says so (exit 1, as docker), with the closest command', async () => {
    const r = await gantry(['frobnicate']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('unknown command "frobnicate"');
    expect((await gantry(['biuld'])).stderr).toContain('did you mean "build"?');
  });
});

describe('gantry build --dry-run', () => {
  test('prints the plan of the example and executes nothing', async () => {
    const r = await gantry(['build', '--dry-run', 'examples/hello']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('stage 0 "build": FROM image busybox:latest');
    expect(r.stdout).toContain('#3 [build 3/3] RUN echo "$GREETING" > greeting.txt');
    expect(r.stdout).toContain('from stage 0: /out/greeting.txt → /greeting.txt');
  });

  test('--format json gives the plan and warnings as data', async () => {
    const ctx = tempContext({ 'Dockerfile': 'FROM scratch AS a\nMAINTAINER me\nFROM scratch AS unused\nFROM a\nCMD x\n' });
    const r = await gantry(['build', '--dry-run', '--format', 'json', ctx]);
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { plan: { stages: { index: number }[]; skippedStages: { name: string }[] }; warnings: { rule: string }[] };
    expect(out.plan.stages.map((s) => s.index)).toEqual([0, 2]);
    expect(out.plan.skippedStages).toEqual([{ index: 1, name: 'unused' }]);
    expect(out.warnings.map((w) => w.rule)).toEqual(['MaintainerDeprecated', 'JSONArgsRecommended']);
  });

  test('-f, --build-arg, --target and --platform', async () => {
    const ctx = tempContext({
      'build.Dockerfile': 'ARG V=1\nFROM img:$V AS one\nARG TARGETARCH\nRUN echo $TARGETARCH\nFROM scratch AS two\n',
    });
    const r = await gantry([
      'build', '--dry-run', '--format', 'json', '-f', path.join(ctx, 'build.Dockerfile'),
      '--build-arg', 'V=2', '--build-arg', 'UNUSED=x', '--target', 'one', '--platform', 'linux/arm64', ctx,
    ]);
    expect(r.exitCode).toBe(0);
    const out = JSON.parse(r.stdout) as { plan: { images: string[]; platform: string; unusedBuildArgs: string[]; stages: { steps: { op: string; args?: { value: string }[] }[] }[] } };
    expect(out.plan.images).toEqual(['img:2']);
    expect(out.plan.platform).toBe('linux/arm64');
    expect(out.plan.unusedBuildArgs).toEqual(['UNUSED']);
    expect(out.plan.stages[0]?.steps[0]?.args?.[0]?.value).toBe('arm64');
  });

  test('--build-arg NAME takes the value from the environment', async () => {
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nARG FROM_ENV\n' });
    const r = await gantry(['build', '--dry-run', '--format', 'json', '--build-arg', 'FROM_ENV', ctx], { env: { FROM_ENV: 'yes' } });
    expect(JSON.parse(r.stdout).plan.stages[0].steps[0].args[0]).toEqual({ name: 'FROM_ENV', value: 'yes', source: 'build-arg' });
  });

  test('reads the Dockerfile from stdin with -f -', async () => {
    const r = await gantry(['build', '--dry-run', '-f', '-', '.'], { input: 'FROM scratch\nENV A=1\n' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('Dockerfile: <stdin>');
  });

  test('warnings go to stderr with file:line:column', async () => {
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nCMD echo hi\n' });
    const r = await gantry(['build', '--dry-run', ctx]);
    expect(r.stderr).toContain(`${path.join(ctx, 'Dockerfile')}:2:1: warning: JSONArgsRecommended:`);
  });

  test('a broken Dockerfile fails with the file, line and instruction', async () => {
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nCOPY onlyone\n' });
    const r = await gantry(['build', '--dry-run', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim()).toBe(
      `error: ${path.join(ctx, 'Dockerfile')}:2:1: COPY: COPY requires at least two arguments, but only one was provided. Destination could not be determined`,
    );
  });

  test('a missing Dockerfile and an unknown target are clear errors', async () => {
    const missing = await gantry(['build', '--dry-run', '/nonexistent-gantry-dir']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain('cannot read Dockerfile /nonexistent-gantry-dir/Dockerfile: no such file');
    const target = await gantry(['build', '--dry-run', '--target', 'nope', 'examples/hello']);
    expect(target.exitCode).toBe(2);
    expect(target.stderr).toContain('target stage "nope" could not be found');
  });

  test('without --dry-run, a base image that is neither in the store nor reachable is a clear error', async () => {
    // Only loopback is ever contacted: port 9 on 127.0.0.1 refuses the connection.
    const ctx = tempContext({ Dockerfile: 'FROM 127.0.0.1:9/nothing:1\nRUN true\n' });
    const r = await gantry(['--root', path.join(ctx, 'store'), 'build', ctx], { env: { DOCKER_CONFIG: ctx } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('127.0.0.1:9/v2/nothing/manifests/1');
  });
});

describe('gantry lint', () => {
  test('clean file', async () => {
    const r = await gantry(['lint', 'examples/hello']);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('no problems found');
  });

  test('warnings of every stage, with locations; exit 0', async () => {
    const ctx = tempContext({ Dockerfile: 'FROM scratch AS Build\nMAINTAINER me\nFROM scratch\nENV A $B\n' });
    const r = await gantry(['lint', ctx]);
    expect(r.exitCode).toBe(0);
    const file = path.join(ctx, 'Dockerfile');
    expect(r.stdout.trim().split('\n')).toEqual([
      `${file}:1:1: warning: StageNameCasing: Stage name 'Build' should be lowercase`,
      `${file}:2:1: warning: MaintainerDeprecated: Maintainer instruction is deprecated in favor of using label`,
      // In BuildKit's order: the value is expanded before ENV is checked.
      `${file}:4:1: warning: UndefinedVar: Usage of undefined variable '$B'`,
      `${file}:4:1: warning: LegacyKeyValueFormat: "ENV key=value" should be used instead of legacy "ENV key value" format`,
    ]);
  });

  test('errors exit 1 and name the location; an unknown instruction gets a suggestion', async () => {
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nCOPPY a b\n' });
    const r = await gantry(['lint', ctx]);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(`error: ${path.join(ctx, 'Dockerfile')}:2:1: unknown instruction: COPPY (did you mean COPY?)`);
  });

  test('--format json', async () => {
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nRUN <<EOF\nnever closed\n' });
    const r = await gantry(['lint', '--format', 'json', ctx]);
    expect(r.exitCode).toBe(1);
    const out = JSON.parse(r.stdout) as { error: { code: string; location: { line: number } } };
    expect(out.error.code).toBe('DOCKERFILE_HEREDOC');
    expect(out.error.location.line).toBe(2);
  });
});

describe('start-up (bin/gantry over dist/cli.cjs and its code cache)', () => {
  test('the bundle and its cache are built, and the command still runs when the cache is refused or the bundle is missing', async () => {
    expect(existsSync(path.join(projectRoot, 'dist', 'cli.cjs'))).toBe(true);
    expect(existsSync(path.join(projectRoot, 'dist', 'cli.cache'))).toBe(true);
    // A copy of the install, to spoil its cache and then remove its bundle.
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-start-'));
    made.push(dir);
    await execa('cp', ['-a', path.join(projectRoot, 'bin'), path.join(projectRoot, 'dist'), path.join(projectRoot, 'package.json'), dir]);
    symlinkSync(path.join(projectRoot, 'node_modules'), path.join(dir, 'node_modules'));
    const run = (args: string[]) => execa(path.join(dir, 'bin', 'gantry'), args, { reject: false, env: { NO_COLOR: '1' } });
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a\n' });
    const build = async (env: Record<string, string> = {}) =>
      execa(path.join(dir, 'bin', 'gantry'), ['--root', path.join(dir, 'store'), 'build', '--progress', 'plain', '--source-date-epoch', '0', ctx], { reject: false, env: { NO_COLOR: '1', ...env } });
    const expected = await build();
    expect(expected.exitCode, expected.stderr).toBe(0);
    // V8 takes the cache as bin/gantry reads the bundle: the same text (ASCII, read as latin1)
    // in the same wrapper as scripts/bundle.mjs compiled it.
    expect((await build({ GANTRY_TRACE: '1' })).stderr).toMatch(/code cache accepted/);
    expect(readFileSync(path.join(dir, 'dist', 'cli.cjs')).every((b) => b < 0x80)).toBe(true);
    writeFileSync(path.join(dir, 'dist', 'cli.cache'), 'not a code cache');
    const spoiled = await build({ GANTRY_TRACE: '1' });
    expect(spoiled.exitCode, spoiled.stderr).toBe(0);
    expect(spoiled.stderr).toMatch(/code cache rejected/);
    expect(spoiled.stdout).toBe(expected.stdout);
    rmSync(path.join(dir, 'dist', 'cli.cjs'));
    const unbundled = await build();
    expect(unbundled.exitCode, unbundled.stderr).toBe(0);
    expect(unbundled.stdout).toBe(expected.stdout);
    expect((await run(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // A Dockerfile error is still reported with its line, exit 1, through either loader.
    const bad = await run(['build', tempContext({ Dockerfile: 'FROM scratch\nNOPE x\n' })]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/Dockerfile:2/);
  }, 60_000);

  test('a plain build command line is read without yargs (nor node:assert, which yargs loads); another goes through yargs; a no-op rebuild loads no zlib, child_process or fs/promises', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-argv-'));
    made.push(dir);
    // Node's list of the built-in modules this process loaded, written as it exits.
    const probe = path.join(dir, 'probe.cjs');
    writeFileSync(probe, "process.on('exit', () => require('node:fs').writeFileSync(process.env.PROBE_OUT, process.moduleLoadList.join('\\n')));\n");
    const ctx = tempContext({ Dockerfile: 'FROM scratch\nCOPY a /a\n', a: 'a\n' });
    // Older than the stat cache's racy window (1 s), so the rebuild below trusts its record of `a`.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const loaded = async (args: string[]) => {
      const out = path.join(dir, 'modules.txt');
      rmSync(out, { force: true });
      const r = await execa(process.execPath, ['--require', probe, bin, '--root', path.join(dir, 'store'), ...args], { reject: false, env: { NO_COLOR: '1', PROBE_OUT: out } });
      expect(r.exitCode, r.stderr).toBe(0);
      return { stdout: r.stdout, modules: readFileSync(out, 'utf8').split('\n') };
    };
    const plain = await loaded(['build', '--progress', 'plain', '--no-cache', '-t', 'argv:plain', ctx]);
    expect(plain.modules).not.toContain('NativeModule assert');
    // A rebuild that changes nothing needs neither zlib, child processes nor fs/promises (its
    // reads are synchronous; the bundle loads fs/promises on a first call): they are not loaded.
    const again = await loaded(['build', '--progress', 'plain', '-t', 'argv:plain', ctx]);
    expect(again.stdout).toBe(plain.stdout);
    for (const m of ['assert', 'zlib', 'child_process', 'fs/promises']) expect(again.modules).not.toContain(`NativeModule ${m}`);
    expect(plain.modules).toContain('NativeModule fs/promises'); // the probe sees it when it is loaded
    // -t=NAME is left to yargs: the same build, and yargs' assert is loaded.
    const other = await loaded(['build', '--progress', 'plain', '-t=argv:other', ctx]);
    expect(other.modules).toContain('NativeModule assert');
    expect(other.stdout).toBe(plain.stdout);
    const images = await gantry(['--root', path.join(dir, 'store'), 'images']);
    expect(images.stdout).toContain('argv');
    expect(images.stdout).toContain('other');
    expect(images.stdout).toContain('plain');
  }, 60_000);

  test("the bundle's tar keeps PAX records binary: a capability survives import and export byte for byte", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gantry-pax-'));
    made.push(dir);
    // Not UTF-8: a tar that read PAX values as UTF-8 (tar-stream's) would turn these bytes into U+FFFD.
    const cap = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0x20, 0x00, 0x00, 0xff, 0xfe, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const pack = tar.pack();
    pack.entry({ name: 'bin/', type: 'directory', mode: 0o755, mtime: new Date(0) });
    pack.entry({ name: 'bin/ping', mode: 0o755, mtime: new Date(0), pax: { 'SCHILY.xattr.security.capability': cap.toString('latin1') } }, 'ping\n');
    pack.finalize();
    const input = path.join(dir, 'rootfs.tar');
    await pipeline(pack, createWriteStream(input));
    const store = path.join(dir, 'store');
    const imported = await gantry(['--root', store, 'import', input, 'pax:1']);
    expect(imported.exitCode, imported.stderr).toBe(0);
    const out = path.join(dir, 'out.tar');
    const exported = await gantry(['--root', store, 'export', 'pax:1', '-o', out]);
    expect(exported.exitCode, exported.stderr).toBe(0);
    const found = new Map<string, Buffer>();
    const extract = tar.extract();
    const reading = pipeline(createReadStream(out), extract);
    for await (const entry of extract) {
      const value = entry.header.pax?.['SCHILY.xattr.security.capability'];
      if (value !== undefined) found.set(entry.header.name, Buffer.from(value, 'latin1'));
      entry.resume();
    }
    await reading;
    expect(found.get('bin/ping')?.toString('hex')).toBe(cap.toString('hex'));
  }, 60_000);
});
