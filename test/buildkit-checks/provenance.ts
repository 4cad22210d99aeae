import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';
import type { CheckFile } from './types.js';

const file = 'dockerfile_provenance_test.go';

const noProvenance = 'needs provenance attestations, which gantry does not make';

interface Desc {
  mediaType: string;
  digest: string;
  platform?: { os: string; architecture: string };
  annotations?: Record<string, string>;
}

const blob = (tarball: string, digest: string): string => execFileSync('tar', ['-xOf', tarball, `blobs/sha256/${digest.slice(7)}`], { encoding: 'utf8' });

export default {
  file,
  checks: [
    {
      name: 'testProvenanceAttestation',
      file,
      dockerfile: '',
      // BuildKit pushes the image with attest:provenance (each of mode min/max, SLSA v1/v0.2)
      // and reads the attestation manifest; here: docker build's --attest type=provenance,mode=max
      // to an OCI layout, for the image, the attestation manifest beside it and the statement's
      // type (the predicate's many fields are BuildKit's).
      gap: 'no provenance attestations: --attest is refused',
      async custom(h) {
        const r = await h.build({
          dockerfile: '\nFROM busybox:latest\nRUN echo "ok" > /foo\n',
          buildArgs: { FOO: 'bar' },
          args: ['--attest', 'type=provenance,mode=max', '-o', 'type=oci,dest={work}/out.tar'],
        });
        expect(r.exitCode, r.output).toBe(0);
        const tarball = path.join(r.dir, 'out.tar');
        const top = JSON.parse(execFileSync('tar', ['-xOf', tarball, 'index.json'], { encoding: 'utf8' })) as { manifests: Desc[] };
        const index = JSON.parse(blob(tarball, top.manifests[0]!.digest)) as { manifests: Desc[] };
        expect(index.manifests).toHaveLength(2);
        const img = index.manifests.find((m) => m.platform?.os === 'linux')!;
        const att = index.manifests.find((m) => m.platform?.os === 'unknown')!;
        expect(att.annotations?.['vnd.docker.reference.digest']).toBe(img.digest);
        expect(att.annotations?.['vnd.docker.reference.type']).toBe('attestation-manifest');
        const mfst = JSON.parse(blob(tarball, att.digest)) as { layers: Desc[] };
        const stmt = JSON.parse(blob(tarball, mfst.layers[0]!.digest)) as { _type: string; predicateType: string };
        expect(stmt._type).toBe('https://in-toto.io/Statement/v1');
        expect(stmt.predicateType).toBe('https://slsa.dev/provenance/v1');
      },
    },
  ],
  notPorted: [
    'testGitProvenanceAttestationSHA1',
    'testGitProvenanceAttestationSHA256',
    'testMultiPlatformProvenance',
    'testClientFrontendProvenance',
    'testGatewayBuiltinSyntaxSourceProvenance',
    'testClientLLBProvenance',
    'testGatewayProvenanceRootRequest',
    'testGatewayProvenanceSameCallbackInputProducer',
    'testGatewayProvenanceDifferentCallbackInputProducer',
    'testGatewayProvenancePlainLLBInputFallback',
    'testGatewayProvenanceNestedInputProducer',
    'testDockerfileProvenanceInputProducer',
    'testSecretSSHProvenance',
    'testOCILayoutProvenance',
    'testNilProvenance',
    'testDuplicatePlatformProvenance',
    'testDockerIgnoreMissingProvenance',
    'testCommandSourceMapping',
    'testFrontendDeduplicateSources',
    'testDuplicateLayersProvenance',
    'testProvenanceExportLocal',
    'testProvenanceExportLocalForceSplit',
    'testProvenanceExportLocalMultiPlatform',
    'testProvenanceExportLocalMultiPlatformNoSplit',
  ].map((name) => ({ name, file, reason: noProvenance })),
} satisfies CheckFile;
