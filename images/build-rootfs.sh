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
# Same recipe for both architectures; arm64 adds the Pi kernel and firmware. Make the .img from it
# with images/make-image.sh (images/build-pi-image.sh does both).
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
PI_PACKAGES=(linux-image-arm64 raspi-firmware firmware-brcm80211 systemd-resolved fdisk)
# The partitions of images/make-image.sh, mounted by label.
BOOT_LABEL=ATLASBOOT
ROOT_LABEL=atlasroot

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
cp --remove-destination /etc/resolv.conf "$OUT/etc/resolv.conf"
printf 'deb %s %s main non-free-firmware\ndeb %s %s-updates main non-free-firmware\n' \
  "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" >"$OUT/etc/apt/sources.list"

# raspi-firmware's kernel hook writes the kernel, initramfs, device trees, config.txt and cmdline.txt
# here, the future boot partition; it fails when the directory is missing.
install -d -m 0755 "$OUT/boot/firmware"
extra=("${PACKAGES[@]}")
[ "$ARCH" = arm64 ] && extra+=("${PI_PACKAGES[@]}")
missing=()
for pkg in "${extra[@]}"; do
  # shellcheck disable=SC2016 # dpkg-query's format, not a shell expansion
  in_root dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "$ARCH" = arm64 ] && [ ! -f "$OUT/etc/default/raspi-firmware" ]; then
  # Before raspi-firmware is installed (kept over the packaged file: --force-confold), so that its
  # hook boots the root partition by label. Its other settings keep their defaults.
  printf '# Written by images/build-rootfs.sh.\nROOTPART=LABEL=%s\n' "$ROOT_LABEL" >"$OUT/etc/default/raspi-firmware"
fi
if [ "${#missing[@]}" -gt 0 ]; then
  say "apt-get install ${missing[*]}"
  in_root apt-get update -qq
  in_root apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

if [ "$ARCH" = arm64 ]; then
  say "Pi boot files in /boot/firmware (root=LABEL=$ROOT_LABEL)"
  # Written by raspi-firmware's hook (above, and again on every kernel upgrade) from ROOTPART.
  sed -i -E "s#root=[^ ]+#root=LABEL=$ROOT_LABEL#" "$OUT/boot/firmware/cmdline.txt"
  for dtb in "$OUT"/usr/lib/linux-image-*-arm64/broadcom/bcm*rpi*.dtb; do
    [ -f "$OUT/boot/firmware/$(basename "$dtb")" ] || install -m 0644 "$dtb" "$OUT/boot/firmware/"
  done
  for f in config.txt cmdline.txt; do
    [ -s "$OUT/boot/firmware/$f" ] || { echo "raspi-firmware wrote no /boot/firmware/$f" >&2; exit 1; }
  done
fi

say "installing $(basename "$DEB")"
cp "$DEB" "$OUT/tmp/atlashub.deb"
in_root apt-get install -y -qq /tmp/atlashub.deb >/dev/null
rm -f "$OUT/tmp/atlashub.deb"

say "first boot"
install -m 0755 "$ROOT/images/firstboot/atlashub-firstboot" "$OUT/usr/libexec/atlashub/atlashub-firstboot"
install -m 0644 "$ROOT/images/firstboot/atlashub-firstboot.service" "$ROOT/images/firstboot/atlashub-firstboot-join.service" \
  "$OUT/lib/systemd/system/"
install -m 0755 "$ROOT/images/firstboot/atlashub-growroot" "$OUT/usr/libexec/atlashub/atlashub-growroot"
install -m 0644 "$ROOT/images/firstboot/atlashub-growroot.service" "$OUT/lib/systemd/system/"
in_root systemctl enable atlashub-firstboot.service atlashub-firstboot-join.service atlashub-growroot.service \
  ssh.service systemd-timesyncd.service >/dev/null 2>&1
# Mounted by label; a container ignores these device entries (the tests boot this tree in nspawn).
# umask=0077: the boot file may carry a setup code or join token until first boot consumes it.
cat >"$OUT/etc/fstab" <<FSTAB
# Written by images/build-rootfs.sh: the partitions of images/make-image.sh.
LABEL=$ROOT_LABEL	/	ext4	rw,noatime,errors=remount-ro	0	1
LABEL=$BOOT_LABEL	/boot/firmware	vfat	rw,noatime,umask=0077	0	2
FSTAB
install -m 0644 "$ROOT/images/atlashub.toml.example" "$OUT/boot/firmware/atlashub.toml.example"

say "making the image anonymous: no keys, identity or machine id of the build machine"
# The postinst ran `atlashub init` here: those keys would be shared by every card. First boot makes new ones.
find "$OUT/var/lib/atlashub" -mindepth 1 -delete
rm -f "$OUT"/etc/ssh/ssh_host_*
: >"$OUT/etc/machine-id"
rm -f "$OUT/var/lib/dbus/machine-id"
echo atlashub >"$OUT/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tatlashub\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$OUT/etc/hosts"
# The build machine's resolvers; on the Pi, systemd-resolved made it a link to its stub: keep that.
[ -L "$OUT/etc/resolv.conf" ] || : >"$OUT/etc/resolv.conf"
in_root passwd -l root >/dev/null
in_root apt-get clean
rm -rf "$OUT"/var/lib/apt/lists/* "$OUT"/var/log/*.log "$OUT"/tmp/* "$OUT"/boot/*.dpkg-bak
say "rootfs ready in $OUT"
