#!/usr/bin/env bash
# hack/image.sh — builds the operator's container image without a container engine.
#
#   hack/image.sh            # → target/image/oci (OCI image layout) and
#                            #   target/image/tfjob-operator.tar (`docker load`-able)
#
# What is in it, and why (the same as the Dockerfile's distroless image):
#   - the runtime the binary links against, taken from Debian 12's own packages: the packages
#     that own what `ldd` lists (libc6, libgcc-s1) at the exact versions the binary was built
#     against, plus ca-certificates; unpacked with dpkg-deb, never installed, no maintainer
#     scripts run;
#   - the release binary at /usr/local/bin/tfjob-operator and at /manager (upstream's entry
#     point, so a training-operator Deployment's `command: [/manager]` keeps working);
#   - /etc/passwd and /etc/group with the nonroot user and group 65532, /tmp (1777);
#   - no shell and no package manager.
# The OCI layout itself (deterministic tar layers, config, manifest, index, docker archive)
# is written by hack/image/oci.py. Push it with skopeo, e.g.
#   skopeo copy oci:target/image/oci:0.1.0 docker://registry.example.com/tfjob-operator:0.1.0
#
# Environment: TFJOB_IMAGE_OUT (default target/image), TFJOB_CACHE_DIR (default
# ~/.cache/tfjob-operator; the .deb files are kept there), TFJOB_IMAGE_SKIP_BUILD=1 to use
# the release binary already in target/release.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source hack/lib.sh

started=$(now_ms)
out=${TFJOB_IMAGE_OUT:-target/image}
cache=${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}/image-debs
binary=target/release/tfjob-operator

for cmd in cargo dpkg-deb dpkg-query apt-get ldd python3 git; do
    require_cmd "$cmd" "this script runs on Debian (12) with the Rust toolchain; install '$cmd' and run it again."
done

if [[ ${TFJOB_IMAGE_SKIP_BUILD:-} != 1 ]]; then
    log "building the release binary (cargo build --release --locked; ~7 minutes cold: fat LTO, see Cargo.toml)"
    cargo build --release --locked --bin tfjob-operator ||
        die "the release build failed (above)." "Fix the build and run this again."
fi
[[ -x $binary ]] || die "$binary is missing." "Build it: cargo build --release --locked --bin tfjob-operator"

# The packages that own the binary's shared libraries, at the installed (= built-against)
# versions, so the image's glibc is the one the binary was linked with.
mapfile -t libraries < <(ldd "$binary" | awk '/=>/ {print $3} !/=>/ && $1 ~ /^\// {print $1}' | sort -u)
((${#libraries[@]})) || die "ldd lists no libraries for $binary; is it dynamically linked?"
declare -A packages=()
for library in "${libraries[@]}"; do
    real=$(readlink -f "$library")
    owner=$(dpkg-query -S "$library" 2>/dev/null || dpkg-query -S "$real" 2>/dev/null || true)
    owner=${owner%%:*}
    [[ -n $owner ]] || die "no Debian package owns $library (needed by $binary)." \
        "Build on Debian 12 with the toolchain's libraries from Debian packages."
    packages[$owner]=$(dpkg-query -W -f='${Version}' "$owner")
done
# CA certificates: the candidate version of the host's apt sources.
packages[ca-certificates]=$(apt-cache policy ca-certificates | awk '/Candidate:/ {print $2}')
[[ -n ${packages[ca-certificates]} && ${packages[ca-certificates]} != "(none)" ]] ||
    die "apt knows no ca-certificates package." "Run apt-get update and run this again."

mkdir -p "$cache"
debs=()
for package in $(printf '%s\n' "${!packages[@]}" | sort); do
    version=${packages[$package]}
    deb=$(find "$cache" -maxdepth 1 -name "${package}_${version//:/%3a}_*.deb" -print -quit)
    if [[ -z $deb ]]; then
        log "downloading ${package} ${version} (apt-get download, into $cache)"
        (cd "$cache" && apt-get download -q "${package}=${version}" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) ||
            die "apt-get download ${package}=${version} failed." \
                "Check access to the Debian mirror (apt-get update) and run this again."
        deb=$(find "$cache" -maxdepth 1 -name "${package}_${version//:/%3a}_*.deb" -print -quit)
        [[ -n $deb ]] || die "apt-get download left no .deb for ${package} ${version} in $cache."
    fi
    debs+=("$deb")
done
log "runtime packages: $(for p in $(printf '%s\n' "${!packages[@]}" | sort); do printf '%s=%s ' "$p" "${packages[$p]}"; done)"

# The base layer's root: the packages' files, without documentation other than the licences.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base=$work/base
mkdir -p "$base"
for deb in "${debs[@]}"; do
    dpkg-deb -x "$deb" "$base"
done
rm -rf "$base"/usr/share/{man,info,lintian,locale,bug} "$base"/usr/share/doc/*/{changelog,NEWS,README}*
# What update-ca-certificates would write: every certificate the package ships, in one bundle.
mkdir -p "$base/etc/ssl/certs"
find "$base/usr/share/ca-certificates" -name '*.crt' -print0 | sort -z | xargs -0 cat >"$base/etc/ssl/certs/ca-certificates.crt"
rm -rf "$base/usr/sbin" # update-ca-certificates (a shell script; nothing here could run it)
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$base/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$base/etc/group"
mkdir -p "$base/tmp" "$base/home/nonroot"
chmod 1777 "$base/tmp"

# The application layer: the binary, twice (hard link: stored once).
app=$work/app
mkdir -p "$app/usr/local/bin"
cp "$binary" "$app/usr/local/bin/tfjob-operator"
ln "$app/usr/local/bin/tfjob-operator" "$app/manager"

version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
source_url=$(awk -F'"' '/^repository *=/ {print $2; exit}' Cargo.toml)
licence=$(awk -F'"' '/^license *=/ {print $2; exit}' Cargo.toml)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
# Reproducible: every timestamp is the commit's.
epoch=$(git log -1 --format=%ct 2>/dev/null || echo 0)
python3 hack/image/oci.py \
    --base "$base" --app "$app" --out "$out" \
    --name tfjob-operator --version "$version" --revision "$revision" \
    --source "$source_url" --licenses "$licence" --epoch "$epoch" \
    --packages "$(for p in $(printf '%s\n' "${!packages[@]}" | sort); do printf '%s=%s,' "$p" "${packages[$p]}"; done)"
log "image written in $(elapsed_since "$started"): $out/oci (tag $version) and $out/tfjob-operator.tar"
