import type { Argv } from 'yargs';
import { commit, configureContainer, containers, copyFiles, from, GantryError, removeContainers, run, type ContainerRow } from '../../index.js';
import { repeatable } from '../build-args.js';
import { goTimeString, humanAge, shortId } from '../format.js';
import { listingFormat, renderRows, type RowType } from '../template.js';
import type { GlobalOptions } from '../main.js';

/** docker ps's template fields and their column titles (docker/cli formatter/container.go), with gantry's Image ID. */
export const CONTAINER_ROW: RowType = {
  what: 'a container row',
  headers: { Command: 'COMMAND', CreatedAt: 'CREATED AT', ID: 'CONTAINER ID', Image: 'IMAGE', ImageID: 'IMAGE ID', Names: 'NAMES', RunningFor: 'CREATED', State: 'STATE', Status: 'STATUS' },
};

const DEFAULT_CONTAINERS = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}';

function containerRow(r: ContainerRow, trunc: boolean): Record<string, string> {
  const command = r.command ?? '';
  const status = r.state === 'running' ? 'Running' : r.state === 'exited' ? `Exited (${r.exitCode ?? 0}) ${humanAge(r.finished ?? r.created)}` : 'Created';
  return {
    Command: JSON.stringify(trunc && command.length > 20 ? `${command.slice(0, 19)}…` : command),
    CreatedAt: goTimeString(r.created),
    ID: trunc ? r.id.slice(0, 12) : r.id,
    Image: r.image,
    ImageID: trunc ? shortId(r.imageId) : r.imageId,
    Names: r.name,
    RunningFor: humanAge(r.created),
    State: r.state,
    Status: status,
  };
}

interface RunArgs extends GlobalOptions {
  target: string;
  command?: string[];
  env: string[];
  workdir?: string;
  user?: string;
  network: 'default' | 'none' | 'host';
  isolation: 'auto' | 'oci' | 'chroot';
  interactive: boolean;
  tty: boolean;
  rm: boolean;
  name?: string;
  platform?: string;
  pull: boolean;
}

/** The options of `run` that take a value: the first word after run's options that is none of theirs is its target. */
export const RUN_VALUED = new Set(['--root', '-e', '--env', '-w', '--workdir', '-u', '--user', '--network', '--isolation', '--name', '--platform']);

/**
 * A `run` line as docker reads it: everything after the container or image is its command,
 * options included (`gantry run app ls -l`). A `--` is put after the target for yargs.
 */
export function runLine(args: readonly string[]): string[] {
  const at = args.indexOf('run');
  for (let i = at + 1; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--') return [...args];
    if (RUN_VALUED.has(a)) i++;
    else if (!a.startsWith('-') || a === '-') return args[i + 1] === '--' || i + 1 === args.length ? [...args] : [...args.slice(0, i + 1), '--', ...args.slice(i + 1)];
  }
  return [...args];
}

export function containerCommands(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs
    .command<GlobalOptions & { image: string; name?: string; platform?: string; pull: boolean; quiet: boolean }>(
      'from <image>',
      'Make a working container from an image (buildah from): a writable tree kept in the store',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true, describe: 'an image name or ID; pulled when the store lacks it' })
          .option('name', { type: 'string', describe: 'the container\'s name (default: IMAGE-working-container)' })
          .option('platform', { type: 'string', describe: 'os/arch[/variant] of a multi-platform image (default: this machine)' })
          .option('pull', { type: 'boolean', default: false, describe: 'pull the image even when the store has it' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print the container ID instead of its name' }) as never,
      async (argv) => {
        const c = await from({ root: argv.root, image: argv.image, ...(argv.name !== undefined ? { name: argv.name } : {}), ...(argv.platform !== undefined ? { platform: argv.platform } : {}), pull: argv.pull });
        process.stdout.write((argv.quiet ? c.id : c.name) + '\n');
      },
    )
    .command<GlobalOptions & { quiet: boolean; trunc: boolean; format: string }>(
      ['containers', 'ps'],
      'List working containers',
      (y) =>
        y
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'only container IDs' })
          .option('trunc', { type: 'boolean', default: true, describe: 'shorten IDs and commands (--no-trunc shows them in full)' })
          .option('format', { type: 'string', requiresArg: true, default: 'table', describe: 'table (default), json, or a Go template: "{{.ID}} {{.Names}}"' }) as never,
      async (argv) => {
        const format = argv.format === 'json' ? undefined : listingFormat(argv.quiet ? '{{.ID}}' : argv.format, DEFAULT_CONTAINERS, CONTAINER_ROW);
        const rows = await containers({ root: argv.root });
        if (!format) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        process.stdout.write(renderRows(format, rows.map((r) => containerRow(r, argv.trunc)), CONTAINER_ROW));
      },
    )
    .command<RunArgs>(
      'run <target> [command..]',
      'Run a command in a working container, or in a new one made from an image (docker run), in the RUN sandbox',
      (y) =>
        y
          .positional('target', { type: 'string', demandOption: true, describe: 'a container (name or ID), or an image' })
          .positional('command', { type: 'string', array: true, describe: 'the command (default: the config\'s ENTRYPOINT and CMD)' })
          .option('env', { alias: 'e', ...repeatable('set an environment variable (KEY=VALUE, or KEY for this shell\'s value)') })
          .option('workdir', { alias: 'w', type: 'string', describe: 'the working directory (default: the config\'s)' })
          .option('user', { alias: 'u', type: 'string', describe: 'user[:group] to run as (default: the config\'s)' })
          .option('network', { type: 'string', choices: ['default', 'none', 'host'], default: 'default', describe: 'default: a user-mode network of its own; none; host' })
          .option('isolation', { type: 'string', choices: ['auto', 'oci', 'chroot'], default: 'auto', describe: 'the sandbox (as build --isolation)' })
          .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'give the command this standard input' })
          .option('tty', { alias: 't', type: 'boolean', default: false, describe: 'run the command on a terminal of its own' })
          .option('rm', { type: 'boolean', default: false, describe: 'for an image: remove the container when the command ends' })
          .option('name', { type: 'string', describe: 'for an image: the new container\'s name' })
          .option('platform', { type: 'string', describe: 'for an image: os/arch[/variant] of a multi-platform image' })
          .option('pull', { type: 'boolean', default: false, describe: 'for an image: pull it even when the store has it' }) as never,
      async (argv) => {
        if (argv.tty && !process.stdin.isTTY) throw new GantryError('CONTAINER_RUN', 'the input device is not a TTY: -t needs a terminal (leave -t out when piping)');
        // Ctrl-C or SIGTERM stops the command (its processes killed), and --rm still removes the container.
        const controller = new AbortController();
        const stop = (): void => controller.abort();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        const r = await run({
          root: argv.root,
          target: argv.target,
          // After the `--` runLine put in, yargs gives the command in `_`, after the command's own name.
          argv: argv.command?.length ? argv.command : (argv as unknown as { _: (string | number)[] })._.slice(1).map(String),
          env: argv.env,
          ...(argv.workdir !== undefined ? { workdir: argv.workdir } : {}),
          ...(argv.user !== undefined ? { user: argv.user } : {}),
          network: argv.network,
          isolation: argv.isolation,
          interactive: argv.interactive,
          tty: argv.tty,
          rm: argv.rm,
          ...(argv.name !== undefined ? { name: argv.name } : {}),
          ...(argv.platform !== undefined ? { platform: argv.platform } : {}),
          pull: argv.pull,
          attach: true,
          signal: controller.signal,
        })
          .catch((err: unknown) => {
            if (controller.signal.aborted) return { exitCode: 130 };
            throw err;
          })
          .finally(() => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
          });
        process.exitCode = r.exitCode;
      },
    )
    .command<GlobalOptions & { source: string; destination: string; followLink: boolean }>(
      'cp <source> <destination>',
      'Copy files between a working container and the host (CONTAINER:PATH on one side)',
      (y) =>
        y
          .positional('source', { type: 'string', demandOption: true })
          .positional('destination', { type: 'string', demandOption: true })
          .option('follow-link', { alias: 'L', type: 'boolean', default: false, describe: 'follow a symbolic link the source path names' }) as never,
      async (argv) => {
        await copyFiles({ root: argv.root, source: argv.source, destination: argv.destination, followLink: argv.followLink });
      },
    )
    .command<GlobalOptions & { container: string; env: string[]; label: string[]; cmd?: string; entrypoint?: string; workingdir?: string; user?: string; change: string[] }>(
      'config <container>',
      'Change the config a working container\'s commit gives its image (buildah config)',
      (y) =>
        y
          .positional('container', { type: 'string', demandOption: true })
          .option('env', { alias: 'e', ...repeatable('set KEY=VALUE, or remove KEY-') })
          .option('label', { alias: 'l', ...repeatable('set KEY=VALUE, or remove KEY-') })
          .option('cmd', { type: 'string', describe: 'the default command: a JSON array, or a command line for /bin/sh -c ("" clears it)' })
          .option('entrypoint', { type: 'string', describe: 'the entrypoint: a JSON array, or a command line for /bin/sh -c ("" clears it)' })
          .option('workingdir', { type: 'string', describe: 'the working directory' })
          .option('user', { alias: 'u', type: 'string', describe: 'user[:group] the image runs as' })
          .option('change', { alias: 'c', ...repeatable('a Dockerfile instruction for the config (CMD, ENV, LABEL, EXPOSE, ...)') }) as never,
      async (argv) => {
        await configureContainer({
          root: argv.root,
          container: argv.container,
          env: argv.env,
          labels: argv.label,
          changes: argv.change,
          ...(argv.cmd !== undefined ? { cmd: argv.cmd } : {}),
          ...(argv.entrypoint !== undefined ? { entrypoint: argv.entrypoint } : {}),
          ...(argv.workingdir !== undefined ? { workingDir: argv.workingdir } : {}),
          ...(argv.user !== undefined ? { user: argv.user } : {}),
        });
      },
    )
    .command<GlobalOptions & { container: string; reference?: string; author?: string; message?: string; change: string[]; quiet: boolean }>(
      'commit <container> [reference]',
      'Make an image of a working container: its change as one layer over its image (docker commit)',
      (y) =>
        y
          .positional('container', { type: 'string', demandOption: true })
          .positional('reference', { type: 'string', describe: 'name the image (name[:tag]); without one it is dangling' })
          .option('author', { alias: 'a', type: 'string', describe: 'the author (e.g. "Name <mail>")' })
          .option('message', { alias: 'm', type: 'string', describe: 'the history entry\'s comment' })
          .option('change', { alias: 'c', ...repeatable('apply a Dockerfile instruction to the config (CMD, ENV, ...)') })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'accepted, as buildah\'s: the image ID is all commit prints' }) as never,
      async (argv) => {
        const sde = process.env.SOURCE_DATE_EPOCH;
        const r = await commit({
          root: argv.root,
          container: argv.container,
          ...(argv.reference !== undefined ? { reference: argv.reference } : {}),
          ...(argv.author !== undefined ? { author: argv.author } : {}),
          ...(argv.message !== undefined ? { message: argv.message } : {}),
          changes: argv.change,
          ...(sde !== undefined && /^\d+$/.test(sde) ? { sourceDateEpoch: Number(sde) } : {}),
        });
        process.stdout.write(r.id + '\n');
      },
    )
    .command<GlobalOptions & { containers: string[] }>(
      'rm <containers..>',
      'Remove working containers and their trees',
      (y) => y.positional('containers', { type: 'string', array: true, demandOption: true }) as never,
      async (argv) => {
        // As docker rm: each one removed is said as it goes; one that cannot be is said and the rest go on.
        let failed: unknown;
        for (const c of argv.containers) {
          try {
            await removeContainers({ root: argv.root, containers: [c] });
            process.stdout.write(`${c}\n`);
          } catch (err) {
            if (failed !== undefined) process.stderr.write(`error: ${(failed as Error).message}\n`);
            failed = err;
          }
        }
        if (failed !== undefined) throw failed;
      },
    );
}
