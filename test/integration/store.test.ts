import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, test } from 'vitest';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/media-types.js';
import { Store } from '../../src/store/store.js';
import { writeImage } from '../../src/store/images.js';
import { pruneStore } from '../../src/store/prune.js';
import { REF_NAME_ANNOTATION } from '../../src/oci/types.js';

const dirs: string[] = [];
const newRoot = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'gantry-store-'));
  dirs.push(d);
  return path.join(d, 'store');
};
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const blobsOf = (root: string) => readdirSync(path.join(root, 'blobs', 'sha256')).sort();

describe('layout', () => {
  test("a new store's tmp/ is a top directory for ext4's allocator (chattr +T): builds' rootfs directories are spread out", async () => {
    const store = await Store.open(newRoot());
    const ext4 = statfsSync(store.tmpDir).type === 0xef53;
    const flags = execFileSync('lsattr', ['-d', store.tmpDir], { encoding: 'utf8' }).split(/\s+/)[0] as string;
    // Other file systems have no such flag: the store works the same without it.
    expect(flags.includes('T')).toBe(ext4);
  });

  test('a store whose maker was killed before oci-layout (index.json in place, tmp/ without the flag) is finished by the next open', async () => {
    const root = newRoot();
    const first = await Store.open(root);
    execFileSync('chattr', ['-T', first.tmpDir]);
    rmSync(path.join(root, 'oci-layout'));
    const store = await Store.open(root);
    expect(existsSync(path.join(root, 'oci-layout'))).toBe(true);
    const ext4 = statfsSync(store.tmpDir).type === 0xef53;
    expect((execFileSync('lsattr', ['-d', store.tmpDir], { encoding: 'utf8' }).split(/\s+/)[0] as string).includes('T')).toBe(ext4);
  });

  test('a directory with another layout version is refused before anything is written into it', async () => {
    const root = newRoot();
    mkdirSync(root);
    writeFileSync(path.join(root, 'oci-layout'), '{"imageLayoutVersion":"9.9.9"}');
    await expect(Store.open(root)).rejects.toThrow(/not an OCI image layout/);
    expect(readdirSync(root)).toEqual(['oci-layout']);
  });
});

describe('blobs', () => {
  test('written once, named by their digest, verified on read', async () => {
    const store = await Store.open(newRoot());
    const info = await store.writeBlob(Buffer.from('hello'));
    expect(info).toEqual({ digest: digestOf('hello'), size: 5 });
    expect((await store.readBlob(info.digest)).toString()).toBe('hello');
    expect(await store.writeBlob(Readable.from([Buffer.from('hel'), Buffer.from('lo')]), info)).toEqual(info);
    expect(blobsOf(store.root)).toEqual([info.digest.slice(7)]);
  });

  test('wrong content or size: rejected, nothing stored, no temp file left', async () => {
    const root = newRoot();
    const store = await Store.open(root);
    const claimed = digestOf('something else');
    await expect(store.writeBlob(Buffer.from('hello'), { digest: claimed })).rejects.toThrow(
      `blob ${claimed} does not match its digest`,
    );
    await expect(store.writeBlob(Buffer.from('hello'), { digest: digestOf('hello'), size: 4 })).rejects.toThrow('expected 4 bytes');
    await expect(store.writeBlob(Buffer.from('hello'), { digest: digestOf('hello'), size: 9 })).rejects.toThrow('expected 9 bytes, got 5');
    expect(blobsOf(root)).toEqual([]);
    expect(readdirSync(path.join(root, 'tmp')).filter((f) => !f.startsWith('lease-'))).toEqual([]);
  });

  test('a corrupted blob fails to read, naming its digest', async () => {
    const store = await Store.open(newRoot());
    const { digest } = await store.writeBlob(Buffer.from('original'));
    writeFileSync(store.blobPath(digest), 'tampered');
    await expect(store.readBlob(digest)).rejects.toThrow(`corrupted blob in the store ${store.root}: blob ${digest} does not match its digest`);
  });

  test('a blob over 1 MiB (read as a stream, not whole) is verified the same way, and bounded by maxSize', async () => {
    const store = await Store.open(newRoot());
    const big = Buffer.alloc(2 * 1024 * 1024 + 7, 'x');
    const { digest } = await store.writeBlob(big);
    expect((await store.readBlob(digest)).equals(big)).toBe(true);
    await expect(store.readBlob(digest, 1024)).rejects.toThrow(`blob ${digest} is ${big.length} bytes, more than 1024`);
    writeFileSync(store.blobPath(digest), Buffer.alloc(big.length, 'y'));
    await expect(store.readBlob(digest)).rejects.toThrow(`corrupted blob in the store ${store.root}: blob ${digest} does not match its digest`);
  });

  test('digests used as paths are validated first', async () => {
    const store = await Store.open(newRoot());
    for (const bad of ['sha256:../../etc/passwd', 'sha256:' + 'A'.repeat(64), 'md5:abc', 'sha256:abc']) {
      expect(() => store.blobPath(bad)).toThrow(/invalid digest/);
    }
    await expect(store.readBlob('sha256:' + 'a'.repeat(64))).rejects.toThrow('is not in the store');
  });

  test('a directory that is not an OCI layout is refused', async () => {
    const root = newRoot();
    await Store.open(root);
    writeFileSync(path.join(root, 'oci-layout'), '{"imageLayoutVersion":"9"}');
    await expect(Store.open(root)).rejects.toThrow('not an OCI image layout 1.0.0');
  });
});

async function smallImage(store: Store, content: string) {
  const layer = await store.writeBlob(Buffer.from(content));
  return writeImage(store, {
    config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } },
    layers: [{ ...layer, mediaType: MediaType.ociLayer }],
  });
}

describe('names and prune', () => {
  test('retagging leaves the old image dangling; prune removes it and its blobs', async () => {
    const root = newRoot();
    const store = await Store.open(root);
    const a = await smallImage(store, 'a');
    const b = await smallImage(store, 'b');
    await store.tag('docker.io/library/x:1', a);
    await store.tag('docker.io/library/x:1', b);
    const entries = await store.entries();
    expect(entries.map((e) => [e.name, e.descriptor.digest])).toEqual([
      ['docker.io/library/x:1', b.digest],
      [undefined, a.digest],
    ]);
    await store.releaseLease();
    const before = blobsOf(root).length;
    const r = await pruneStore(root);
    expect(r.images).toEqual([a.digest]);
    expect(r.blobs).toHaveLength(3); // manifest, config, layer of a
    expect(blobsOf(root)).toHaveLength(before - 3);
    expect(existsSync(store.blobPath(b.digest))).toBe(true);
  });

  test('a name set again to the image it already names keeps its place, and index.json is not rewritten', async () => {
    const root = newRoot();
    const store = await Store.open(root);
    const a = await smallImage(store, 'a');
    const b = await smallImage(store, 'b');
    await store.tag('docker.io/library/x:1', a);
    await store.tag('docker.io/library/y:1', b);
    const inode = statSync(path.join(root, 'index.json')).ino;
    await store.tag('docker.io/library/x:1', a);
    await store.addUntagged(b);
    expect(statSync(path.join(root, 'index.json')).ino).toBe(inode);
    expect((await store.entries()).map((e) => e.name)).toEqual(['docker.io/library/x:1', 'docker.io/library/y:1']);
    await store.tag('docker.io/library/x:1', b); // a real change is written
    expect(statSync(path.join(root, 'index.json')).ino).not.toBe(inode);
  });

  test('untagged (never named) images stay unless --all', async () => {
    const root = newRoot();
    const store = await Store.open(root);
    const a = await smallImage(store, 'a');
    await store.addUntagged(a);
    await store.releaseLease();
    expect((await pruneStore(root)).images).toEqual([]);
    expect((await pruneStore(root, { all: true })).images).toEqual([a.digest]);
    expect(blobsOf(root)).toEqual([]);
  });

  test('a stray entry in rootfs/ (lost+found, a file) does not stop prune: it goes, and the rest is collected', async () => {
    const root = newRoot();
    await Store.open(root);
    mkdirSync(path.join(root, 'rootfs', 'lost+found'), { recursive: true });
    writeFileSync(path.join(root, 'rootfs', 'stray.txt'), 'x');
    const r = await pruneStore(root);
    expect(r.rootfs.sort()).toEqual(['lost+found', 'stray.txt']);
    expect(readdirSync(path.join(root, 'rootfs'))).toEqual([]);
  });

  test('blobs leased by a live process survive prune', async () => {
    const root = newRoot();
    const store = await Store.open(root);
    const orphan = await store.writeBlob(Buffer.from('being written by a build'));
    expect((await pruneStore(root)).blobs).toEqual([]);
    await store.releaseLease();
    expect((await pruneStore(root)).blobs).toEqual([orphan.digest]);
  });

  test('a name cannot point at an image whose blobs are gone', async () => {
    const store = await Store.open(newRoot());
    const a = await smallImage(store, 'a');
    rmSync(store.blobPath(a.digest));
    await expect(store.tag('docker.io/library/x:1', a)).rejects.toThrow(`image ${a.digest} is incomplete in the store`);
    expect((await store.entries()).some((e) => e.descriptor.annotations?.[REF_NAME_ANNOTATION])).toBe(false);
  });
});

describe('the index lock', () => {
  const lockDir = (root: string) => path.join(root, 'index.json.lock');

  test('a free lock is taken and given back; a held one is waited for', async () => {
    const store = await Store.open(newRoot());
    let inside = false;
    await store.withLock(async () => {
      inside = existsSync(lockDir(store.root));
    });
    expect(inside).toBe(true);
    expect(existsSync(lockDir(store.root))).toBe(false);
    // Held by another holder (proper-lockfile's directory): the second waits until it goes.
    mkdirSync(lockDir(store.root));
    const order: string[] = [];
    const waiting = store.withLock(async () => void order.push('second'));
    await new Promise((r) => setTimeout(r, 150));
    order.push('first done');
    rmSync(lockDir(store.root), { recursive: true });
    await waiting;
    expect(order).toEqual(['first done', 'second']);
    expect(existsSync(lockDir(store.root))).toBe(false);
  });

  test('a held lock stays fresh; one taken over while held is reported and not removed', async () => {
    const store = await Store.open(newRoot());
    // Held past its refresh interval (1 s): the directory's mtime moves on, so no waiter judges it stale.
    await store.withLock(async () => {
      const first = statSync(lockDir(store.root)).mtimeMs;
      await new Promise((r) => setTimeout(r, 1_300));
      expect(statSync(lockDir(store.root)).mtimeMs).toBeGreaterThan(first);
    });
    // Another process judged it stale and made its own: this holder must not remove that one.
    await expect(
      store.withLock(async () => {
        rmSync(lockDir(store.root), { recursive: true });
        mkdirSync(lockDir(store.root));
        utimesSync(lockDir(store.root), new Date(Date.now() - 500), new Date(Date.now() - 500));
        await new Promise((r) => setTimeout(r, 1_300));
      }),
    ).rejects.toThrow(/the lock was taken over while this process held it/);
    expect(existsSync(lockDir(store.root))).toBe(true);
    // Taken over since the last refresh: seen at the release all the same.
    rmSync(lockDir(store.root), { recursive: true });
    await expect(
      store.withLock(async () => {
        rmSync(lockDir(store.root), { recursive: true });
        mkdirSync(lockDir(store.root));
        utimesSync(lockDir(store.root), new Date(Date.now() - 500), new Date(Date.now() - 500));
      }),
    ).rejects.toThrow(/the lock was taken over/);
    expect(existsSync(lockDir(store.root))).toBe(true);
  });
});
