/** USER and --chown names resolved against the image's /etc/passwd and /etc/group, inside the root. */
import { lstat, readFile } from 'node:fs/promises';
import { GantryError } from '../errors/index.js';
import { resolveInRoot } from '../rootfs/resolve.js';

export interface Ids {
  uid: number;
  gid: number;
  /** Supplementary groups of the user (from /etc/group). */
  groups: number[];
  /** The user's home directory in /etc/passwd, when it has a row there. */
  home?: string;
}

async function readDb(root: string, file: string): Promise<string[][]> {
  const { host } = await resolveInRoot(root, file);
  const st = await lstat(host).catch(() => undefined);
  if (!st) return [];
  // A FIFO or a device would hang or leak the host: only regular files are read.
  if (!st.isFile()) throw new GantryError('USER_DB', `${file} in the image is not a regular file`);
  if (st.size > 16 * 1024 * 1024) throw new GantryError('USER_DB', `${file} in the image is too large`);
  return (await readFile(host, 'utf8')).split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'));
}

/**
 * `user`, `user:group`, `uid`, `uid:gid`; names looked up in the rootfs. A uid with no passwd
 * entry and no group gets gid 0 for a RUN (what the runtime's user lookup does in BuildKit), and
 * its own number as gid for files (`COPY --chown=1000`, WORKDIR: BuildKit's file operations).
 */
export async function resolveUser(root: string | undefined, spec: string, purpose: 'run' | 'file' = 'file'): Promise<Ids> {
  const [userPart = '', groupPart] = spec.split(':', 2) as [string, string | undefined];
  const passwd = root ? await readDb(root, '/etc/passwd') : [];
  const group = root ? await readDb(root, '/etc/group') : [];
  let uid: number;
  let gid: number | undefined;
  let name: string | undefined;
  let home: string | undefined;
  if (userPart === '' || /^\d+$/.test(userPart)) {
    // An empty user is root, looked up like "0" (BuildKit), so root's groups come from /etc/group.
    uid = Number(userPart || '0');
    const id = String(uid);
    const row = passwd.find((r) => r[2] === id);
    gid = row ? Number(row[3]) : groupPart === undefined ? uid === 0 ? 0 : undefined : undefined;
    name = row?.[0];
    home = row?.[5];
  } else {
    const row = passwd.find((r) => r[0] === userPart);
    if (!row) throw new GantryError('USER_UNKNOWN', `unable to find user ${userPart}: no matching entries in passwd file`);
    uid = Number(row[2]);
    gid = Number(row[3]);
    name = userPart;
    home = row[5];
  }
  if (groupPart !== undefined) {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const row = group.find((r) => r[0] === groupPart);
      if (!row) throw new GantryError('GROUP_UNKNOWN', `unable to find group ${groupPart}: no matching entries in group file`);
      gid = Number(row[2]);
    }
  }
  if (gid === undefined) gid = uid === 0 || purpose === 'run' ? 0 : uid;
  // Supplementary groups, as BuildKit (moby/sys/user): the groups naming the user, primary group
  // first; none when the group was given (`user:group`, `uid:gid`).
  const groups = name && groupPart === undefined ? group.filter((r) => (r[3] ?? '').split(',').includes(name as string)).map((r) => Number(r[2])) : [];
  return { uid, gid, groups: [...new Set([gid, ...groups])], ...(home ? { home } : {}) };
}
