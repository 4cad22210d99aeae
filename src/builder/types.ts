/** What a build is asked to do and what it tells: shared by the builder and the public build() API. */
import type { Descriptor } from '../oci/types.js';
import type { BuildPlan } from '../plan/planner.js';
import type { Ulimit } from '../sandbox/types.js';
import type { Isolation } from '../sandbox/run.js';
import type { PullEvent } from './bases.js';
import type { ExportEvent } from './outputs.js';
import type { RegistryAccess } from './registry.js';
import type { CacheSpec, SharedCacheRun } from './shared-cache.js';

export type ProgressEvent =
  | { type: 'plan'; plan: BuildPlan }
  | { type: 'step'; id: number; name: string; status: 'start' | 'cached' | 'done'; seconds?: number }
  | { type: 'output'; id: number; stream: 'stdout' | 'stderr'; text: string }
  | { type: 'image'; digest: string; configDigest: string; tags: string[] }
  /** Something the user should know that is not an error (the isolation chosen, a weaker guarantee). */
  | { type: 'notice'; text: string }
  /** A base image (or one COPY --from names) being pulled. */
  | PullEvent
  /** An output being written or pushed, after the build. */
  | ExportEvent;

/** What a build is asked to do, shared by the executor and the public build() API. */
export interface BuildSettings extends RegistryAccess {
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  /**
   * The platform to build for (`os/arch[/variant]`), or several, comma-separated: then the build
   * runs once for each and its image is an OCI index of theirs.
   */
  platform?: string;
  noCache?: boolean;
  /** Pull every image the Dockerfile names, even those the store has (`--pull`). */
  pull?: boolean;
  /** Named contexts (`--build-context NAME=VALUE`): NAME → a directory, docker-image://REF, oci-layout://PATH[:TAG][@DIGEST], or a URL. */
  namedContexts?: Record<string, string>;
  /** Where the build's cache is exported to (`--cache-to`): a registry, an OCI layout directory, or the image itself. */
  cacheTo?: CacheSpec[];
  /** Caches the build may take steps from (`--cache-from`): a registry's cache or image, an OCI layout directory. */
  cacheFrom?: CacheSpec[];
  /** Stages (by name) whose steps run again, the cache unused (`--no-cache-filter`). */
  noCacheFilter?: string[];
  sourceDateEpoch?: number;
  isolation?: Isolation;
  /** The network of every RUN that asks for none of its own (`--network`); default: a user-mode network. */
  network?: 'default' | 'none' | 'host';
  /** Entitlements granted (`--allow`): `network.host` lets RUN use the host's network. */
  allow?: string[];
  /** ssh-agent sockets for RUN --mount=type=ssh: id → socket (`--ssh`). */
  ssh?: Record<string, string>;
  /** Annotations of the image's manifest (`--annotation`): of each platform's, in a multi-platform build. */
  annotations?: Record<string, string>;
  /** Annotations of a multi-platform image's index (`--annotation index:KEY=VALUE`); refused for one platform. */
  indexAnnotations?: Record<string, string>;
  /** Extra /etc/hosts entries of every RUN (`--add-host`). */
  extraHosts?: { name: string; ip: string }[];
  /** The size of every RUN's /dev/shm in bytes (`--shm-size`). */
  shmSize?: number;
  /** Resource limits of every RUN (`--ulimit`). */
  ulimits?: Ulimit[];
  /** Labels of the image (`--label`), over those the Dockerfile sets. */
  labels?: Record<string, string>;
  /** A seccomp profile (Docker's format) for RUN, or 'unconfined'; default: Debian's containers profile. */
  seccomp?: string;
  /** Secrets for RUN --mount=type=secret: id → a file, or an environment variable of this process (`--secret id=ID,env=VAR`). */
  secrets?: Record<string, string | { env: string }>;
  onProgress?: (e: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface ExecuteOptions extends BuildSettings {
  root: string;
  context: string;
  /** Dockerfile path (for messages and <Dockerfile>.dockerignore). */
  dockerfile: string;
  text: string;
  /** The build's part in sharing its cache (`cacheTo`, `cacheFrom`), when it has one. */
  shared?: SharedCacheRun;
  /**
   * One platform of a multi-platform build: its image is not named (the index is), and its
   * steps are shown with the platform, as BuildKit shows them (`[linux/arm64 2/3] RUN ...`).
   */
  onePlatform?: boolean;
  /** The keys of the steps this build ran (a multi-platform build's platforms share it): hits even under --no-cache. */
  ranThisBuild?: Set<string>;
}

export interface ExecuteResult {
  /** Manifest digest of the target image (of its index, for a multi-platform build). */
  digest: string;
  /** docker's image ID: the config's digest (the index's digest, for a multi-platform build, as Docker's containerd store has it). */
  configDigest: string;
  descriptor: Descriptor;
  tags: string[];
  plan: BuildPlan;
  /** A multi-platform build's images, one per platform, in the order built (the index's). */
  platforms?: { platform: string; digest: string; configDigest: string }[];
  /**
   * Where the image was pushed, with the registry's manifest digest (layers are compressed on
   * the way up, so it differs from `digest`, the store's).
   */
  pushed?: { name: string; digest: string; mediaType: string; size: number }[];
}
