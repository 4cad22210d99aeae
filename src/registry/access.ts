/** A client for a registry as a command reaches it: credentials, insecure hosts, extra CA certificates. */
import { readFile } from 'node:fs/promises';
import { OptionError } from '../errors/index.js';
import { settings } from '../support/settings.js';
import { RegistryClient, type CredentialLookup, type RegistryClientOptions } from './client.js';
import { lookupCredentials } from './credentials.js';

export interface RegistryAccess {
  insecureRegistries?: string[];
  /** Default: the docker config ($DOCKER_CONFIG/config.json). */
  credentials?: CredentialLookup;
  /** A PEM file of extra CA certificates; default $SSL_CERT_FILE when set. */
  caCertFile?: string;
}

export async function clientFor(domain: string, access: RegistryAccess): Promise<RegistryClient> {
  const opts: RegistryClientOptions = { credentials: access.credentials ?? ((registry) => lookupCredentials(registry)) };
  if (access.insecureRegistries) opts.insecureRegistries = access.insecureRegistries;
  const caFile = access.caCertFile ?? settings.caCertFile;
  if (caFile) {
    try {
      opts.caCerts = await readFile(caFile, 'utf8');
    } catch (err) {
      throw new OptionError('CA_CERT', `cannot read CA certificates ${caFile}: ${(err as Error).message}`);
    }
  }
  return new RegistryClient(domain, opts);
}
