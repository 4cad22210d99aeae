/**
 * tar-stream with binary-safe PAX records (pax.ts) and owner ids above 2^21 - 1 written as
 * PAX `uid`/`gid` records (tar-stream alone would clamp them to 7777777): every tar gantry
 * reads or writes goes through this import. Readers take the owner from `ownerOf`.
 */
import { largeIdRecords } from './pax.js';
import tar from 'tar-stream';

type Entry = tar.Pack['entry'];
const proto = Object.getPrototypeOf(tar.pack()) as { entry: Entry; __gantryIds?: boolean };
if (!proto.__gantryIds) {
  const entry = proto.entry;
  proto.entry = function (this: tar.Pack, header: tar.Header, ...rest: unknown[]) {
    const ids = largeIdRecords(header);
    if (Object.keys(ids).length > 0) header = { ...header, pax: { ...(header.pax ?? {}), ...ids } };
    return (entry as (...a: unknown[]) => ReturnType<Entry>).call(this, header, ...rest);
  } as Entry;
  proto.__gantryIds = true;
}

export default tar;
