import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { ownerOf, xattrsOf } from '../../src/tar/pax.js';
import tar from '../../src/tar/tar.js';

/**
 * A flattened root filesystem tar (what `gantry export` writes) read into one line per path:
 * type, permission bits, owner, extended attributes, and the content hash, link target or device numbers. Paths that
 * are hard links of each other are marked with their group, so which name a tar writer stored
 * first does not matter. mtimes are left out on purpose.
 */
export type Tree = Map<string, string>;

export async function readTree(file: string): Promise<Tree> {
  const raw = new Map<string, { desc: string; linkTo?: string }>();
  const extract = tar.extract();
  const input = createReadStream(file);
  input.on('error', (e) => extract.destroy(e));
  input.pipe(extract);
  for await (const entry of extract) {
    const h = entry.header;
    const name = h.name.replace(/^\.?\/+/, '').replace(/\/+$/, '');
    const mode = ((h.mode ?? 0) & 0o7777).toString(8).padStart(4, '0');
    // Extended attributes (binary PAX values, read intact through gantry's tar module).
    const xattrs = [...xattrsOf(h.pax as Record<string, string> | undefined)].sort(([a], [b]) => (a < b ? -1 : 1));
    const owner = ownerOf(h);
    const base = `${mode} ${owner.uid}:${owner.gid}${xattrs.map(([n, v]) => ` ${n}=${v.toString('hex')}`).join('')}`;
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    let content = Buffer.concat(chunks);
    // shadow's third field is the day of the last password change: two builds on either side of
    // midnight (UTC) differ there and nowhere else. The rest of each line is compared.
    if (name === 'etc/shadow' || name === 'etc/shadow-') content = Buffer.from(content.toString('utf8').replace(/^([^:\n]*:[^:\n]*:)\d*:/gm, '$1DAY:'));
    hash.update(content);
    if (name === '') continue;
    switch (h.type) {
      case 'file':
      case 'contiguous-file':
        raw.set(name, { desc: `file ${base} ${hash.digest('hex').slice(0, 16)}` });
        break;
      case 'directory':
        raw.set(name, { desc: `dir ${base}` });
        break;
      case 'symlink':
        raw.set(name, { desc: `symlink ${base} -> ${h.linkname ?? ''}` });
        break;
      case 'link':
        raw.set(name, { desc: '', linkTo: (h.linkname ?? '').replace(/^\.?\/+/, '') });
        break;
      case 'character-device':
      case 'block-device':
        raw.set(name, { desc: `${h.type} ${base} ${h.devmajor ?? 0},${h.devminor ?? 0}` });
        break;
      default:
        raw.set(name, { desc: `${h.type} ${base}` });
    }
  }
  // Hard links: each member of a group gets the target's line and the group's first name.
  const groups = new Map<string, string[]>();
  for (const [name, e] of raw) {
    if (e.linkTo === undefined) continue;
    const group = groups.get(e.linkTo) ?? [e.linkTo];
    group.push(name);
    groups.set(e.linkTo, group);
  }
  const tree: Tree = new Map();
  for (const [name, e] of raw) if (e.linkTo === undefined) tree.set(name, e.desc);
  for (const members of groups.values()) {
    const target = raw.get(members[0] as string);
    const desc = target?.desc ?? 'missing-link-target';
    const label = [...members].sort()[0];
    for (const m of members) tree.set(m, `${desc} (hardlink group ${label})`);
  }
  return tree;
}

/** The lines that differ between two trees, as `- path: a` / `+ path: b`, sorted by path. */
export function diffTrees(a: Tree, b: Tree, ignore: (path: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const names = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const n of names) {
    if (ignore(n)) continue;
    const x = a.get(n);
    const y = b.get(n);
    if (x === y) continue;
    if (x !== undefined) out.push(`- ${n}: ${x}`);
    if (y !== undefined) out.push(`+ ${n}: ${y}`);
  }
  return out;
}
