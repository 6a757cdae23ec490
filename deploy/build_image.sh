#!/usr/bin/env bash
# Build the agent image for CORE I/O and pack it into a Spot Extension. Needs Docker with
# buildx (and QEMU binfmt to build arm64 on an x86 machine:
#   docker run --rm --privileged multiarch/qemu-user-static --reset -p yes).
#
#   deploy/build_image.sh [--arch arm64|amd64] [--version X.Y.Z] [--out FILE.spx]
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
arch=arm64
version=""
out="build/spot-cue-agent.spx"  # the file name is the extension name on older CORE I/O software
while [[ $# -gt 0 ]]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --version) version="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--arch arm64|amd64] [--version X.Y.Z] [--out FILE.spx]" >&2; exit 2 ;;
  esac
done
if [[ -z "$version" ]]; then
  version="$(python3 -c 'import json; print(json.load(open("deploy/manifest.json"))["version"])')"
fi
image="spot-cue-agent:${version}"
tarball="build/spot-cue-agent-${version}-${arch}.tar"
mkdir -p build

docker buildx build --platform "linux/${arch}" -f deploy/Dockerfile -t "$image" \
  --output "type=docker,dest=${tarball}" .

spot-agent package "$tarball" --arch "$arch" --version "$version" --out "$out"
