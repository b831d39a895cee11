#!/usr/bin/env bash
# Build the AtlasHub appliance root file system: Debian bookworm + the atlashub .deb + first boot.
#
# Usage: images/build-rootfs.sh ARCH OUT
#   ARCH  amd64 (CI boots it under systemd-nspawn) or arm64 (the Raspberry Pi image; on an arm64
#         host, or on amd64 with qemu-user-static + binfmt-support installed)
#   OUT   the rootfs directory to create (must not exist)
#   DEB=dist/atlashub_<v>_<ARCH>.deb  the package to preinstall (default: the newest in dist/)
#   BASE=DIR   start from a copy of an existing debootstrap tree of the same suite and ARCH
#              (the tests reuse their cached one) instead of running debootstrap
#   MIRROR=http://deb.debian.org/debian
#
# Same recipe for both architectures; arm64 adds the Pi kernel and firmware. Make the .img from an
# arm64 rootfs with images/make-image.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ARCH="${1:?usage: $0 ARCH OUT}"
OUT="${2:?usage: $0 ARCH OUT}"
SUITE=bookworm
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
DEB="${DEB:-$(find "$ROOT/dist" -maxdepth 1 -name "atlashub_*_${ARCH}.deb" 2>/dev/null | sort -V | tail -n 1)}"
# Everything the .deb depends on, plus what the appliance needs around it.
PACKAGES=(systemd systemd-sysv dbus postgresql wireguard-tools curl sqlite3 ca-certificates procps iproute2
  openssh-server ufw systemd-timesyncd sudo)
PI_PACKAGES=(linux-image-arm64 raspi-firmware firmware-brcm80211 systemd-resolved)

say() { printf '==> %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap, chroot)" >&2; exit 1; }
[ -e "$OUT" ] && { echo "$OUT exists" >&2; exit 1; }
[ -f "$DEB" ] || { echo "no atlashub .deb for $ARCH (set DEB=; build with packaging/build.sh)" >&2; exit 1; }
case "$ARCH" in amd64 | arm64) ;; *) echo "ARCH must be amd64 or arm64" >&2; exit 2 ;; esac

in_root() { chroot "$OUT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

if [ -n "${BASE:-}" ]; then
  say "copying $BASE"
  cp -a --reflink=auto "$BASE" "$OUT"
  rm -f "$OUT/.complete"
else
  say "debootstrap $SUITE $ARCH"
  debootstrap --arch="$ARCH" --variant=minbase --components=main,non-free-firmware \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" "$SUITE" "$OUT" "$MIRROR" >/dev/null
fi

cleanup() {
  for fs in dev/pts proc sys; do umount "$OUT/$fs" 2>/dev/null || true; done
  rm -f "$OUT/usr/sbin/policy-rc.d"
}
trap cleanup EXIT
mount -t proc proc "$OUT/proc"
mount -t sysfs sys "$OUT/sys"
mount --bind /dev/pts "$OUT/dev/pts"
# Nothing starts inside the build chroot.
printf '#!/bin/sh\nexit 101\n' >"$OUT/usr/sbin/policy-rc.d"
chmod 0755 "$OUT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$OUT/etc/resolv.conf"
printf 'deb %s %s main non-free-firmware\ndeb %s %s-updates main non-free-firmware\n' \
  "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$OUT/etc/apt/sources.list"

extra=("${PACKAGES[@]}")
[ "$ARCH" = arm64 ] && extra+=("${PI_PACKAGES[@]}")
missing=()
for pkg in "${extra[@]}"; do
  # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
  in_root dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

say "installing $(basename "$DEB")"
cp "$DEB" "$OUT/tmp/atlashub.deb"
in_root apt-get install -y -qq /tmp/atlashub.deb >/dev/null
rm -f "$OUT/tmp/atlashub.deb"

say "first boot"
install -m 0755 "$ROOT/images/firstboot/atlashub-firstboot" "$OUT/usr/libexec/atlashub/atlashub-firstboot"
install -m 0644 "$ROOT/images/firstboot/atlashub-firstboot.service" "$ROOT/images/firstboot/atlashub-firstboot-join.service" \
  "$OUT/lib/systemd/system/"
in_root systemctl enable atlashub-firstboot.service atlashub-firstboot-join.service ssh.service systemd-timesyncd.service >/dev/null 2>&1
install -d -m 0755 "$OUT/boot/firmware"
install -m 0644 "$ROOT/images/atlashub.toml.example" "$OUT/boot/firmware/atlashub.toml.example"

say "making the image anonymous: no keys, identity or machine id of the build machine"
# The postinst ran `atlashub init` here: those keys would be shared by every card. First boot makes new ones.
find "$OUT/var/lib/atlashub" -mindepth 1 -delete
rm -f "$OUT"/etc/ssh/ssh_host_*
: >"$OUT/etc/machine-id"
rm -f "$OUT/var/lib/dbus/machine-id"
echo atlashub >"$OUT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tatlashub\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$OUT/etc/hosts"
: >"$OUT/etc/resolv.conf"
in_root passwd -l root >/dev/null
in_root apt-get clean
rm -rf "$OUT"/var/lib/apt/lists/* "$OUT"/var/log/*.log "$OUT"/tmp/*
say "rootfs ready in $OUT"
