# Shared by scripts/dev and scripts/test: install what is missing, never what is there.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local extras="$1"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv in .venv"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.installed-$extras"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing Python packages ($extras)"
    "$VENV/bin/pip" install -q --upgrade pip
    if [ "$extras" = "runtime" ]; then
      "$VENV/bin/pip" install -q -e "$ROOT"
    else
      "$VENV/bin/pip" install -q -e "${ROOT}[${extras}]"
    fi
    touch "$stamp"
  fi
}

ensure_node() {
  if ! command -v npm >/dev/null 2>&1; then
    ensure_apt nodejs npm
  fi
}

build_web() {
  ensure_node
  local web="$ROOT/web"
  [ -f "$web/package.json" ] || return 0
  if [ ! -d "$web/node_modules" ] || [ "$web/package-lock.json" -nt "$web/node_modules/.package-lock.json" ]; then
    say "installing the dashboard's npm packages"
    # `npm ci` insists on every optional platform binary of the lock file being resolvable
    # (rollup's android/darwin builds); `npm install` honours the lock and skips unresolvable
    # optional packages, which is what a Linux build needs.
    (cd "$web" && npm install --no-audit --no-fund --loglevel=error)
  fi
  local newest
  newest=$(find "$web/src" "$web/index.html" "$web/package.json" -newer "$web/dist/index.html" -print -quit 2>/dev/null || echo rebuild)
  if [ ! -f "$web/dist/index.html" ] || [ -n "$newest" ]; then
    say "building the dashboard"
    (cd "$web" && npm run --silent build)
  fi
}
