/**
 * gantry's tar: every tar it reads or writes goes through here. `pack()` writes one as a
 * stream, `extract()` reads one (header.ts holds the format; writer.ts lays out a layer's tar
 * in large chunks without a stream per entry).
 */
import { extract, type Extract, type TarEntry } from './extract.js';
import { pack, type Pack, type PackEntry } from './pack.js';

export { entryFrom } from './pack.js';

export { encodeHeader, type EntryHeader, type EntryType, type TarHeader } from './header.js';
export type { Extract, Pack, PackEntry, TarEntry };

const tar = { pack, extract };

export default tar;
