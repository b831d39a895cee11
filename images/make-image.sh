#!/usr/bin/env bash
# Make a flashable disk image from an AtlasHub root file system (images/build-rootfs.sh), with no
# loop device and no mount: each file system is built in a file of its own and copied into place.
#
# Usage: images/make-image.sh ROOTFS OUT.img
#   ROOTFS  a directory made by images/build-rootfs.sh (left unchanged)
#   OUT     the image to write (replaced if it exists)
#   BOOT_TOML=FILE     also put FILE on the boot partition as atlashub.toml (a preconfigured card;
#                      otherwise copy atlashub.toml.example to atlashub.toml after flashing)
#   ROOT_MIB=N         size of the root partition (default: its contents + 25% + 256 MiB; first boot
#                      grows it to the whole card)
#   SOURCE_DATE_EPOCH  every time stamp and id in the image derives from it (default: the time of
#                      the last git commit). Same ROOTFS + same value = the same image, byte for byte.
#
# Layout (MBR: every Pi's boot ROM and bootloader reads it, the Pi 5 included; GPT would gain
# nothing here and the Pi 3 cannot boot from it):
#   sectors 0..8191          partition table, then free (4 MiB, SD erase-block aligned)
#   1: FAT32 "ATLASBOOT"     512 MiB, type 0c: ROOTFS/boot/firmware (Pi firmware, kernel, initramfs,
#                            config.txt, cmdline.txt) + atlashub.toml.example; mounted at /boot/firmware
#   2: ext4 "atlasroot"      type 83: ROOTFS, its /boot/firmware left empty (the mount point)
# Both are mounted by label (ROOTFS/etc/fstab, written by build-rootfs.sh; cmdline.txt root=LABEL=).
# On an amd64 ROOTFS (CI) there is no Pi firmware: the boot partition holds the config template and
# a cmdline.txt only, and the image is for checking the recipe, not for booting a PC.
#
# Not covered by the guarantee: the ROOTFS itself (debootstrap and apt write logs, caches and dates of
# the day they ran), and the versions of e2fsprogs, dosfstools and mtools, whose layouts may differ.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOTFS="${1:?usage: $0 ROOTFS OUT.img}"
OUT="${2:?usage: $0 ROOTFS OUT.img}"
BOOT_LABEL=ATLASBOOT
ROOT_LABEL=atlasroot
BOOT_START_MIB=4
BOOT_MIB=512
ROOT_START_MIB=$((BOOT_START_MIB + BOOT_MIB))
CMDLINE="root=LABEL=$ROOT_LABEL rootfstype=ext4 rw rootwait fsck.repair=yes net.ifnames=0"

say() { printf '==> %s\n' "$*" >&2; }
die() {
  echo "make-image: $*" >&2
  exit 1
}

[ "$(id -u)" = 0 ] || die "run as root: the tree holds files only root may read, owned by other users"
for tool in sfdisk mkfs.vfat mlabel mcopy mmd mkfs.ext4 debugfs e2fsck fsck.vfat dd sha256sum find; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install fdisk dosfstools mtools e2fsprogs"
done
if [ ! -d "$ROOTFS/etc" ] || [ ! -d "$ROOTFS/usr" ]; then die "$ROOTFS is not a root file system"; fi
grep -qE "^LABEL=${ROOT_LABEL}[[:space:]]+/[[:space:]]" "$ROOTFS/etc/fstab" 2>/dev/null ||
  die "$ROOTFS/etc/fstab does not mount LABEL=$ROOT_LABEL on / (make it with images/build-rootfs.sh)"
[ -z "${BOOT_TOML:-}" ] || [ -f "$BOOT_TOML" ] || die "BOOT_TOML=$BOOT_TOML: no such file"

if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH="$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)"
fi
[[ "$SOURCE_DATE_EPOCH" =~ ^[0-9]+$ ]] || die "SOURCE_DATE_EPOCH must be a number of seconds"
export SOURCE_DATE_EPOCH # mtools stamps what it writes with it
multiarch="$(find "$ROOTFS/usr/lib" -maxdepth 1 -name '*-linux-gnu*' -printf '%f\n' | LC_ALL=C sort | head -n 1)"

# id PURPOSE: 64 hex digits, a function of SOURCE_DATE_EPOCH, the architecture and PURPOSE only.
id() { printf 'atlashub-image %s %s %s' "$SOURCE_DATE_EPOCH" "$multiarch" "$1" | sha256sum | cut -c1-64; }
as_uuid() { printf '%s-%s-4%s-8%s-%s' "${1:0:8}" "${1:8:4}" "${1:13:3}" "${1:17:3}" "${1:20:12}"; }
disk_id="$(id disk | cut -c1-8)"
boot_serial="$(id boot | cut -c1-8)"
root_uuid="$(as_uuid "$(id root)")"
hash_seed="$(as_uuid "$(id root-hash-seed)")"

work="$(mktemp -d "$(dirname "$OUT")/.make-image.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- boot partition: FAT32 in a file, filled by mtools ------------------------------------------
say "boot partition ($BOOT_MIB MiB FAT32, $BOOT_LABEL, serial $boot_serial)"
stage="$work/boot"
mkdir "$stage"
if [ -d "$ROOTFS/boot/firmware" ]; then
  cp -a "$ROOTFS/boot/firmware/." "$stage/"
fi
# A boot file left in the tree (a booted test rootfs) must not reach the image; BOOT_TOML may.
rm -f "$stage/atlashub.toml" "$stage/atlashub.toml.applied"
[ -n "${BOOT_TOML:-}" ] && cp "$BOOT_TOML" "$stage/atlashub.toml"
[ -f "$stage/atlashub.toml.example" ] || cp "$ROOT/images/atlashub.toml.example" "$stage/"
if [ -f "$stage/cmdline.txt" ]; then
  grep -q "root=LABEL=$ROOT_LABEL\\b" "$stage/cmdline.txt" ||
    die "$ROOTFS/boot/firmware/cmdline.txt does not boot root=LABEL=$ROOT_LABEL: $(cat "$stage/cmdline.txt")"
else
  echo "$CMDLINE" >"$stage/cmdline.txt"
fi
truncate -s "${BOOT_MIB}M" "$work/boot.fat"
# --invariant: no random or clock-based value; the serial and label come from mlabel (stamped with
# SOURCE_DATE_EPOCH), since mkfs.vfat's own -i is overridden by --invariant.
mkfs.vfat -F 32 -h $((BOOT_START_MIB * 2048)) --invariant "$work/boot.fat" >/dev/null
mlabel -i "$work/boot.fat" -N "$boot_serial" "::$BOOT_LABEL"
# One entry at a time, in a fixed order: the short (8.3) names mtools makes depend on it.
while IFS= read -r -d '' rel; do
  if [ -d "$stage/$rel" ]; then
    mmd -i "$work/boot.fat" "::/$rel"
  else
    mcopy -i "$work/boot.fat" "$stage/$rel" "::/$rel"
  fi
done < <(cd "$stage" && find . -mindepth 1 \( -type d -o -type f \) -printf '%P\0' | LC_ALL=C sort -z)
fsck.vfat -n "$work/boot.fat" >/dev/null || die "the boot file system does not check clean"

# --- the disk: partition table on a sparse file, the boot file system copied in at its offset ---
used_mib="$(du -s -x --block-size=1M "$ROOTFS" | cut -f1)"
root_mib="${ROOT_MIB:-$(((used_mib + used_mib / 4 + 256 + 3) / 4 * 4))}"
total_mib=$((ROOT_START_MIB + root_mib))
say "disk image ($total_mib MiB, MBR disk id 0x$disk_id)"
truncate -s "${total_mib}M" "$work/disk.img"
sfdisk --quiet --no-reread --no-tell-kernel "$work/disk.img" <<EOF
label: dos
label-id: 0x$disk_id
unit: sectors

start=$((BOOT_START_MIB * 2048)), size=$((BOOT_MIB * 2048)), type=c, bootable
start=$((ROOT_START_MIB * 2048)), size=$((root_mib * 2048)), type=83
EOF
dd if="$work/boot.fat" of="$work/disk.img" bs=1M seek="$BOOT_START_MIB" conv=notrunc,sparse status=none

# --- root partition: ext4 populated from the directory, made in place ---------------------------
# mke2fs -E offset= writes straight into the partition's extent of the image (no copy of the
# largest part); debugfs and e2fsck reach it the same way, as FILE?offset=BYTES.
say "root partition ($root_mib MiB ext4, $ROOT_LABEL, UUID $root_uuid)"
root_offset=$((ROOT_START_MIB * 1024 * 1024))
root_dev="$work/disk.img?offset=$root_offset"
E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" mkfs.ext4 -q -F -L "$ROOT_LABEL" -U "$root_uuid" \
  -E "offset=$root_offset,hash_seed=$hash_seed,root_owner=0:0" -d "$ROOTFS" "$work/disk.img" "${root_mib}M"

# mkfs.ext4 -d copies atime and ctime from ROOTFS (the day it was built, and reading it changes
# atimes): set them to SOURCE_DATE_EPOCH, clamp newer mtimes to it, and empty /boot/firmware, which
# the boot partition covers once mounted.
{
  while IFS= read -r -d '' rel; do
    if [ -d "$ROOTFS/boot/firmware/$rel" ] && [ ! -L "$ROOTFS/boot/firmware/$rel" ]; then
      echo "rmdir \"/boot/firmware/${rel//\"/\"\"}\""
    else
      echo "rm \"/boot/firmware/${rel//\"/\"\"}\""
    fi
  done < <(cd "$ROOTFS/boot/firmware" 2>/dev/null && find . -mindepth 1 -depth -printf '%P\0')
  while IFS= read -r -d '' entry; do
    flag="${entry%% *}" rel="${entry#* }"
    case "/$rel/" in /boot/firmware/?*) continue ;; esac
    [[ "$rel" == *$'\n'* ]] && die "a file name with a newline: $rel"
    path="\"/${rel//\"/\"\"}\"" # debugfs quoting: "…", with "" for a quote
    printf 'sif %s atime @%s\nsif %s ctime @%s\nsif %s crtime @%s\n' \
      "$path" "$SOURCE_DATE_EPOCH" "$path" "$SOURCE_DATE_EPOCH" "$path" "$SOURCE_DATE_EPOCH"
    [ "$flag" = N ] && printf 'sif %s mtime @%s\n' "$path" "$SOURCE_DATE_EPOCH"
  done < <(
    cd "$ROOTFS"
    find . -mindepth 1 -newermt "@$SOURCE_DATE_EPOCH" -printf 'N %P\0'
    find . -mindepth 1 ! -newermt "@$SOURCE_DATE_EPOCH" -printf 'O %P\0'
    printf 'N \0' # the root directory
  )
  printf 'sif /lost+found atime @%s\nsif /lost+found ctime @%s\nsif /lost+found crtime @%s\n' \
    "$SOURCE_DATE_EPOCH" "$SOURCE_DATE_EPOCH" "$SOURCE_DATE_EPOCH"
} >"$work/normalize.debugfs"
E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" debugfs -w -f "$work/normalize.debugfs" "$root_dev" \
  >/dev/null 2>"$work/debugfs.err" || die "debugfs failed: $(cat "$work/debugfs.err")"
if grep -v '^debugfs [0-9]' "$work/debugfs.err" >&2; then
  die "debugfs reported errors while normalizing the root file system"
fi
E2FSPROGS_FAKE_TIME="$SOURCE_DATE_EPOCH" e2fsck -fn "$root_dev" >/dev/null 2>&1 ||
  die "the root file system does not check clean"

touch -d "@$SOURCE_DATE_EPOCH" "$work/disk.img"
mv -f "$work/disk.img" "$OUT"
say "image ready: $OUT"
