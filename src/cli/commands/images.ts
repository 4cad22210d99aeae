import type { Argv } from 'yargs';
import { imageHistory, inspectImage, listImages, removeImages, tagImage, OptionError, type HistoryRow, type ImageSummary, type ListFilter } from '../../index.js';
import { repeatable } from '../build-args.js';
import { ellipsis, goTimeString, humanAge, humanSize, rfc3339, shortId } from '../format.js';
import { listingFormat, parseFormat, renderRow, renderRows, usesField, type RowType } from '../template.js';
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

/** docker images' template fields and their column titles (docker/cli formatter/image.go). */
export const IMAGE_ROW: RowType = {
  what: 'an image row',
  headers: {
    Containers: 'CONTAINERS',
    CreatedAt: 'CREATED AT',
    CreatedSince: 'CREATED',
    Digest: 'DIGEST',
    ID: 'IMAGE ID',
    Platforms: 'PLATFORMS',
    Repository: 'REPOSITORY',
    SharedSize: 'SHARED SIZE',
    Size: 'SIZE',
    Tag: 'TAG',
    UniqueSize: 'UNIQUE SIZE',
    VirtualSize: 'VIRTUAL SIZE',
  },
};

/** docker history's template fields and their column titles (docker/cli image/history.go). */
export const HISTORY_ROW: RowType = {
  what: 'a history row',
  headers: { Comment: 'COMMENT', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', CreatedSince: 'CREATED', ID: 'IMAGE', Size: 'SIZE' },
};

/** The fields `gantry inspect --format` offers (what its JSON has). */
const INSPECT_ROW: RowType = {
  what: 'gantry inspect',
  headers: Object.fromEntries(
    ['Id', 'RepoTags', 'RepoDigests', 'Created', 'Author', 'Config', 'Architecture', 'Os', 'Variant', 'Size', 'RootFS', 'History', 'Descriptor', 'Manifests'].map((k) => [k, k]),
  ),
};

const DEFAULT_IMAGES = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const DEFAULT_IMAGES_DIGESTS = 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}';
const DEFAULT_HISTORY = 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}';

/** An image as docker's image formatter gives it to templates (keys in the order `{{json .}}` prints them). */
function imageRow(r: ImageSummary, trunc: boolean): Record<string, string> {
  const row: Record<string, string> = {
    Containers: 'N/A',
    CreatedAt: goTimeString(r.created),
    CreatedSince: humanAge(r.created),
    Digest: r.digest || '<none>',
    ID: trunc ? shortId(r.id) : r.id,
    Repository: r.repository,
    SharedSize: 'N/A',
    Size: humanSize(r.size),
    Tag: r.tag,
    UniqueSize: 'N/A',
    VirtualSize: humanSize(r.size, 4),
  };
  // gantry's own field, {{.Platforms}}: a multi-platform image's platforms, else the image's.
  // Not enumerable, so that {{json .}} has docker's keys only.
  Object.defineProperty(row, 'Platforms', { value: r.platform, enumerable: false });
  return row;
}

/** A history entry as docker's history formatter gives it to templates. */
function historyRow(r: HistoryRow, trunc: boolean, human: boolean): Record<string, string> {
  const createdBy = r.createdBy.replace(/\t/g, ' ');
  return {
    Comment: r.comment,
    CreatedAt: rfc3339(r.created),
    CreatedBy: trunc ? ellipsis(createdBy, 45) : createdBy,
    CreatedSince: human ? humanAge(r.created) : rfc3339(r.created),
    ID: trunc && r.image !== '<missing>' ? shortId(r.image) : r.image,
    Size: human ? humanSize(r.size) : String(r.size),
  };
}

const FORMAT_HELP = 'table (default), json (gantry\'s JSON), or a Go template: "{{.Repository}}:{{.Tag}}", "table {{.ID}}\\t{{.Size}}", "{{json .}}"';

function noteEstimated(rows: readonly { sizeEstimated?: boolean }[]): void {
  if (rows.some((r) => r.sizeEstimated)) {
    process.stderr.write('note: some layers could not be read (damaged: see gantry fsck; or zstd without the zstd program); their stored size is counted instead\n');
  }
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
          .option('format', { type: 'string', requiresArg: true, default: 'table', describe: FORMAT_HELP })
          .option('filter', repeatable('dangling=true|false, label=KEY[=VALUE], reference=PATTERN')) as never,
      async (argv) => {
        const filter = parseFilters(argv.filter);
        if (argv.repository) (filter.reference ??= []).push(argv.repository);
        if (argv.format === 'json') {
          process.stdout.write(JSON.stringify(await listImages(argv.root, filter), null, 2) + '\n');
          return;
        }
        if (argv.quiet) {
          const seen = new Set<string>();
          for (const r of await listImages(argv.root, filter, { sizes: false })) {
            if (seen.has(r.id)) continue;
            seen.add(r.id);
            process.stdout.write((argv.trunc ? shortId(r.id) : r.id) + '\n');
          }
          return;
        }
        // Parsed (and refused when wrong) before the store is read.
        const format = listingFormat(argv.format, argv.digests ? DEFAULT_IMAGES_DIGESTS : DEFAULT_IMAGES, IMAGE_ROW);
        const sizes = usesField(format, 'Size') || usesField(format, 'VirtualSize');
        const rows = await listImages(argv.root, filter, { sizes });
        process.stdout.write(renderRows(format, rows.map((r) => imageRow(r, argv.trunc)), IMAGE_ROW));
        if (sizes) noteEstimated(rows);
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
    .command<GlobalOptions & { images: string[]; format?: string }>(
      'inspect <images..>',
      'Show images as JSON',
      (y) =>
        y
          .positional('images', { type: 'string', array: true, demandOption: true })
          .option('format', { alias: 'f', type: 'string', requiresArg: true, describe: 'a Go template for each image: "{{.Id}}", "{{json .Config}}"' }) as never,
      async (argv) => {
        const template = argv.format !== undefined && argv.format !== 'json' ? parseFormat(argv.format, INSPECT_ROW) : undefined;
        if (template?.table) throw new OptionError('FORMAT_INVALID', 'inspect takes no table format: give a template without "table"');
        const out = [];
        for (const ref of argv.images) out.push(await inspectImage(argv.root, ref));
        if (!template) {
          process.stdout.write(JSON.stringify(out, null, 2) + '\n');
          return;
        }
        // Fields the JSON leaves out when empty are empty strings to a template, as docker's are.
        const text = out.map((o) => renderRow(template, { Created: '', Author: '', Variant: '', ...o }) + '\n').join('');
        process.stdout.write(text);
      },
    )
    .command<GlobalOptions & { image: string; trunc: boolean; format: string; quiet: boolean; human: boolean }>(
      'history <image>',
      'Show how an image was made, newest step first',
      (y) =>
        y
          .positional('image', { type: 'string', demandOption: true })
          .option('trunc', { type: 'boolean', default: true, describe: 'shorten IDs and commands (--no-trunc shows them in full)' })
          .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'only image IDs' })
          .option('human', { alias: 'H', type: 'boolean', default: true, describe: 'sizes and dates for people (--human=false: bytes and RFC 3339 times)' })
          .option('format', { type: 'string', requiresArg: true, default: 'table', describe: FORMAT_HELP.replace('{{.Repository}}:{{.Tag}}', '{{.ID}}: {{.CreatedBy}}') }) as never,
      async (argv) => {
        const format = argv.format === 'json' ? undefined : listingFormat(argv.quiet ? '{{.ID}}' : argv.format, DEFAULT_HISTORY, HISTORY_ROW);
        const rows = await imageHistory(argv.root, argv.image);
        if (!format) {
          process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
          return;
        }
        process.stdout.write(renderRows(format, rows.map((r) => historyRow(r, argv.trunc, argv.human)), HISTORY_ROW));
        noteEstimated(rows);
      },
    );
}
