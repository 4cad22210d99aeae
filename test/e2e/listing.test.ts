import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { projectRoot } from '../helpers/conformance.js';
import { BUSYBOX, makeBusyboxRootfs, tarDir } from '../helpers/rootfs.js';
import { humanSize } from '../../src/cli/format.js';

// The listing commands as docker words them: sizes (unpacked content), --format templates,
// system df, shell completion, unknown commands and flags. Runs bin/gantry (npm run build first).

const bin = path.join(projectRoot, 'bin', 'gantry');
const work = mkdtempSync(path.join(tmpdir(), 'gantry-listing-'));
const root = path.join(work, 'store');
const gantry = (args: string[], env: Record<string, string> = {}) =>
  execa(bin, ['--root', root, ...args], { reject: false, env: { NO_COLOR: '1', TZ: 'UTC', ...env } });

/** The busybox rootfs's regular files: what its layer holds as content. */
let busyboxContent: number;
/** The gzip blob the import stored. */
let busyboxBlob: number;
const COPIED = 5000;

beforeAll(async () => {
  if (!existsSync(BUSYBOX)) throw new Error('busybox-static is required');
  if (!existsSync(path.join(projectRoot, 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run `npm run build`');
  const rootfs = makeBusyboxRootfs(path.join(work, 'rootfs'));
  busyboxContent = ['bin/busybox', 'etc/passwd', 'etc/group'].reduce((n, f) => n + statSync(path.join(rootfs, f)).size, 0);
  const imported = await gantry(['import', tarDir(rootfs, path.join(work, 'busybox.tgz')), 'busybox:latest', '-c', 'CMD ["sh"]']);
  expect(imported.exitCode, imported.stderr).toBe(0);
  const manifest = JSON.parse((await gantry(['inspect', 'busybox'])).stdout)[0].Descriptor.digest as string;
  const m = JSON.parse(readFileSync(path.join(root, 'blobs', 'sha256', manifest.slice(7)), 'utf8')) as { layers: { size: number }[] };
  busyboxBlob = (m.layers[0] as { size: number }).size;

  const ctx = path.join(work, 'ctx');
  mkdirSync(ctx);
  writeFileSync(path.join(ctx, 'data.bin'), Buffer.alloc(COPIED, 7));
  writeFileSync(path.join(ctx, 'Dockerfile'), 'FROM busybox\nCOPY data.bin /data.bin\nRUN mkdir /emptydir\nRUN echo hi > /hi.txt\nENV A=1\n');
  const built = await gantry(['build', '--progress', 'plain', '-t', 'app:1', ctx]);
  expect(built.exitCode, built.stderr).toBe(0);
}, 180_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('sizes are the layers\' unpacked content, as docker shows them', () => {
  test('images SIZE and inspect Size: the regular files\' bytes, not the compressed blob', async () => {
    const bytes = Number((await gantry(['inspect', '--format', '{{.Size}}', 'busybox'])).stdout);
    expect(bytes).toBe(busyboxContent);
    expect(bytes).not.toBe(busyboxBlob);
    expect((await gantry(['images', '--format', '{{.Size}}', 'busybox'])).stdout).toBe(humanSize(busyboxContent));
    // Kept by diff ID, so the gzip layer is read once.
    expect(readdirSync(path.join(root, 'cache')).filter((n) => /^size-[0-9a-f]{64}\.json$/.test(n)).length).toBeGreaterThan(0);
    const app = Number((await gantry(['inspect', '--format', '{{.Size}}', 'app:1'])).stdout);
    expect(app).toBe(busyboxContent + COPIED + 3);
  });

  test('history SIZE is each layer\'s content; steps without a layer 0B (--human=false: bytes)', async () => {
    const r = await gantry(['history', '--human=false', '--format', '{{.Size}} {{.CreatedBy}}', 'app:1']);
    expect(r.exitCode, r.stderr).toBe(0);
    const sizes = r.stdout.split('\n').map((l) => l.split(' ')[0]);
    expect(sizes).toEqual(['0', '3', '0', String(COPIED), String(busyboxContent)]);
    const human = await gantry(['history', 'app:1']);
    expect(human.stdout.split('\n')[0]).toMatch(/^IMAGE {10}CREATED +CREATED BY +SIZE {6}COMMENT$/);
    expect(human.stdout).toMatch(/COPY data\.bin \/data\.bin # buildkit\s+5kB\s/);
    expect(human.stdout).toMatch(/RUN \/bin\/sh -c echo hi > \/hi\.txt # buildkit\s+3B\s/);
  });
});

describe('--format: Go templates as docker takes them', () => {
  test('images: field references, one line per image', async () => {
    const r = await gantry(['images', '--format', '{{.Repository}}:{{.Tag}}']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.split('\n').sort()).toEqual(['app:1', 'busybox:latest']);
  });

  test('images: table with a header row, aligned, \\t as docker reads it', async () => {
    const r = await gantry(['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.Size}}', 'busybox']);
    expect(r.stdout).toBe(`REPOSITORY   TAG       SIZE\nbusybox      latest    ${humanSize(busyboxContent)}`);
    const plain = await gantry(['images', 'busybox']);
    expect(plain.stdout.split('\n')[0]).toMatch(/^REPOSITORY {3}TAG {7}IMAGE ID {7}CREATED +SIZE$/);
  });

  test('images, history: {{json .}} has docker\'s keys', async () => {
    const image = JSON.parse((await gantry(['images', '--format', '{{json .}}', 'app'])).stdout);
    expect(Object.keys(image)).toEqual(['Containers', 'CreatedAt', 'CreatedSince', 'Digest', 'ID', 'Repository', 'SharedSize', 'Size', 'Tag', 'UniqueSize', 'VirtualSize']);
    expect(image).toMatchObject({ Repository: 'app', Tag: '1', Size: humanSize(busyboxContent + COPIED + 3) });
    expect(image.CreatedAt).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0000 UTC$/);
    const history = (await gantry(['history', '--format', '{{json .}}', 'app:1'])).stdout.split('\n').map((l) => JSON.parse(l));
    expect(Object.keys(history[0])).toEqual(['Comment', 'CreatedAt', 'CreatedBy', 'CreatedSince', 'ID', 'Size']);
    expect(history[0].CreatedBy).toBe('ENV A=1');
  });

  test('inspect --format: {{.Id}}, {{json .Config}}', async () => {
    const id = JSON.parse((await gantry(['inspect', 'app:1'])).stdout)[0].Id as string;
    expect((await gantry(['inspect', '--format', '{{.Id}}', 'app:1'])).stdout).toBe(id);
    expect(JSON.parse((await gantry(['inspect', '-f', '{{json .Config}}', 'app:1'])).stdout)).toMatchObject({ Env: expect.arrayContaining(['A=1']), Cmd: ['sh'] });
  });

  test('what it does not support is refused with the reason, nothing printed, exit 2', async () => {
    const missing = await gantry(['images', '--format', '{{.Nope}}']);
    expect(missing.exitCode).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain('an image row has no field .Nope; its fields: .Containers, .CreatedAt');
    const range = await gantry(['history', '--format', '{{range .}}{{end}}', 'app:1']);
    expect(range.exitCode).toBe(2);
    expect(range.stderr).toContain('{{range}} is not supported');
    const structure = await gantry(['inspect', '--format', '{{.Config}}', 'app:1']);
    expect(structure.exitCode).toBe(2);
    expect(structure.stdout).toBe('');
    expect(structure.stderr).toContain('{{.Config}} is a structure, which gantry prints only as JSON: {{json .Config}}');
  });
});

describe('system df', () => {
  test('a row per kind the store holds, docker\'s columns', async () => {
    const r = await gantry(['system', 'df']);
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE$/);
    expect(lines.map((l) => l.split(/\s{2,}/)[0])).toEqual(['TYPE', 'Images', 'Containers', 'Build Cache', 'Base extracts', 'Step snapshots', 'Cache mounts', 'Trash', 'Unused blobs']);
    expect(lines[1]).toMatch(/^Images\s+2\s+2\s+\S+\s+0B \(0%\)$/);
  });

  test('sizes are the bytes on disk; an untagged image is reclaimable; --format and json', async () => {
    const imported = await gantry(['import', path.join(work, 'busybox.tgz'), '-c', 'CMD ["true"]']);
    expect(imported.exitCode, imported.stderr).toBe(0);
    const usage = JSON.parse((await gantry(['system', 'df', '--format', 'json'])).stdout) as { rows: { type: string; total: number; active: number; size: number; reclaimable: number }[] };
    const images = usage.rows.find((row) => row.type === 'Images');
    const blobs = readdirSync(path.join(root, 'blobs', 'sha256'));
    expect(images).toMatchObject({ total: 3, active: 2 });
    // The new image shares its layer: only its manifest and config are its own.
    expect(images?.reclaimable).toBeGreaterThan(0);
    expect(images?.reclaimable).toBeLessThan(2000);
    expect(images?.size).toBeLessThanOrEqual(blobs.reduce((n, b) => n + statSync(path.join(root, 'blobs', 'sha256', b)).size, 0));
    expect(usage.rows.find((row) => row.type === 'Build Cache')?.total).toBeGreaterThan(2);
    const templated = await gantry(['system', 'df', '--format', '{{.Type}}={{.TotalCount}}']);
    expect(templated.stdout.split('\n')[0]).toBe('Images=3');
    expect(Object.keys(JSON.parse((await gantry(['system', 'df', '--format', '{{json .}}'])).stdout.split('\n')[0] as string))).toEqual([
      'Active',
      'Reclaimable',
      'Size',
      'TotalCount',
      'Type',
    ]);
    const verbose = await gantry(['system', 'df', '-v']);
    expect(verbose.stdout).toContain('Images space usage:');
    expect(verbose.stdout).toMatch(/Build cache usage: \S+/);
  });
});

describe('the command line', () => {
  test('completion bash: a script; completing "gantry bu" through bash gives build', async () => {
    const script = await gantry(['completion', 'bash']);
    expect(script.exitCode).toBe(0);
    expect(script.stdout).toContain('complete -o bashdefault -o default -F _gantry_completions gantry');
    const file = path.join(work, 'completion.bash');
    writeFileSync(file, script.stdout);
    const complete = async (...words: string[]) =>
      (
        await execa('bash', ['-c', `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _gantry_completions; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', file, ...words], {
          env: { PATH: `${path.join(projectRoot, 'bin')}:${process.env.PATH}` },
        })
      ).stdout;
    expect(await complete('gantry', 'bu')).toBe('build');
    expect(await complete('gantry', 'images', '--fo')).toBe('--format');
    expect(await complete('gantry', 'system', '')).toBe('df');
    expect((await gantry(['completion', 'zsh'])).stdout).toMatch(/^#compdef gantry\n/);
  });

  test('an unknown command: the closest one suggested, exit 1', async () => {
    const r = await gantry(['biuld']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toBe('error: unknown command "biuld"; did you mean "build"?');
    const sub = await gantry(['system', 'dff']);
    expect(sub.exitCode).toBe(1);
    expect(sub.stderr).toBe('error: unknown command "system dff"; did you mean "system df"?');
    const far = await gantry(['frobnicate']);
    expect(far.exitCode).toBe(1);
    expect(far.stderr).toBe('error: unknown command "frobnicate" (gantry --help lists the commands)');
  });

  test('an unknown flag: said as a flag, with the closest one, exit 2', async () => {
    const r = await gantry(['images', '--fromat', 'x']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toBe('error: unknown flag: --fromat; did you mean --format?\nRun gantry images --help for usage.');
    const extra = await gantry(['images', 'a', 'b']);
    expect(extra.stderr).toContain('error: unexpected argument "b"');
  });
});

describe('the size records in the store', () => {
  test('fsck accepts them; prune drops those of layers no image has', async () => {
    const records = () => readdirSync(path.join(root, 'cache')).filter((n) => /^size-[0-9a-f]{64}\.json$/.test(n)).map((n) => `sha256:${n.slice(5, 69)}`);
    const layers = JSON.parse((await gantry(['inspect', 'app:1'])).stdout)[0].RootFS.Layers as string[];
    await gantry(['images']); // every image's layers sized
    expect(records()).toEqual(expect.arrayContaining(layers));
    const fsck = await gantry(['fsck']);
    expect(fsck.stdout).not.toContain('size-');
    expect(fsck.exitCode, fsck.stdout).toBe(0);
    await gantry(['rmi', 'app:1']);
    expect((await gantry(['prune'])).exitCode).toBe(0);
    expect(records()).toContain(layers[0]); // busybox's layer: images still have it
    expect(records()).not.toContain(layers[1]); // the COPY's: gone with app:1
  });
});
