#!/usr/bin/env bash
# Build a signed apt repository of AtlasHub packages (flat pool, one suite "stable", component "main").
#
# Usage: packaging/apt/build-repo.sh OUT_DIR GPG_HOME KEY_ID PACKAGE.deb...
#   OUT_DIR   the repository's root, served as is over HTTP(S); existing pool files are kept, so
#             older releases stay installable (the upgrade script's rollback needs them)
#   GPG_HOME  GnuPG home holding the secret signing key
#   KEY_ID    fingerprint of that key (make-key.sh prints one)
#   SUITE=stable CODENAME=stable ORIGIN=AtlasHub ARCHES="amd64 arm64"   overridable
#
# Layout: pool/main/a/atlashub/*.deb, dists/$SUITE/{InRelease,Release,Release.gpg},
# dists/$SUITE/main/binary-{amd64,arm64}/Packages{,.gz,.xz}, and atlashub-archive-keyring.gpg
# (the public key, for /etc/apt/keyrings/) at the top.
set -euo pipefail

if [ $# -lt 4 ]; then
  echo "usage: $0 OUT_DIR GPG_HOME KEY_ID PACKAGE.deb..." >&2
  exit 2
fi
OUT="$1"
export GNUPGHOME="$2"
KEY_ID="$3"
shift 3
SUITE="${SUITE:-stable}"
CODENAME="${CODENAME:-$SUITE}"
ORIGIN="${ORIGIN:-AtlasHub}"
ARCHES="${ARCHES:-amd64 arm64}"
COMPONENT=main

command -v apt-ftparchive >/dev/null || { echo "apt-ftparchive is missing: apt-get install apt-utils" >&2; exit 1; }
command -v gpg >/dev/null || { echo "gpg is missing: apt-get install gnupg" >&2; exit 1; }

pool="$OUT/pool/$COMPONENT/a/atlashub"
mkdir -p "$pool"
for deb in "$@"; do
  name="$(dpkg-deb -f "$deb" Package)"
  [ "$name" = atlashub ] || { echo "$deb: package $name is not atlashub" >&2; exit 1; }
  install -m 0644 "$deb" "$pool/$(basename "$deb")"
done

cd "$OUT"
for arch in $ARCHES; do
  dir="dists/$SUITE/$COMPONENT/binary-$arch"
  mkdir -p "$dir"
  # "all" packages belong to every architecture's index.
  apt-ftparchive --arch "$arch" packages "pool/$COMPONENT" >"$dir/Packages"
  gzip -9nkf "$dir/Packages"
  xz -kf "$dir/Packages"
  printf 'Archive: %s\nOrigin: %s\nLabel: %s\nComponent: %s\nArchitecture: %s\n' \
    "$SUITE" "$ORIGIN" "$ORIGIN" "$COMPONENT" "$arch" >"$dir/Release"
done

release="dists/$SUITE/Release"
rm -f "$release" "dists/$SUITE/InRelease" "dists/$SUITE/Release.gpg"
apt-ftparchive \
  -o "APT::FTPArchive::Release::Origin=$ORIGIN" \
  -o "APT::FTPArchive::Release::Label=$ORIGIN" \
  -o "APT::FTPArchive::Release::Suite=$SUITE" \
  -o "APT::FTPArchive::Release::Codename=$CODENAME" \
  -o "APT::FTPArchive::Release::Architectures=$ARCHES" \
  -o "APT::FTPArchive::Release::Components=$COMPONENT" \
  -o "APT::FTPArchive::Release::Description=AtlasHub packages" \
  -o "APT::FTPArchive::Release::Acquire-By-Hash=no" \
  release "dists/$SUITE" >"$release.tmp"
mv "$release.tmp" "$release"

sign=(gpg --batch --quiet --yes --pinentry-mode loopback --passphrase "${GPG_PASSPHRASE:-}" --local-user "$KEY_ID" --digest-algo SHA512)
"${sign[@]}" --clearsign --output "dists/$SUITE/InRelease" "$release"
"${sign[@]}" --armor --detach-sign --output "dists/$SUITE/Release.gpg" "$release"
gpg --batch --export "$KEY_ID" >atlashub-archive-keyring.gpg
gpg --batch --armor --export "$KEY_ID" >atlashub-archive-keyring.asc

echo "signed repository in $OUT (suite $SUITE, $(find pool -name '*.deb' | wc -l) package(s), key $KEY_ID)" >&2
