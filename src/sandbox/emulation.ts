/**
 * RUN for a platform this machine cannot execute: its binaries run through an emulator the
 * kernel starts for them (binfmt_misc, as BuildKit and buildah rely on: Debian's
 * qemu-user-static registers its handlers). A RUN is not started for an architecture that
 * neither the host nor a registered handler runs: it fails, saying how to register one. The
 * handler must be registered with the F flag (the emulator opened at registration), since the
 * build's root filesystem does not hold the emulator. Where binfmt_misc cannot be seen (not
 * mounted, as inside a container, whose host's handlers still apply) the RUN is tried, and an
 * `exec format error` says how to register one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SandboxError } from '../errors/index.js';

const BINFMT = '/proc/sys/fs/binfmt_misc';

/** The ELF identity of each architecture's binaries: class (1: 32-bit, 2: 64-bit), byte order, e_machine. */
const ELF: Record<string, { bits: 1 | 2; big?: boolean; machine: number; qemu: string }> = {
  amd64: { bits: 2, machine: 0x3e, qemu: 'x86_64' },
  '386': { bits: 1, machine: 0x03, qemu: 'i386' },
  arm64: { bits: 2, machine: 0xb7, qemu: 'aarch64' },
  arm: { bits: 1, machine: 0x28, qemu: 'arm' },
  ppc64le: { bits: 2, machine: 0x15, qemu: 'ppc64le' },
  s390x: { bits: 2, big: true, machine: 0x16, qemu: 's390x' },
  riscv64: { bits: 2, machine: 0xf3, qemu: 'riscv64' },
  mips64le: { bits: 2, machine: 0x08, qemu: 'mips64el' },
  loong64: { bits: 2, machine: 0x102, qemu: 'loongarch64' },
};

/** The architectures a host runs without an emulator: its own, and the 32-bit one an amd64 kernel runs too. */
function native(hostArch: string): string[] {
  return hostArch === 'amd64' ? ['amd64', '386'] : [hostArch];
}

/** The first bytes of an executable of `arch` (an ELF header up to e_machine). */
function elfHeader(arch: string): Buffer | undefined {
  const e = ELF[arch];
  if (!e) return undefined;
  const b = Buffer.alloc(20);
  b.write('\x7fELF', 0, 'latin1');
  b[4] = e.bits;
  b[5] = e.big ? 2 : 1;
  b[6] = 1;
  if (e.big) {
    b.writeUInt16BE(2, 16);
    b.writeUInt16BE(e.machine, 18);
  } else {
    b.writeUInt16LE(2, 16);
    b.writeUInt16LE(e.machine, 18);
  }
  return b;
}

/** A registered binfmt_misc handler: its name and fields as /proc shows them. */
interface Handler {
  name: string;
  enabled: boolean;
  interpreter: string;
  flags: string;
  offset: number;
  magic: Buffer;
  mask: Buffer | undefined;
}

function handlers(dir: string): Handler[] {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n !== 'register' && n !== 'status');
  } catch {
    return []; // binfmt_misc not mounted
  }
  const out: Handler[] = [];
  for (const name of names) {
    let text: string;
    try {
      text = readFileSync(path.join(dir, name), 'utf8');
    } catch {
      continue;
    }
    const field = (key: string): string | undefined => text.split('\n').find((l) => l.startsWith(`${key} `))?.slice(key.length + 1).trim();
    const magic = field('magic');
    if (magic === undefined) continue; // an extension handler, not one by magic bytes
    const mask = field('mask');
    out.push({
      name,
      enabled: text.startsWith('enabled'),
      interpreter: field('interpreter') ?? '',
      flags: field('flags:') ?? '',
      offset: Number(field('offset') ?? 0),
      magic: Buffer.from(magic, 'hex'),
      mask: mask !== undefined ? Buffer.from(mask, 'hex') : undefined,
    });
  }
  return out;
}

function matches(h: Handler, header: Buffer): boolean {
  if (h.offset + h.magic.length > header.length) return false;
  for (let i = 0; i < h.magic.length; i++) {
    const m = h.mask ? (h.mask[i] ?? 0xff) : 0xff;
    if (((header[h.offset + i] as number) & m) !== ((h.magic[i] as number) & m)) return false;
  }
  return true;
}

export type Emulation =
  | { type: 'native' }
  | { type: 'emulated'; handler: string; interpreter: string }
  /**
   * Cannot be told from here, so the RUN is tried: binfmt_misc is not mounted where gantry can
   * see it (inside a container, the host's handlers still run its binaries), or the host may
   * run them itself (32-bit arm on some arm64 CPUs). `hint` says how to register an emulator,
   * for the error an `exec format error` gets.
   */
  | { type: 'unseen'; hint: string };

/**
 * How this host runs binaries of `architecture`: natively, or through a registered binfmt_misc
 * handler. Fails, saying how to register one, when neither can: a RUN is never started for an
 * architecture it would fail on, or run as another.
 */
export function emulationFor(platform: string, hostArch: string, dir = BINFMT): Emulation {
  const [os, architecture = ''] = platform.split('/');
  if (os !== 'linux') throw new SandboxError('SANDBOX_EMULATOR', `RUN for ${platform}: gantry runs Linux programs only (a ${os} stage may COPY and set its config, not RUN)`);
  if (native(hostArch).includes(architecture)) return { type: 'native' };
  const header = elfHeader(architecture);
  const qemu = ELF[architecture]?.qemu;
  if (!header || !qemu) {
    throw new SandboxError('SANDBOX_EMULATOR', `RUN for ${platform}: gantry knows no emulator for ${architecture} binaries on this ${hostArch} host`);
  }
  const all = handlers(dir);
  const found = all.filter((h) => matches(h, header));
  const usable = found.find((h) => h.enabled && h.flags.includes('F'));
  if (usable) return { type: 'emulated', handler: usable.name, interpreter: usable.interpreter };
  const setup = `install Debian's qemu-user-static (apt-get install qemu-user-static), mount binfmt_misc if it is not (mount -t binfmt_misc binfmt_misc ${dir}) and register the handler (update-binfmts --enable qemu-${qemu})`;
  if (!mounted(dir)) return { type: 'unseen', hint: `RUN for ${platform} on this ${hostArch} host: binfmt_misc is not mounted at ${dir}, so gantry cannot see whether an emulator is registered; ${setup} (on the host, for a build in a container)` };
  if (found.length === 0 && hostArch === 'arm64' && architecture === 'arm') return { type: 'unseen', hint: `RUN for ${platform}: this arm64 host does not run 32-bit arm binaries itself and no emulator is registered; ${setup}` };
  const disabled = found.find((h) => !h.enabled);
  if (found.length > 0 && !disabled) {
    const h = found[0] as Handler;
    throw new SandboxError('SANDBOX_EMULATOR', `RUN for ${platform}: the binfmt_misc handler ${h.name} for ${architecture} binaries is registered without the F flag, so it cannot run inside the build's root filesystem; register it with F (Debian's qemu-user-static does): ${setup}`);
  }
  const why = disabled ? `its binfmt_misc handler ${disabled.name} is disabled` : `no binfmt_misc handler for ${architecture} binaries is registered`;
  throw new SandboxError('SANDBOX_EMULATOR', `RUN for ${platform} needs an emulator on this ${hostArch} host: ${why}; ${setup}`);
}

function mounted(dir: string): boolean {
  try {
    return readdirSync(dir).includes('register');
  } catch {
    return false;
  }
}
