/** docker-style human output: sizes, ages, tables. */

export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v}B` : `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)}${units[i]}`;
}

export function humanAge(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  const s = Math.max(0, Math.round((now - t) / 1000));
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'} ago`;
  if (s < 60) return s <= 1 ? 'Less than a second ago' : plural(s, 'second');
  if (s < 3600) return plural(Math.round(s / 60), 'minute');
  if (s < 86400 * 2) return plural(Math.round(s / 3600), 'hour');
  if (s < 86400 * 14) return plural(Math.round(s / 86400), 'day');
  if (s < 86400 * 60) return plural(Math.round(s / (86400 * 7)), 'week');
  if (s < 86400 * 365 * 2) return plural(Math.round(s / (86400 * 30)), 'month');
  return plural(Math.round(s / (86400 * 365)), 'year');
}

/** Columns padded to their widest cell, separated by three spaces, like docker's tables. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('   ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}
