#!/usr/bin/env bash
# Build the flashable AtlasHub image in one go: images/build-rootfs.sh, then images/make-image.sh.
#
# Usage: images/build-pi-image.sh OUT.img [ARCH]
#   ARCH  arm64 (default: the Raspberry Pi image; on an arm64 host, or on amd64 with
#         qemu-user-static + binfmt-support) or amd64 (what CI checks)
#   DEB=, BASE=, MIRROR= as for build-rootfs.sh; BOOT_TOML=, ROOT_MIB=, SOURCE_DATE_EPOCH= as for
#   make-image.sh. KEEP_ROOTFS=1 keeps the root file system next to the image (OUT.rootfs).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:?usage: $0 OUT.img [ARCH]}"
ARCH="${2:-arm64}"
rootfs="$OUT.rootfs"
[ -e "$rootfs" ] && { echo "$rootfs exists: remove it first" >&2; exit 1; }
[ "${KEEP_ROOTFS:-0}" = 1 ] || trap 'rm -rf "$rootfs"' EXIT
"$HERE/build-rootfs.sh" "$ARCH" "$rootfs"
"$HERE/make-image.sh" "$rootfs" "$OUT"
