import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_sbom_test.go';

interface Desc {
  digest: string;
  platform?: { os: string };
}

const blob = (tarball: string, digest: string): string => execFileSync('tar', ['-xOf', tarball, `blobs/sha256/${digest.slice(7)}`], { encoding: 'utf8' });

const scanner = `
FROM busybox:latest
COPY <<-"EOF" /scan.sh
	set -e
	cat <<BUNDLE > $BUILDKIT_SCAN_DESTINATION/spdx.json
	{
	  "_type": "https://in-toto.io/Statement/v1",
	  "predicateType": "https://spdx.dev/Document",
	  "predicate": {"name": "sbom-scan"}
	}
	BUNDLE
EOF
CMD sh /scan.sh
`;

export default {
  file,
  checks: [
    {
      name: 'testSBOMScannerImage',
      file,
      dockerfile: '',
      // BuildKit pushes a scanner image (busybox writing a fixed SPDX statement) and builds with
      // attest:sbom generator=it; here the scanner is in the store and the attestation is read
      // from an OCI layout (docker build --attest type=sbom,generator=IMAGE).
      gap: 'no SBOM attestations: --attest is refused',
      async custom(h) {
        const s = await h.build({ dockerfile: scanner }, { tag: 'bksbom/testsbomscanner:latest' });
        await h.expectImage(s, {});
        const r = await h.build({
          dockerfile: '\nFROM scratch\nCOPY <<EOF /foo\ndata\nEOF\n',
          args: ['--attest', 'type=sbom,generator=bksbom/testsbomscanner:latest', '-o', 'type=oci,dest={work}/out.tar'],
        });
        await h.expectImage(r, { files: { foo: 'data\n' } });
        const tarball = path.join(r.dir, 'out.tar');
        const top = JSON.parse(execFileSync('tar', ['-xOf', tarball, 'index.json'], { encoding: 'utf8' })) as { manifests: Desc[] };
        const index = JSON.parse(blob(tarball, top.manifests[0]!.digest)) as { manifests: Desc[] };
        expect(index.manifests).toHaveLength(2);
        const att = index.manifests.find((m) => m.platform?.os === 'unknown')!;
        const mfst = JSON.parse(blob(tarball, att.digest)) as { layers: Desc[] };
        expect(mfst.layers).toHaveLength(1);
        const stmt = JSON.parse(blob(tarball, mfst.layers[0]!.digest)) as { _type: string; predicateType: string; predicate: Record<string, unknown> };
        expect(stmt._type).toBe('https://in-toto.io/Statement/v1');
        expect(stmt.predicateType).toBe('https://spdx.dev/Document');
        expect(stmt.predicate).toMatchObject({ name: 'sbom-scan' });
      },
    },
  ],
  notPorted: [
    {
      name: 'testSBOMScannerArgs',
      file,
      reason: "needs SBOM attestations (the scan's BUILDKIT_SBOM_SCAN_CONTEXT and BUILDKIT_SBOM_SCAN_STAGE arguments), which gantry does not make; the attestation itself is checked by testSBOMScannerImage's known difference",
    },
  ],
} satisfies CheckFile;
