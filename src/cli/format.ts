/**
 * docker-style human output: sizes, ages, times, as the docker CLI words them (go-units'
 * HumanSize and HumanDuration, Go's time formats), so that gantry's listings read like docker's.
 */

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/**
 * Go's `%.{precision}g`: `precision` significant digits, trailing zeros dropped, and an
 * exponent (`1e+03`) when the exponent is below -4 or not below the precision.
 */
export function goFormatG(v: number, precision: number): string {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
  const [mantissa, expText] = v.toExponential(precision - 1).split('e') as [string, string];
  const exp = Number(expText);
  const strip = (s: string) => (s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s);
  if (exp < -4 || exp >= precision) {
    return `${strip(mantissa)}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return strip(v.toFixed(Math.max(0, precision - 1 - exp)));
}

/**
 * go-units' HumanSizeWithPrecision: decimal units (1000), `precision` significant digits.
 * docker images and docker history use 3 (`318MB`, `8.9kB`, `0B`); docker system df and
 * the VirtualSize field use HumanSize's 4 (`317.7MB`).
 */
export function humanSize(bytes: number, precision = 3): string {
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < DECIMAL_UNITS.length - 1) {
    v /= 1000;
    i++;
  }
  return `${goFormatG(v, precision)}${DECIMAL_UNITS[i]}`;
}

/** go-units' HumanDuration: `Less than a second`, `About a minute`, `3 hours`, `2 weeks`... */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

/** docker's CREATED column: `13 minutes ago`; `N/A` without a time. */
export function humanAge(iso: string | undefined, now = Date.now()): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return 'N/A';
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

const pad2 = (n: number) => String(n).padStart(2, '0');

/** The local time zone's offset at `d`, as `+0100`, and its abbreviation (`UTC`, `CET`). */
function zoneOf(d: Date): { offset: string; sign: string; hh: string; mm: string; name: string } {
  const minutes = -d.getTimezoneOffset();
  const sign = minutes < 0 ? '-' : '+';
  const hh = pad2(Math.trunc(Math.abs(minutes) / 60));
  const mm = pad2(Math.abs(minutes) % 60);
  let name = '';
  try {
    name = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
  } catch {
    name = '';
  }
  if (minutes === 0 && (name === 'GMT' || name === '')) name = 'UTC';
  if (!/^[A-Z]{2,5}$/.test(name)) name = `${sign}${hh}${mm === '00' ? '' : mm}`; // Go names a zone without an abbreviation by its offset
  return { offset: `${sign}${hh}${mm}`, sign, hh, mm, name };
}

function localParts(d: Date): string {
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
}

function localClock(d: Date): string {
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** Go's `time.Time.String()` in the local zone, docker images' CreatedAt: `2026-12-05 00:26:41 +0000 UTC`. */
export function goTimeString(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return 'N/A';
  const d = new Date(t);
  const z = zoneOf(d);
  return `${localParts(d)} ${localClock(d)} ${z.offset} ${z.name}`;
}

/** RFC 3339 in the local zone (Go's `time.RFC3339`), docker history's CreatedAt: `2026-12-05T00:26:41Z`. */
export function rfc3339(iso: string | undefined): string {
  const t = iso ? Date.parse(iso) : NaN;
  if (Number.isNaN(t)) return 'N/A';
  const d = new Date(t);
  const z = zoneOf(d);
  return `${localParts(d)}T${localClock(d)}${z.offset === '+0000' ? 'Z' : `${z.sign}${z.hh}:${z.mm}`}`;
}

/** docker's Ellipsis: at most `max` characters, the last one `…` when cut. */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

export function shortId(digest: string): string {
  return digest.replace(/^sha256:/, '').slice(0, 12);
}
