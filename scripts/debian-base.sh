#!/usr/bin/env bash
# Make (once) the Debian base the tests build FROM: `debootstrap --variant=minbase` of bookworm
# against the Debian mirror, apt's caches and lists removed, as an uncompressed tarball with
# numeric owners. Cached; prints the tarball's path. Needs root and debootstrap.
#   GANTRY_TEST_CACHE      where to keep it (default: $XDG_CACHE_HOME/gantry-tests or ~/.cache/gantry-tests)
#   GANTRY_DEBIAN_MIRROR   the mirror (default: http://deb.debian.org/debian)
#   GANTRY_DEBIAN_SUITE    the suite (default: bookworm)
#   GANTRY_DEBIAN_ARCH     a Debian architecture other than the host's (arm64): debootstrap runs its
#                          second stage through qemu-user-static, which must be registered with binfmt_misc
set -euo pipefail
cache=${GANTRY_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gantry-tests}
suite=${GANTRY_DEBIAN_SUITE:-bookworm}
mirror=${GANTRY_DEBIAN_MIRROR:-http://deb.debian.org/debian}
arch=${GANTRY_DEBIAN_ARCH:-}
out=$cache/debian-$suite${arch:+-$arch}-minbase.tar
mkdir -p "$cache"
exec 9>"$cache/.debian-$suite${arch:+-$arch}.lock"
flock 9 # one maker at a time; the others wait, then find it made
if [ ! -s "$out" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  work=$(mktemp -d "$cache/debian-$suite.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  if ! debootstrap ${arch:+--arch "$arch"} --variant=minbase "$suite" "$work/root" "$mirror" >"$work/log" 2>&1; then
    tail -20 "$work/log" >&2
    exit 1
  fi
  rm -rf "$work/root/var/cache/apt/"*.bin "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/var/log/"*.log
  tar -cf "$work/debian.tar" --numeric-owner -C "$work/root" .
  mv "$work/debian.tar" "$out"
fi
echo "$out"
