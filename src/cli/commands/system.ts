import type { Argv } from 'yargs';
import { diskUsage, OptionError, type DiskUsage, type UsageRow } from '../../index.js';
import { humanAge, humanSize, shortId } from '../format.js';
import { listingFormat, renderRows, tabwrite, type RowType } from '../template.js';
import type { GlobalOptions } from '../main.js';

/** docker system df's template fields and column titles (docker/cli formatter/disk_usage.go). */
export const DF_ROW: RowType = {
  what: 'a system df row',
  headers: { Active: 'ACTIVE', Reclaimable: 'RECLAIMABLE', Size: 'SIZE', TotalCount: 'TOTAL', Type: 'TYPE' },
};

const DEFAULT_DF = 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}';

/** A row as docker's disk usage formatter words it: HumanSize (4 digits), the share reclaimable. */
function dfRow(r: UsageRow): Record<string, string> {
  // docker gives no share for the build cache, whose size counts only what images do not share.
  const share = r.size > 0 && r.type !== 'Build Cache' ? ` (${Math.trunc((r.reclaimable / r.size) * 100)}%)` : '';
  return {
    Active: String(r.active),
    Reclaimable: `${humanSize(r.reclaimable, 4)}${share}`,
    Size: humanSize(r.size, 4),
    TotalCount: String(r.total),
    Type: r.type,
  };
}

function section(title: string, header: string[], rows: string[][]): string {
  const lines = [header, ...rows].map((cells) => cells.join('\t'));
  return `${title}\n\n${tabwrite(lines.join('\n'))}\n`;
}

/** `system df -v`: each kind's entries, as docker's verbose listing has its images and build cache. */
function verbose(u: DiskUsage): string {
  const total = (type: UsageRow['type']) => humanSize(u.rows.find((r) => r.type === type)?.size ?? 0, 4);
  const parts = [
    section(
      'Images space usage:',
      ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'SHARED SIZE', 'UNIQUE SIZE'],
      u.images.map((i) => [i.repository, i.tag, shortId(i.id), humanAge(i.created), humanSize(i.size, 4), humanSize(i.sharedSize, 4), humanSize(i.uniqueSize, 4)]),
    ),
    section(
      `Containers space usage: ${total('Containers')}`,
      ['CONTAINER ID', 'IMAGE', 'CREATED', 'SIZE', 'NAMES'],
      u.containers.map((c) => [c.id.slice(0, 12), c.image, humanAge(c.created), humanSize(c.size, 4), c.name]),
    ),
    section(
      `Build cache usage: ${total('Build Cache')}`,
      ['CACHE ID', 'CACHE TYPE', 'SIZE', 'CREATED', 'SHARED'],
      u.buildCache.map((c) => [c.id.length === 64 ? c.id.slice(0, 12) : c.id, c.type, humanSize(c.size, 4), humanAge(c.created), String(c.shared)]),
    ),
    section(
      `Base extracts usage: ${total('Base extracts')}`,
      ['CHAIN ID', 'SIZE', 'IN USE'],
      u.baseExtracts.map((t) => [t.id.slice(0, 12), humanSize(t.size, 4), String(t.active)]),
    ),
    section(
      `Step snapshots usage: ${total('Step snapshots')}`,
      ['SNAPSHOT ID', 'SIZE', 'IN USE'],
      u.stepSnapshots.map((t) => [t.id.slice(0, 12), humanSize(t.size, 4), String(t.active)]),
    ),
    section(`Cache mounts usage: ${total('Cache mounts')}`, ['CACHE ID', 'SIZE'], u.cacheMounts.map((t) => [t.id.slice(0, 12), humanSize(t.size, 4)])),
    section(`Trash usage: ${total('Trash')}`, ['ENTRY', 'SIZE', 'CREATED'], u.trash.map((t) => [t.id, humanSize(t.size, 4), humanAge(t.created)])),
  ];
  const unused = u.rows.find((r) => r.type === 'Unused blobs');
  if (unused) parts.push(`Unused blobs: ${unused.total}, ${humanSize(unused.size, 4)} (gantry prune removes them)\n`);
  return parts.join('\n');
}

export function systemCommands(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<GlobalOptions>('system', 'Information about the store', (y) =>
    y
      .command<GlobalOptions & { verbose: boolean; format: string }>(
        'df',
        'Show the disk space the store uses, by kind, and what prune --all would free',
        (z) =>
          z
            // -v is --version everywhere else; here it is docker's --verbose.
            .version(false)
            .option('verbose', { alias: 'v', type: 'boolean', default: false, describe: 'each image, cache entry, base extract, step snapshot, cache mount and trash entry' })
            .option('format', {
              type: 'string',
              requiresArg: true,
              default: 'table',
              describe: 'table (default), json (gantry\'s JSON, everything -v shows), or a Go template: "{{.Type}}: {{.Size}}", "{{json .}}"',
            }) as never,
        async (argv) => {
          const json = argv.format === 'json';
          if (argv.verbose && !json && argv.format !== 'table') {
            throw new OptionError('FORMAT_INVALID', 'system df -v takes --format json or none: its listing has several tables');
          }
          const format = json ? undefined : listingFormat(argv.format, DEFAULT_DF, DF_ROW);
          const usage = await diskUsage(argv.root);
          if (json) process.stdout.write(JSON.stringify(usage, null, 2) + '\n');
          else if (argv.verbose) process.stdout.write(verbose(usage));
          else if (format) process.stdout.write(renderRows(format, usage.rows.map(dfRow), DF_ROW));
        },
      )
      .demandCommand(1, 'name a system command: df') as never,
  );
}
