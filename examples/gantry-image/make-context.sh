#!/bin/sh
# Make the build context of examples/gantry-image in DIR (default: ./gantry-image-context):
# the Node binary on PATH and gantry's bundled command (run `npm ci` first).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
project=$(cd "$here/../.." && pwd)
out=${1:-./gantry-image-context}
[ -f "$project/dist/cli.cjs" ] || { echo "make-context.sh: run npm ci first (dist/cli.cjs is missing)" >&2; exit 1; }
mkdir -p "$out/gantry"
cp "$here/Dockerfile" "$out/Dockerfile"
cp "$(readlink -f "$(command -v node)")" "$out/node"
cp -R "$project/bin" "$project/dist" "$project/package.json" "$out/gantry/"
echo "$out"
