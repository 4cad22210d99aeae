import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import AjvModule from 'ajv-draft-04';
import { expect } from 'vitest';
import { conformanceDir } from './conformance.js';

type Validator = { addSchema(s: object, key: string): void; validate(key: string, doc: unknown): boolean; errorsText(): string };

let ajv: Validator | undefined;

/** The OCI image-spec JSON schemas from ../shared/conformance, $refs resolved by file name. */
function validator(): Validator {
  if (ajv) return ajv;
  // ajv-draft-04 is CommonJS; its default export is the class.
  const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as new (o: object) => Validator;
  const v = new Ajv({ allErrors: true, strict: false });
  // The schemas' "id"s name URLs that do not serve them; drop them so $refs resolve by file name.
  const dropIds = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(dropIds);
    if (x && typeof x === 'object') {
      return Object.fromEntries(Object.entries(x).filter(([k, y]) => !(k === 'id' && typeof y === 'string')).map(([k, y]) => [k, dropIds(y)]));
    }
    return x;
  };
  const dir = path.join(conformanceDir(), 'oci-image-spec-schema');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    v.addSchema(dropIds(JSON.parse(readFileSync(path.join(dir, f), 'utf8'))) as object, f);
  }
  ajv = v;
  return v;
}

export type SchemaName = 'image-layout-schema.json' | 'image-index-schema.json' | 'image-manifest-schema.json' | 'config-schema.json';

export function expectValid(schema: SchemaName, doc: unknown, what: string): void {
  const v = validator();
  expect(v.validate(schema, doc), `${what}: ${v.errorsText()}`).toBe(true);
}

export function isValid(schema: SchemaName, doc: unknown): boolean {
  return validator().validate(schema, doc);
}
