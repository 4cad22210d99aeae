import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_history_test.go';

interface HistoryEntry {
  created?: string;
  created_by?: string;
  empty_layer?: boolean;
}
type Inspected = { RootFS: { Type: string; Layers: string[] }; History: HistoryEntry[] };

export default {
  file,
  checks: [
    {
      name: 'testExportedHistory',
      file,
      dockerfile: '',
      // BuildKit counts its busybox's 2 history entries and 1 layer; here the base's own counts
      // are read from the store.
      async custom(h) {
        const dockerfile = '\nFROM busybox AS base\nENV foo=bar\nCOPY foo /foo2\nFROM busybox\nLABEL lbl=val\nCOPY --from=base foo2 foo3\nWORKDIR /\nRUN echo bar > foo4\nRUN ["ls"]\nEXPOSE 2375 5000 1234/udp\n';
        const base = (await h.inspect('busybox:latest')) as unknown as Inspected;
        const r = await h.build({ dockerfile, context: { foo: { content: 'contents0', mode: 0o600 } } });
        expect(r.exitCode, r.output).toBe(0);
        const img = (await h.inspect(r.tag)) as unknown as Inspected;
        expect(img.RootFS.Type).toBe('layers');
        expect(img.RootFS.Layers).toHaveLength(base.RootFS.Layers.length + 3);
        expect(img.History).toHaveLength(base.History.length + 6);
        const at = base.History.length;
        const want: [string, boolean][] = [
          ['lbl=val', true],
          ['COPY foo2 foo3', false],
          ['WORKDIR /', true],
          ['echo bar > foo4', false],
          ['RUN ls', false],
          ['EXPOSE [1234/udp 2375/tcp 5000/tcp]', true],
        ];
        want.forEach(([text, empty], i) => {
          const e = img.History[at + i]!;
          expect(e.created_by, `history ${at + i}`).toContain(text);
          expect(Boolean(e.empty_layer), `empty_layer of ${e.created_by}`).toBe(empty);
          expect(e.created, `created of ${e.created_by}`).toBeDefined();
        });
      },
      gap: 'RUN ["ls"] (no file changed) gets no layer and empty_layer: true (a deliberate difference, docs/differences.md); BuildKit stores an empty layer: 4 diff IDs, RUN ls not empty',
    },
    {
      name: 'testExportedHistoryFlattenArgs',
      file,
      dockerfile: '',
      // BuildKit pushes the image to a registry and reads it back; here it is read from the store.
      async custom(h) {
        const base = (await h.inspect('busybox:latest')) as unknown as Inspected;
        const r = await h.build({ dockerfile: '\nFROM busybox\nARG foo=bar\nARG bar=123\nARG foo=bar2\nRUN ls /etc/\n' });
        expect(r.exitCode, r.output).toBe(0);
        const history = ((await h.inspect(r.tag)) as unknown as Inspected).History;
        const first = history.findIndex((e) => e.created_by === 'ARG foo=bar');
        expect(first).toBe(base.History.length);
        expect(history).toHaveLength(first + 4);
        expect(history[first + 1]!.created_by).toContain('ARG bar=123');
        expect(history[first + 2]!.created_by).toContain('ARG foo=bar2');
        const run = history[first + 3]!.created_by ?? '';
        expect(run).toContain('ls /etc/');
        expect(run).not.toContain('ARG foo=bar');
        expect(run).toContain('RUN |2 foo=bar2 bar=123 ');
      },
    },
    {
      name: 'testHistoryError',
      file,
      // The portable part: the build fails naming /notexist. BuildKit's build-history record of
      // the error (its gRPC status blob, stacks, vertex and source map) has no counterpart here.
      dockerfile: '\nFROM scratch\nCOPY notexist /foo\n',
      error: /\/notexist/,
    },
  ],
  notPorted: [
    { name: 'testHistoryFinalizeTrace', file, reason: "asserts BuildKit's build-history API (UpdateBuildHistory Finalize, then the record's trace digest), which gantry has no counterpart of" },
  ],
} satisfies CheckFile;
