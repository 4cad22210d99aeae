import type { Argv } from 'yargs';
import { search, type SearchResult } from '../../index.js';
import { repeatable } from '../build-args.js';
import { ellipsis } from '../format.js';
import { listingFormat, renderRows, type RowType } from '../template.js';
import { accessOf, withAccess, type Access } from './registry.js';
import type { GlobalOptions } from '../main.js';

interface SearchArgs extends Access {
  term: string;
  filter: string[];
  format: string;
  limit: number;
  trunc: boolean;
  registry?: string;
  tags: boolean;
}

/** docker search's template fields and their column titles (docker/cli registry/formatter_search.go), and gantry's Tags. */
export const SEARCH_ROW: RowType = {
  what: 'a search result',
  headers: { Description: 'DESCRIPTION', IsAutomated: 'AUTOMATED', IsOfficial: 'OFFICIAL', Name: 'NAME', StarCount: 'STARS', Tags: 'TAGS' },
};

const DEFAULT_SEARCH = 'table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}';
const DEFAULT_SEARCH_TAGS = `${DEFAULT_SEARCH}\t{{.Tags}}`;

/** docker's `[OK]` for true, nothing for false. */
const ok = (b: boolean): string => (b ? '[OK]' : '');

/**
 * A result as docker's search formatter gives it to templates: the description on one line
 * (newlines and carriage returns made spaces), shortened to 45 characters unless `trunc` is
 * off. Tags, gantry's own, is in `{{json .}}` only when asked for (`tags`).
 */
export function searchRow(r: SearchResult, trunc: boolean, tags: boolean): Record<string, string> {
  const description = r.description.replace(/[\r\n]/g, ' ');
  const row: Record<string, string> = {
    Description: trunc ? ellipsis(description, 45) : description,
    IsAutomated: ok(r.isAutomated),
    IsOfficial: ok(r.isOfficial),
    Name: r.name,
    StarCount: String(r.starCount),
  };
  Object.defineProperty(row, 'Tags', { value: (r.tags ?? []).join(','), enumerable: tags });
  return row;
}

/**
 * Results as `gantry search` prints them under `--format`: `table` (docker's table, a TAGS
 * column with `tags`), `json` (`{{json .}}` a line, as docker), or a Go template.
 */
export function formatSearchResults(results: readonly SearchResult[], options: { format?: string; trunc?: boolean; tags?: boolean } = {}): string {
  const format = searchFormat(options.format ?? 'table', options.tags ?? false);
  return renderRows(format, results.map((r) => searchRow(r, options.trunc ?? true, options.tags ?? false)), SEARCH_ROW);
}

function searchFormat(value: string, tags: boolean): ReturnType<typeof listingFormat> {
  return listingFormat(value === 'json' ? '{{json .}}' : value, tags ? DEFAULT_SEARCH_TAGS : DEFAULT_SEARCH, SEARCH_ROW);
}

export function searchCommand(yargs: Argv<GlobalOptions>): Argv<GlobalOptions> {
  return yargs.command<SearchArgs>(
    'search <term>',
    'Search Docker Hub, or a registry\'s catalog, for repositories',
    (y) =>
      withAccess(y)
        .positional('term', { type: 'string', demandOption: true, describe: 'what the names contain; host[:port]/term searches that registry' })
        .option('filter', { alias: 'f', ...repeatable('stars=N, is-official=true|false, is-automated=true|false') })
        .option('format', { type: 'string', requiresArg: true, default: 'table', describe: 'table (default), json, or a Go template: "{{.Name}}", "table {{.Name}}\\t{{.StarCount}}"' })
        .option('limit', { type: 'number', requiresArg: true, default: 25, describe: 'at most this many results (1 to 100)' })
        .option('trunc', { type: 'boolean', default: true, describe: 'shorten descriptions (--no-trunc shows them in full)' })
        .option('registry', { type: 'string', requiresArg: true, describe: 'search this registry (host[:port]) by its catalog; default: the term\'s, else Docker Hub' })
        .option('tags', { type: 'boolean', default: false, describe: 'a TAGS column: the tags of each repository found (catalog registries only)' }) as never,
    async (argv) => {
      // Parsed (and refused when wrong) before the registry is asked.
      searchFormat(argv.format, argv.tags);
      const results = await search({
        term: argv.term,
        limit: argv.limit,
        filters: argv.filter,
        tags: argv.tags,
        ...(argv.registry !== undefined ? { registry: argv.registry } : {}),
        ...accessOf(argv),
      });
      process.stdout.write(formatSearchResults(results, { format: argv.format, trunc: argv.trunc, tags: argv.tags }));
    },
  );
}
