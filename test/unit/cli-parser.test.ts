import { afterEach, describe, expect, test } from 'vitest';
import { commandName, COMMAND_FILES, createParser } from '../../src/cli/main.js';
import { BUILD_OPTIONS, type BuildArgs } from '../../src/cli/commands/build.js';
import { fastBuildArgs } from '../../src/cli/fast-build.js';

describe('the command line parser registers only the named command file', () => {
  test('the command a line names: the first word that is not an option or the value of --root', () => {
    expect(commandName(['build', '.'])).toBe('build');
    expect(commandName(['--root', '/s', 'images'])).toBe('images');
    expect(commandName(['--root=/s', 'push', 'a'])).toBe('push');
    expect(commandName(['--help'])).toBeUndefined();
    expect(commandName(['-v'])).toBeUndefined();
    expect(commandName(['--', 'build'])).toBeUndefined();
    expect(commandName([])).toBeUndefined();
  });

  test('COMMAND_FILES names every command the full parser has, each once', async () => {
    const commands = ((await createParser([])) as unknown as { getInternalMethods(): { getCommandInstance(): { getCommands(): string[] } } })
      .getInternalMethods()
      .getCommandInstance()
      .getCommands();
    const listed = COMMAND_FILES.flatMap(([names]) => [...names]);
    expect([...listed].sort()).toEqual([...commands].sort());
    expect(new Set(listed).size).toBe(listed.length);
  });

  test("a named command's parser has that file's commands only; anything else gets all of them", async () => {
    const commandsOf = async (args: string[]) =>
      ((await createParser(args)) as unknown as { getInternalMethods(): { getCommandInstance(): { getCommands(): string[] } } })
        .getInternalMethods()
        .getCommandInstance()
        .getCommands()
        .sort();
    expect(await commandsOf(['build', '.'])).toEqual(['build']);
    expect(await commandsOf(['--root', '/s', 'rmi', 'x'])).toEqual(['history', 'images', 'inspect', 'rmi', 'tag']);
    const all = await commandsOf([]);
    expect(all.length).toBeGreaterThan(10);
    expect(await commandsOf(['buidl'])).toEqual(all);
    expect(await commandsOf(['--help'])).toEqual(all);
  });
});

describe('a plain build command line is read without yargs, as yargs reads it', () => {
  /** What yargs gives the build command's handler for a command line (undefined: it did not call it). */
  async function yargsReading(args: string[]): Promise<Record<string, unknown> | undefined> {
    let got: BuildArgs | undefined;
    const parser = await createParser(args, {
      build: async (argv) => {
        got = argv;
      },
    });
    try {
      await parser
        .exitProcess(false)
        .fail((msg, err) => {
          throw err ?? new Error(msg);
        })
        .parseAsync();
    } catch {
      return undefined;
    }
    return got ? pick(got) : undefined;
  }
  /** The fields the handler reads: the options, the context and the store. */
  const pick = (argv: object): Record<string, unknown> => {
    const a = argv as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of ['root', 'context', ...Object.keys(BUILD_OPTIONS)]) if (a[k] !== undefined) out[k] = a[k];
    return out;
  };
  const env = { ...process.env };
  afterEach(() => {
    process.env = { ...env };
  });

  const plain: string[][] = [
    ['build'],
    ['build', '.'],
    ['build', 'ctx'],
    ['--root', '/s', 'build', 'ctx'],
    ['--root=/s', 'build', '-t', 'a:1', '--tag', 'b', '-t', 'c'],
    ['build', '--no-cache', '--progress', 'plain', '--build-arg', 'REGISTRY=127.0.0.1:5000', '-t', 'bench/x:gantry', 'ctx'],
    ['build', 'ctx', '--root', '/elsewhere', '--push'],
    ['build', '--cache', '--dry-run', '--format', 'json', '-f', 'Dockerfile.alt'],
    ['build', '-f', '-', '.'],
    ['build', '--file=sub/Dockerfile', '--target', 'test', '--platform', 'linux/arm64/v8', 'ctx'],
    ['build', '--build-arg', 'A=1', '--build-arg', 'B', '--build-arg=C=x=y', 'ctx'],
    ['build', '--source-date-epoch', '1700000000', '--isolation', 'chroot', '--iidfile', 'id.txt', '--metadata-file', 'm.json'],
    ['build', '-o', 'type=oci,dest=out.tar', '--output', 'type=local,dest=dir', '--secret', 'id=a,src=f', '--insecure-registry', 'localhost:5000'],
    ['build', '--no-push', '--no-dry-run', '--progress=json', '--tag='],
    ['build', '--isolation', 'oci', '--progress', 'tty', '--format', 'text', '--source-date-epoch=0'],
  ];

  test.each(plain.map((a) => [a]))('%j: the same as yargs', async (args) => {
    const fast = fastBuildArgs(args);
    expect(fast, 'read without yargs').toBeDefined();
    expect(pick(fast as BuildArgs)).toEqual(await yargsReading(args));
  });

  test('the store comes from $GANTRY_ROOT when --root is not given, as with yargs', async () => {
    process.env.GANTRY_ROOT = '/from/env';
    const fast = fastBuildArgs(['build', 'ctx']);
    expect(fast?.root).toBe('/from/env');
    expect(pick(fast as BuildArgs)).toEqual(await yargsReading(['build', 'ctx']));
  });

  // Each is left to yargs: help, an unknown option, a value read differently, a repeated
  // single-value option, a bad choice or number, a second positional, `--`.
  const others: string[][] = [
    ['images'],
    ['build', '--help'],
    ['build', '-h'],
    ['--version'],
    ['build', '--nocache'],
    ['build', '--buildArg', 'A=1'],
    ['build', '-tname'],
    ['build', '-fDockerfile'],
    ['build', '--file', '-x'],
    ['build', '--push=false'],
    ['build', '--no-tag'],
    ['build', '-f', 'a', '--file', 'b'],
    ['build', '--push', '--no-push'],
    ['build', '--progress', 'fancy'],
    ['build', '--source-date-epoch', 'soon'],
    ['build', '--source-date-epoch', '1e3'],
    ['build', 'a', 'b'],
    ['build', '--', 'ctx'],
    ['build', '--root', 'x', '--root', 'y'],
    ['build', '--tag'],
  ];
  test.each(others.map((a) => [a]))('%j: left to yargs', (args) => {
    expect(fastBuildArgs(args)).toBeUndefined();
  });

  test('of those, yargs refuses the ones it cannot read, and reads others its own way', async () => {
    for (const args of [['build', '--nocache'], ['build', '--progress', 'fancy'], ['build', 'a', 'b'], ['build', '--tag']]) {
      expect(await yargsReading(args), args.join(' ')).toBeUndefined();
    }
    // yargs reads a repeated single-value option as a list, which the handler is not given here.
    expect((await yargsReading(['build', '-f', 'a', '--file', 'b']))?.file).toEqual(['a', 'b']);
  });
});
