import { afterEach, describe, expect, test } from 'vitest';
import { commandName, COMMAND_FILES, createParser, lineCommand, type GlobalOptions } from '../../src/cli/main.js';
import { plainArgs, shapesOf, type CommandShape } from '../../src/cli/plain.js';

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

/** The command files' registrations, each handler replaced by `onCall` (yargs' own parsing kept). */
function intercepting<T extends object>(y: T, onCall: (argv: Record<string, unknown>) => void): T {
  const proxy: T = new Proxy(y, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver) as unknown;
      if (typeof value !== 'function') return value;
      if (key === 'command') {
        return (cmd: unknown, describe: unknown, builder: unknown, handler: unknown) => {
          const b = typeof builder === 'function' ? (inner: object) => (builder as (y: object) => unknown)(intercepting(inner, onCall)) : builder;
          const h = typeof handler === 'function' ? async (argv: Record<string, unknown>) => onCall(argv) : handler;
          (value as (...a: unknown[]) => unknown).call(target, cmd, describe, b, h);
          return proxy;
        };
      }
      return (...a: unknown[]) => {
        const r = (value as (...a: unknown[]) => unknown).apply(target, a);
        return r === target ? proxy : r;
      };
    },
  });
  return proxy;
}

/** What yargs gives a command's handler for a command line (undefined: it called none). */
async function yargsReading(args: string[]): Promise<Record<string, unknown> | undefined> {
  let got: Record<string, unknown> | undefined;
  const saved = COMMAND_FILES.map(([names, register]) => [names, register] as const);
  COMMAND_FILES.forEach(([names, register], i) => {
    COMMAND_FILES[i] = [names, (y, h) => register(intercepting(y, (argv) => (got = argv)), h)];
  });
  try {
    const parser = await createParser(args);
    await parser
      .exitProcess(false)
      .fail((msg, err) => {
        throw err ?? new Error(msg);
      })
      .parseAsync();
  } catch {
    return undefined;
  } finally {
    saved.forEach((entry, i) => (COMMAND_FILES[i] = [...entry]));
  }
  return got ? pick(got, lineCommand(args)) : undefined;
}

/** The fields a handler reads: the command words, the store, the positionals and options. */
function pick(argv: object, shape: CommandShape | null | undefined): Record<string, unknown> {
  const a = argv as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  const keys = ['_', 'root', ...(shape?.positionals.map((p) => p.name) ?? []), ...Object.keys(shape?.options ?? {})];
  for (const k of keys) if (a[k] !== undefined) out[k] = a[k];
  return out;
}

/** The plain reading of a line, or undefined. */
function plainReading(args: string[]): Record<string, unknown> | undefined {
  const shape = lineCommand(args);
  const argv = shape ? plainArgs(shape, args) : undefined;
  return argv ? pick(argv, shape) : undefined;
}

describe('a plain command line is read without yargs, as yargs reads it', () => {
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
    ['images'],
    ['images', 'busybox', '--format', '{{.ID}}'],
    ['--root', '/s', 'images', '--filter', 'dangling=true', '--filter', 'label=a'],
    ['tag', 'a:1', 'b:2'],
    ['rmi', 'a', 'b', 'c'],
    ['inspect', 'a', '-f', '{{.Id}}'],
    ['history', 'a'],
    ['push', 'a:1'],
    ['push', 'a:1', '127.0.0.1:5000/a:1', '--insecure-registry', 'x:5000', '--ca-cert', 'ca.pem'],
    ['pull', '127.0.0.1:5000/a', '--platform', 'linux/arm64'],
    ['save', 'a', 'b', '-o', 'out.tar'],
    ['load', '-i', 'in.tar'],
    ['export', 'a', '-o', 'a.tar'],
    ['import', 'rootfs.tar', 'name:1'],
    ['lint', 'ctx'],
    ['prune', '--all'],
    ['fsck'],
    ['logout', 'r.example'],
    ['system', 'df', '-v'],
    ['system', 'df', '--format', 'json'],
    // `-` is standard input: a positional like any other, on both readings.
    ['build', '-'],
    ['images', '-'],
    ['rmi', 'a', '-'],
    ['save', '-', '-o', 'x'],
    ['import', '-', 'name:1'],
    ['build', '-f', '-', '.'],
  ];

  test.each(plain.map((a) => [a]))('%j: the same as yargs', async (args) => {
    const fast = plainReading(args);
    expect(fast, 'read without yargs').toBeDefined();
    expect(fast).toEqual(await yargsReading(args));
  });

  test('every command that has a handler is read plainly with each of its options given', async () => {
    const lines: string[][] = [];
    for (const [names, register] of COMMAND_FILES) {
      for (const [name, shape] of shapesOf<GlobalOptions>((y) => register(y, {}))) {
        if (!shape) continue;
        const words = name.split(' ');
        const positionals = shape.positionals.filter((p) => p.required).map((p) => (p.variadic ? ['p1', 'p2'] : ['p1'])).flat();
        const options = Object.entries(shape.options).flatMap(([option, spec]) => {
          if (spec.type === 'boolean') return [`--${option}`];
          if (spec.choices) return [`--${option}`, spec.choices[spec.choices.length - 1] as string];
          if (spec.type === 'number') return [`--${option}`, '7'];
          return Array.isArray(spec.default) ? [`--${option}`, 'a', `--${option}`, 'b'] : [`--${option}`, 'v'];
        });
        lines.push([...words, ...positionals, ...options]);
        expect(names).toContain(words[0]);
      }
    }
    expect(lines.length).toBeGreaterThan(15);
    for (const args of lines) {
      const fast = plainReading(args);
      // login reads its password from standard input only when told to: the line is its.
      expect(fast, args.join(' ')).toBeDefined();
      expect(fast, args.join(' ')).toEqual(await yargsReading(args));
    }
  });

  test('the store comes from $GANTRY_ROOT when --root is not given, as with yargs', async () => {
    process.env.GANTRY_ROOT = '/from/env';
    const fast = plainReading(['build', 'ctx']);
    expect(fast?.root).toBe('/from/env');
    expect(fast).toEqual(await yargsReading(['build', 'ctx']));
  });

  // Each is left to yargs: help, an unknown option, a value read differently, a repeated
  // single-value option, a bad choice or number, a missing or extra positional, `--`.
  const others: string[][] = [
    ['build', '--help'],
    ['build', '-h'],
    ['--version'],
    ['build', '--nocache'],
    ['build', '--buildArg', 'A=1'],
    ['build', '-tname'],
    ['build', '-fDockerfile'],
    ['build', '--file', '-x'],
    ['build', '--push=false'],
    ['build', '--push', 'false'],
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
    ['images', 'a', 'b'],
    ['images', '--fromat', 'x'],
    ['tag', 'a'],
    ['rmi'],
    ['save', 'a'],
    ['push', 'a', 'b', 'c'],
    ['system'],
    ['system', 'df', '--verbose', 'true'],
    ['completion', 'fish'],
    ['buidl'],
    [],
  ];
  test.each(others.map((a) => [a]))('%j: left to yargs', (args) => {
    expect(plainReading(args)).toBeUndefined();
  });

  test('of those, yargs refuses the ones it cannot read, and reads others its own way', async () => {
    for (const args of [['build', '--nocache'], ['build', '--progress', 'fancy'], ['build', 'a', 'b'], ['build', '--tag'], ['tag', 'a'], ['images', '--fromat', 'x']]) {
      expect(await yargsReading(args), args.join(' ')).toBeUndefined();
    }
    // yargs reads a repeated single-value option as a list, which the handler is not given here.
    expect((await yargsReading(['build', '-f', 'a', '--file', 'b']))?.file).toEqual(['a', 'b']);
    expect((await yargsReading(['build', '--push', 'false']))?.push).toBe(false);
  });

  test('a positional `-` read by yargs is `-` too (yargs alone gives the handler an empty string or the default)', async () => {
    expect((await yargsReading(['build', '--push=false', '-']))?.context).toBe('-');
    expect((await yargsReading(['rmi', 'a', '-', '--force=true']))?.images).toEqual(['a', '-']);
    expect((await yargsReading(['build', '--push=false', '-f', '-', 'ctx']))).toMatchObject({ file: '-', context: 'ctx' });
  });

  test('--no-cache-filter VALUE is the option, not the negation of a cache-filter (yargs alone reads that)', async () => {
    const line = ['build', '--no-cache-filter', 'a', '--no-cache-filter', 'b', '--push=false'];
    expect((await yargsReading(line))?.['no-cache-filter']).toEqual(['a', 'b']);
    expect(plainReading(line.slice(0, -1))?.['no-cache-filter']).toEqual(['a', 'b']);
  });

  test('a number where a positional is untyped is left to yargs, which gives a number', async () => {
    for (const [shapeName, shape] of COMMAND_FILES.flatMap(([, register]) => [...shapesOf<GlobalOptions>((y) => register(y, {}))])) {
      if (!shape) continue;
      for (const p of shape.positionals) {
        if ((shape.specs[p.name]?.type ?? 'none') !== 'string') throw new Error(`${shapeName} ${p.name}: a positional is typed string, or plain.ts must read numbers as yargs does`);
      }
    }
    expect(plainReading(['tag', '1', '2'])).toEqual(await yargsReading(['tag', '1', '2']));
  });
});
