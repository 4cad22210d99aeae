import { describe, expect, test } from 'vitest';
import { goFormatG, goTimeString, humanDuration, humanSize, rfc3339 } from '../../src/cli/format.js';
import { goJSON, goSprintf, listingFormat, parseFormat, renderRow, renderRows, tabwrite, usesField, type RowType } from '../../src/cli/template.js';

const IMAGE: RowType = { what: 'an image row', headers: { Repository: 'REPOSITORY', Tag: 'TAG', ID: 'IMAGE ID', Size: 'SIZE', Labels: 'LABELS' } };
const rows = [
  { Repository: 'alpine', Tag: '3.20', ID: 'abcdef012345', Size: '7.8MB', Labels: ['a', 'b'] },
  { Repository: 'localhost:5000/team/app', Tag: '<none>', ID: '0123456789ab', Size: '318MB', Labels: [] },
];
const render = (format: string) => renderRows(parseFormat(format, IMAGE), rows, IMAGE);

describe('Go templates as docker --format uses them', () => {
  test('field references and text, one line per row', () => {
    expect(render('{{.Repository}}:{{.Tag}}')).toBe('alpine:3.20\nlocalhost:5000/team/app:<none>\n');
  });

  test('table: a header row of docker column titles, aligned as tabwriter (min 10, padding 3); \\t written as two characters', () => {
    expect(render('table {{.Repository}}\\t{{.ID}}\\t{{.Size}}')).toBe(
      [
        'REPOSITORY                IMAGE ID       SIZE',
        'alpine                    abcdef012345   7.8MB',
        'localhost:5000/team/app   0123456789ab   318MB',
        '',
      ].join('\n'),
    );
    // A narrow column is still 10 wide; text after the last tab is not padded.
    expect(render('table {{.Tag}}\\t{{.Size}}').split('\n')[0]).toBe('TAG       SIZE');
  });

  test('a table with no rows still prints its header', () => {
    expect(renderRows(parseFormat('table {{.ID}}\\t{{.Tag}}', IMAGE), [], IMAGE)).toBe('IMAGE ID   TAG\n');
  });

  test('{{json .}} and {{json .Field}} as Go marshals them (<, >, & escaped)', () => {
    expect(render('{{json .Tag}}')).toBe('"3.20"\n"\\u003cnone\\u003e"\n');
    expect(JSON.parse(render('{{json .}}').split('\n')[0] as string)).toEqual(rows[0]);
    expect(goJSON({ a: '<&>' })).toBe('{"a":"\\u003c\\u0026\\u003e"}');
  });

  test('pipes and functions: printf, upper, lower, join, pad, truncate, len, index, print', () => {
    expect(render('{{.Repository | printf "%-8s"}}|')).toBe('alpine  |\nlocalhost:5000/team/app|\n');
    expect(render('{{upper .Repository}} {{.Tag | lower}}')).toBe('ALPINE 3.20\nLOCALHOST:5000/TEAM/APP <none>\n');
    expect(render('{{join .Labels ","}}:{{len .Labels}}')).toBe('a,b:2\n:0\n');
    expect(render('[{{pad .Tag 1 2}}]{{truncate .ID 4}}')).toBe('[ 3.20  ]abcd\n[ <none>  ]0123\n');
    expect(renderRow(parseFormat('{{index .Labels 1}} {{print 1 2}} {{printf "%d-%q" 3 "x"}}'), rows[0])).toBe('b 1 2 3-"x"');
    expect(renderRow(parseFormat('{{.Labels}}'), rows[0])).toBe('[a b]');
  });

  test('trim markers and comments', () => {
    expect(renderRow(parseFormat('a   {{- .Tag -}}   b{{/* a comment */}}'), rows[0])).toBe('a3.20b');
  });

  test('nested fields; a missing key prints <no value>', () => {
    const inspect = { Id: 'sha256:1', Config: { Env: ['A=1', 'B=2'], Labels: { x: 'y' } } };
    expect(renderRow(parseFormat('{{.Id}} {{join .Config.Env ";"}} {{json .Config.Labels}}'), inspect)).toBe('sha256:1 A=1;B=2 {"x":"y"}');
    expect(renderRow(parseFormat('{{.Config.Cmd}}'), inspect)).toBe('<no value>');
  });

  test('the header row: functions give the header text back, as docker header functions do', () => {
    expect(render('table {{.Tag | upper}}\\t{{json .ID}}').split('\n')[0]).toBe('TAG       IMAGE ID');
  });

  test('what it cannot do it refuses, before printing anything', () => {
    const refused = (format: string, message: RegExp | string) => expect(() => render(format)).toThrow(message);
    refused('{{.Nope}}', /an image row has no field \.Nope; its fields: \.Repository, \.Tag/);
    refused('{{.repository}}', /did you mean \.Repository\?/);
    refused('{{range .Labels}}{{.}}{{end}}', /\{\{range\}\} is not supported/);
    refused('{{if .Tag}}x{{end}}', /\{\{if\}\} is not supported/);
    refused('{{$x := .Tag}}', /variables .* are not supported/);
    refused('{{.Tag', /unclosed action/);
    refused('{{(.Tag)}}', /parentheses are not supported/);
    refused('{{html .Tag}}', /function "html" is not supported/);
    refused('{{.Tag .ID}}', /not a function/);
    refused('{{printf "%z" .Tag}}', /printf verb %z is not supported/);
    expect(() => renderRow(parseFormat('{{.Config}}'), { Config: { a: 1 } })).toThrow('{{.Config}} is a structure, which gantry prints only as JSON: {{json .Config}}');
    expect(() => renderRow(parseFormat('{{upper .N}}'), { N: 3 })).toThrow('upper takes a string, not a number');
  });

  test('"table" alone is the default table; usesField', () => {
    const f = listingFormat('table', 'table {{.ID}}\\t{{.Size}}', IMAGE);
    expect(f.table).toBe(true);
    expect(usesField(f, 'Size')).toBe(true);
    expect(usesField(parseFormat('{{.ID}}'), 'Size')).toBe(false);
    expect(usesField(parseFormat('{{json .}}'), 'Size')).toBe(true);
  });

  test('printf: widths, flags, missing and extra arguments as Go prints them', () => {
    expect(goSprintf('%5s|%-5s|%05d|%.2f|%x|%t|%%', ['ab', 'cd', 42, 1.5, 255, true])).toBe('   ab|cd   |00042|1.50|ff|true|%');
    expect(goSprintf('%s %s', ['a'])).toBe('a %!s(MISSING)');
    expect(goSprintf('%s', ['a', 'b'])).toBe('a%!(EXTRA b)');
  });

  test('tabwriter: a column block is the consecutive lines that have the cell', () => {
    expect(tabwrite('a\tb\nlonger-than-ten\tc\nno tabs here\nx\ty')).toBe('a                 b\nlonger-than-ten   c\nno tabs here\nx         y');
  });
});

describe('docker units and times', () => {
  test('HumanSizeWithPrecision(3) and HumanSize (4), as docker prints them', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(1000)).toBe('1kB');
    expect(humanSize(8898)).toBe('8.9kB');
    expect(humanSize(1871)).toBe('1.87kB');
    expect(humanSize(317680873)).toBe('318MB');
    expect(humanSize(201108319)).toBe('201MB');
    expect(humanSize(317680873, 4)).toBe('317.7MB');
    expect(humanSize(14.49e9, 4)).toBe('14.49GB');
    expect(humanSize(999_700)).toBe('1e+03kB'); // Go's %.3g, docker's quirk
    expect(goFormatG(123456, 3)).toBe('1.23e+05');
    expect(goFormatG(0.0001234, 3)).toBe('0.000123');
  });

  test('HumanDuration', () => {
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(1000)).toBe('1 second');
    expect(humanDuration(59_000)).toBe('59 seconds');
    expect(humanDuration(90_000)).toBe('About a minute');
    expect(humanDuration(13 * 60_000)).toBe('13 minutes');
    expect(humanDuration(70 * 60_000)).toBe('About an hour');
    expect(humanDuration(5 * 3_600_000)).toBe('5 hours');
    expect(humanDuration(3 * 86_400_000)).toBe('3 days');
    expect(humanDuration(20 * 86_400_000)).toBe('2 weeks');
    expect(humanDuration(100 * 86_400_000)).toBe('3 months');
    expect(humanDuration(800 * 86_400_000)).toBe('2 years');
  });

  test("Go's time formats in the local zone (UTC here)", () => {
    const tz = process.env.TZ;
    process.env.TZ = 'UTC';
    try {
      expect(goTimeString('2026-12-05T00:26:41Z')).toBe('2026-12-05 00:26:41 +0000 UTC');
      expect(rfc3339('2026-12-05T00:26:41.123Z')).toBe('2026-12-05T00:26:41Z');
      expect(rfc3339(undefined)).toBe('N/A');
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });
});
