/**
 * tar-stream with binary-safe PAX records (pax.ts): every tar gantry reads or writes goes
 * through this import, so xattr values survive.
 */
import './pax.js';
import tar from 'tar-stream';

export default tar;
