/** OCI platforms (`os/arch[/variant]`), normalised the way containerd's platforms package does. */
import { OptionError } from '../errors/index.js';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const ARCH_ALIASES: Record<string, { architecture: string; variant?: string }> = {
  x86_64: { architecture: 'amd64' },
  'x86-64': { architecture: 'amd64' },
  aarch64: { architecture: 'arm64' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v6' },
  i386: { architecture: '386' },
  ia32: { architecture: '386' },
  x64: { architecture: 'amd64' },
};

export function parsePlatform(text: string): Platform {
  const parts = text.trim().toLowerCase().split('/');
  if (parts.length < 1 || parts.length > 3 || parts.some((p) => !/^[a-z0-9_.-]+$/.test(p))) {
    throw new OptionError('PLATFORM_INVALID', `invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64`);
  }
  if (parts.length === 1) {
    // A lone architecture means linux/<arch>, as with docker --platform=arm64.
    parts.unshift('linux');
  }
  const [os, rawArch, rawVariant] = parts as [string, string, string | undefined];
  const alias = ARCH_ALIASES[rawArch];
  const architecture = alias?.architecture ?? rawArch;
  let variant = rawVariant ?? alias?.variant;
  if (architecture === 'arm64' && variant === 'v8') variant = undefined;
  if (architecture === 'arm' && variant === undefined) variant = 'v7';
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** The platform this process runs on, as an image platform. */
export function hostPlatform(): Platform {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch === 'ia32' ? '386' : process.arch;
  return arch === 'arm' ? { os: 'linux', architecture: 'arm', variant: 'v7' } : { os: 'linux', architecture: arch };
}

/**
 * The platform an image config says (`os`, `architecture`, `variant`), normalised: `linux/arm64`.
 * Never throws: a config's odd value (another character, a slash) is shown with such characters
 * as `-`, so that listing a store with one such image does not fail.
 */
export function configPlatform(c: { os?: string; architecture?: string; variant?: string }): string {
  const part = (v: string): string => v.replace(/[^A-Za-z0-9_.-]/g, '-');
  const os = part(String(c.os || 'linux'));
  const arch = part(String(c.architecture || 'amd64'));
  const variant = c.variant ? part(String(c.variant)) : '';
  try {
    return formatPlatform(parsePlatform(`${os}/${arch}${variant ? `/${variant}` : ''}`));
  } catch {
    return `${os}/${arch}${variant ? `/${variant}` : ''}`;
  }
}
