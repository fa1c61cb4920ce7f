#!/usr/bin/env bash
# hack/skopeo.sh — skopeo from Debian's packages, to inspect and copy the image hack/image.sh
# writes (tests/deploy_install.rs checks both outputs with it; the README pushes with it).
#
# Usage: hack/skopeo.sh     # idempotent; about 5 s the first time, instant when cached
#
# skopeo and the libraries Debian 12 does not ship by default (gpgme, assuan, gpg-error,
# devmapper) are unpacked, never installed, into ${TFJOB_CACHE_DIR:-~/.cache/tfjob-operator}/skopeo;
# bin/skopeo there is a wrapper that finds them and passes a policy accepting any image (a
# registry's signature policy is yours to set when you push for real). The last line of stdout
# is that wrapper.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HACK_SCRIPT_NAME=skopeo
# shellcheck source=hack/lib.sh
source "$ROOT/hack/lib.sh"

DIR="${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}/skopeo"
WRAPPER="$DIR/bin/skopeo"
if [[ -x $WRAPPER ]] && "$WRAPPER" --version >/dev/null 2>&1; then
    log "skopeo already unpacked in $DIR ($("$WRAPPER" --version))"
    echo "$WRAPPER"
    exit 0
fi

started=$(now_ms)
rm -rf "$DIR"
debian_unpack "$DIR/root" skopeo libgpgme11 libassuan0 libgpg-error0 libdevmapper1.02.1
mkdir -p "$DIR/bin"
printf '{"default": [{"type": "insecureAcceptAnything"}]}\n' >"$DIR/policy.json"
cat >"$WRAPPER" <<WRAP
#!/bin/sh
# skopeo unpacked by hack/skopeo.sh, with its libraries and a permissive policy.
LD_LIBRARY_PATH="$DIR/root/lib/x86_64-linux-gnu:$DIR/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" \\
    exec "$DIR/root/usr/bin/skopeo" --policy "$DIR/policy.json" "\$@"
WRAP
chmod +x "$WRAPPER"
"$WRAPPER" --version >/dev/null 2>&1 ||
    die "the unpacked skopeo does not run (a library missing?)." "Run: $WRAPPER --version"
log "$("$WRAPPER" --version) unpacked into $DIR in $(elapsed_since "$started")"
echo "$WRAPPER"
