import { describe, expect, test } from 'vitest';
import { parseChmod } from '../../src/dockerfile/chmod.js';

// --chmod as Docker 28.5 applies it: each row is what a COPY --chmod=<mode> of a file (f) or a
// directory (d) with the starting mode gave there (2026-12-04; BuildKit follows BSD's setmode,
// which differs from GNU chmod on the sticky and set-group-ID bits, so chmod(1) is no reference).

const BUILDKIT: [string, string][] = [
  ["o+t", 'f1777:1777 d600:600 d1777:1777 f2750:2750 d2750:2750 f4755:4755 d4755:4755 f644:644 d644:644 f600:600'],
  ["o=g", 'd600:600 f1777:1777 d1777:1777 f2750:2755 d2750:2755 f4755:4755 d4755:4755 f644:644 d644:644 f600:600'],
  ["ug+s,o-rx", 'f1777:7772 d1777:7772 f2750:6750 d2750:6750 f4755:6750 d4755:6750 f644:6640 d644:6640 f600:6600 d600:6600'],
  ["=r", 'f1777:1444 d1777:1444 f2750:444 d2750:444 f4755:444 d4755:444 f644:444 d644:444 f600:444 d600:444'],
  ["u+rw,g-x,o=", 'f1777:1760 d1777:1760 f2750:2740 d2750:2740 f4755:4740 d4755:4740 f644:640 d644:640 f600:600 d600:600'],
  ["go=", 'f1777:1700 d1777:1700 f2750:700 d2750:700 f4755:4700 d4755:4700 f644:600 d644:600 f600:600 d600:600'],
  ["g=u", 'f1777:1777 d1777:1777 f2750:2770 d2750:2770 f4755:4775 d4755:4775 f644:664 d644:664 f600:660 d600:660'],
  ["u=rwx,go=rx", 'f1777:1755 d1777:1755 f2750:755 d2750:755 f4755:755 d4755:755 f644:755 d644:755 f600:755 d600:755'],
  ["u-s,g=rX", 'f1777:1757 d1777:1757 f2750:750 d2750:750 f4755:755 d4755:755 f644:644 d644:654 f600:640 d600:650'],
  ["u+x", 'f1777:1777 d1777:1777 f2750:2750 d2750:2750 f4755:4755 d4755:4755 f644:744 d644:744 f600:700 d600:700'],
  ["+X", 'f1777:1777 d1777:1777 f2750:2751 d2750:2751 f4755:4755 d4755:4755 f644:644 d644:755 f600:600 d600:711'],
  ["a+X", 'f1777:1777 d1777:1777 f2750:2751 d2750:2751 f4755:4755 d4755:4755 f644:644 d644:755 f600:600 d600:711'],
];

describe('--chmod', () => {
  test.each(BUILDKIT)('%s as BuildKit applies it', (spec, rows) => {
    const change = parseChmod(spec);
    for (const row of rows.split(' ')) {
      const m = /^([fd])(\d+):(\d+)$/.exec(row) as RegExpExecArray;
      expect(change(Number.parseInt(m[2] as string, 8), m[1] === 'd').toString(8), `${spec} on ${row}`).toBe(String(Number(m[3])));
    }
  });

  test("octal values, --chmod=0 included; above 07777 and non-octal digits are BuildKit's error", () => {
    expect(parseChmod('0')(0o755, false)).toBe(0);
    expect(parseChmod('755')(0o600, true)).toBe(0o755);
    expect(parseChmod('4755')(0o600, false)).toBe(0o4755);
    expect(() => parseChmod('17777')).toThrow("invalid chmod parameter: '17777'. it should be octal string and between 0 and 07777");
    expect(() => parseChmod('0789')).toThrow(/it should be octal string/);
    for (const bad of ['u', 'u+q', 'x+u', 'u+x,', ',u+x', 'g=ur', '']) expect(() => parseChmod(bad), bad).toThrow(/invalid chmod parameter/);
  });
});
