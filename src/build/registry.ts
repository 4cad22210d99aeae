/** pull and push as the API and CLI use them: a store, a client, credentials. */
import { OptionError } from '../errors/index.js';
import { parsePlatform } from '../oci/platform.js';
import { formatReference, normalizeReference, parseReference } from '../oci/reference.js';
import { RegistryClient, type CredentialLookup, type RegistryClientOptions } from '../registry/client.js';
import { pullImage, type PullProgress, type PullResult } from '../registry/pull.js';
import { pushImage, type PushResult } from '../registry/push.js';
import { resolveImage } from '../store/images.js';
import { Store } from '../store/store.js';

export interface RegistryAccess {
  insecureRegistries?: string[];
  credentials?: CredentialLookup;
}

export interface PullCommandOptions extends RegistryAccess {
  root: string;
  reference: string;
  platform?: string;
  onProgress?: (p: PullProgress) => void;
}

function clientFor(domain: string, access: RegistryAccess): RegistryClient {
  const opts: RegistryClientOptions = {};
  if (access.insecureRegistries) opts.insecureRegistries = access.insecureRegistries;
  if (access.credentials) opts.credentials = access.credentials;
  return new RegistryClient(domain, opts);
}

export async function pull(options: PullCommandOptions): Promise<PullResult> {
  const ref = normalizeReference(options.reference);
  const store = await Store.open(options.root);
  const client = clientFor(ref.domain, options);
  try {
    return await pullImage(client, store, formatReference(ref), {
      ...(options.platform ? { platform: parsePlatform(options.platform) } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await store.releaseLease();
    await client.close();
  }
}

export interface PushCommandOptions extends RegistryAccess {
  root: string;
  /** The image in the store. */
  image: string;
  /** Where to push; default: the image's own name. */
  destination?: string;
}

export async function push(options: PushCommandOptions): Promise<PushResult> {
  const store = await Store.open(options.root);
  const { image, entry } = await resolveImage(store, options.image);
  const destination = options.destination ?? entry.name;
  if (!destination) throw new OptionError('PUSH_NO_NAME', `${options.image} has no name to push to; give a destination`);
  const dest = normalizeReference(destination);
  const client = clientFor(dest.domain, options);
  try {
    // Blobs may already be in another repository of the same registry: try mounting from the image's other names there.
    const all = await store.entries();
    const mountFrom = all
      .filter((e) => e.name && e.descriptor.digest === image.digest)
      .map((e) => parseReference(e.name as string))
      .filter((r) => r.domain === dest.domain && r.path !== dest.path)
      .map((r) => r.path);
    return await pushImage(client, store, image, formatReference(dest), { mountFrom });
  } finally {
    await client.close();
  }
}
