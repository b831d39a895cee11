#!/usr/bin/env bash
# Create an AtlasHub repository signing key in a fresh GnuPG home, for tests and trial repositories.
# Release keys are made once, offline, and kept off build machines; this script is not for them.
#
# Usage: packaging/apt/make-key.sh GPG_HOME [NAME_EMAIL]
# Prints the key's fingerprint (pass it to build-repo.sh as KEY_ID) and writes the public keyring
# GPG_HOME/atlashub-archive-keyring.gpg (binary, what apt's Signed-By wants).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: $0 GPG_HOME [NAME_EMAIL]" >&2; exit 2; }
GNUPGHOME="$1"
UID_TEXT="${2:-AtlasHub test archive key <test-archive@atlashub.invalid>}"
export GNUPGHOME
install -d -m 0700 "$GNUPGHOME"

# No passphrase: the key signs unattended in CI. Ed25519 is accepted by apt's gpgv on bookworm.
gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
  --quick-generate-key "$UID_TEXT" ed25519 sign 1y 2>/dev/null
fingerprint="$(gpg --batch --with-colons --list-secret-keys "$UID_TEXT" | awk -F: '$1 == "fpr" { print $10; exit }')"
gpg --batch --export "$fingerprint" >"$GNUPGHOME/atlashub-archive-keyring.gpg"
echo "$fingerprint"
