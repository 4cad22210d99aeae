import type { Argv } from 'yargs';
import { imageHistory, inspectImage, listImages, removeImages, tagImage, OptionError, type ListFilter } from '../../index.js';
import { repeatable } from '../build-args.js';
import { humanAge, humanSize, shortId, table } from '../format.js';
import type { GlobalOptions } from '../main.js';

function parseFilters(items: string[]): ListFilter {
  const f: ListFilter = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (eq < 0) throw new OptionError('FILTER_INVALID', `bad filter "${item}": expected key=value`);
    if (key === 'dangling') {
      if (!['true', 'false'].includes(value)) throw new OptionError('FILTER_INVALID', `bad filter "${item}": dangling takes true or false`);
      f.dangling = value === 'true';
    } else if (key === 'label') (f.label ??= []).push(value);
    else if (key === 'reference') (f.reference ??= []).push(value);
    else throw new OptionError('FILTER_INVALID', `unsupported filter "${key}" (dangling, label, reference)`);
  }
  return f;
}

export function imageCommands(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs
    .command<GlobalOptions & { quiet: boolean; digests: boolean; trunc: boolean; format: string; filter: string[]; repository?: string }>(
      'images [repository]',
      'List images in the store',
      (y) =>
        y
          .positional('repository', { type: 'string', describe: 'only this repository (a reference filter)' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'only image IDs' })
          .option('digests', { type: 'boolean', default: false, describe: 'show manifest digests' })
          .option('trunc', { type: 'boolean', default: true, describe: 'shorten IDs (--no-trunc shows them in full)' })
          .option('format', { choices: ['table', 'json'], default: 'table' })
          .option('filter', repeatable('dangling=true|false, label=KEY[=VALUE], reference=PATTERN')) as never,
      async (argv) => {
        const filter = parseFilters(argv.filter);
        if (argv.repository) (filter.reference ??= []).push(argv.repository);
        const rows = await listImages(argv.root, filter);
        const id = (d: string) => (!argv.trunc ? d : shortId(d));
        if (argv.format === 'json') {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        } else if (argv.quiet) {
          const seen = new Set<string>();
          for (const r of rows) {
            if (seen.has(r.id)) continue;
            seen.add(r.id);
            process.stdout.write(id(r.id) + '\n');
          }
        } else {
          const header = ['REPOSITORY', 'TAG', ...(argv.digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
          const body = rows.map((r) => [r.repository, r.tag, ...(argv.digests ? [r.digest] : []), id(r.id), humanAge(r.created), humanSize(r.size)]);
          process.stdout.write(table(header, body) + '\n');
        }
      },
    )
    .command<GlobalOptions & { source: string; target: string }>(
      'tag <source> <target>',
      'Give an image another name',
      (y) => y.positional('source', { type: 'string', demandOption: true }).positional('target', { type: 'string', demandOption: true }) as never,
      async (argv) => {
        await tagImage(argv.root, argv.source, argv.target);
      },
    )
    .command<GlobalOptions & { images: string[]; force: boolean }>(
      'rmi <images..>',
      'Remove names from images; an image goes with its last name',
      (y) =>
        y
          .positional('images', { type: 'string', array: true, demandOption: true })
          .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'remove an image by ID even when it has several names' }) as never,
      async (argv) => {
        const r = await removeImages(argv.root, argv.images, argv.force);
        for (const n of r.untagged) process.stdout.write(`Untagged: ${n}\n`);
        for (const d of r.deleted) process.stdout.write(`Deleted: ${d}\n`);
      },
    )
    .command<GlobalOptions & { images: string[] }>(
      'inspect <images..>',
      'Show images as JSON',
      (y) => y.positional('images', { type: 'string', array: true, demandOption: true }) as never,
      async (argv) => {
        const out = [];
        for (const ref of argv.images) out.push(await inspectImage(argv.root, ref));
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      },
    )
    .command<GlobalOptions & { image: string; trunc: boolean; format: string; quiet: boolean }>(
      'history <image>',
      'Show how an image was made, newest step first',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true })
          .option('trunc', { type: 'boolean', default: true, describe: 'shorten IDs and commands (--no-trunc shows them in full)' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false })
          .option('format', { choices: ['table', 'json'], default: 'table' }) as never,
      async (argv) => {
        const rows = await imageHistory(argv.root, argv.image);
        if (argv.format === 'json') {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        const id = (s: string) => (s === '<missing>' || !argv.trunc ? s : shortId(s));
        if (argv.quiet) {
          for (const r of rows) process.stdout.write(id(r.image) + '\n');
          return;
        }
        const trunc = (s: string) => (!argv.trunc || s.length <= 45 ? s : s.slice(0, 44) + '…');
        const body = rows.map((r) => [id(r.image), humanAge(r.created), trunc(r.createdBy), humanSize(r.size), r.comment]);
        process.stdout.write(table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], body) + '\n');
      },
    );
}
