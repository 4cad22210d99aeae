import { describe, expect, test } from 'vitest';
import { commandName, COMMAND_FILES, createParser } from '../../src/cli/main.js';

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

  test('COMMAND_FILES names every command the full parser has, each once', () => {
    const commands = (createParser([]) as unknown as { getInternalMethods(): { getCommandInstance(): { getCommands(): string[] } } })
      .getInternalMethods()
      .getCommandInstance()
      .getCommands();
    const listed = COMMAND_FILES.flatMap(([names]) => [...names]);
    expect([...listed].sort()).toEqual([...commands].sort());
    expect(new Set(listed).size).toBe(listed.length);
  });

  test("a named command's parser has that file's commands only; anything else gets all of them", () => {
    const commandsOf = (args: string[]) =>
      (createParser(args) as unknown as { getInternalMethods(): { getCommandInstance(): { getCommands(): string[] } } })
        .getInternalMethods()
        .getCommandInstance()
        .getCommands()
        .sort();
    expect(commandsOf(['build', '.'])).toEqual(['build']);
    expect(commandsOf(['--root', '/s', 'rmi', 'x'])).toEqual(['history', 'images', 'inspect', 'rmi', 'tag']);
    const all = commandsOf([]);
    expect(all.length).toBeGreaterThan(10);
    expect(commandsOf(['buidl'])).toEqual(all);
    expect(commandsOf(['--help'])).toEqual(all);
  });
});
