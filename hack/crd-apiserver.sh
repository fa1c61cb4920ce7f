#!/usr/bin/env bash
# hack/crd-apiserver.sh — a current (1.36) Kubernetes API server for custom resources, for the
# tests of the TFJob CRD on the Kubernetes users run today (the full control plane of
# hack/control-plane.sh is 1.20, the newest one that can be built here).
#
# It is upstream's k8s.io/apiextensions-apiserver v1.36.4 — the part of kube-apiserver that
# serves CRDs and custom resources — built from Debian sid's golang-*-dev packages with sid's
# Go 1.26, in front of trixie's etcd 3.5, under a small wrapper of ours
# (hack/crd-apiserver/main.go). It has no core API (no namespaces, pods, RBAC, webhooks): it
# serves CRDs, their objects, list/watch, server-side apply, CEL rules, pruning, defaulting.
# docs/local-control-plane.md has the details and the limits.
#
# Usage:
#   hack/crd-apiserver.sh install                 # download (~262 MB), unpack, build; cached
#   hack/crd-apiserver.sh start [--dir DIR] [--owner-pid PID]
#   hack/crd-apiserver.sh stop DIR
#
# Nothing is installed into the system: the packages come through a private apt configuration
# (its own sources list for trixie and sid, its own lists and cache) under the cache directory
# and are unpacked with dpkg-deb -x. hack/crd-apiserver/packages.lock pins the exact versions
# the tests last passed with; a version sid has since replaced is taken at its current version
# (with a warning), since deb.debian.org keeps only the newest. The downloaded .debs stay in
# the cache, so a machine that built once never depends on sid again.
#
# `start` prints progress on stderr and the state directory as the last line of stdout. DIR
# holds kubeconfig (client-certificate auth as system:masters), env, pids, etcd.log,
# apiserver.log and pki/.
#
# Environment: TFJOB_CACHE_DIR (default ~/.cache/tfjob-operator).
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HACK_DIR/$(basename "${BASH_SOURCE[0]}")"
HACK_SCRIPT_NAME=crd-apiserver
# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"
# shellcheck source=hack/processes.sh
source "$HACK_DIR/processes.sh"

VERSION=1.36.4
CACHE_DIR=${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}
HOME_DIR="$CACHE_DIR/crd-apiserver-$VERSION"
APT_DIR="$HOME_DIR/apt"
DEB_DIR="$HOME_DIR/debs"
ROOT_DIR="$HOME_DIR/root"
BIN_DIR="$HOME_DIR/bin"
LOCK_FILE="$HACK_DIR/crd-apiserver/packages.lock"
WRAPPER_SRC="$HACK_DIR/crd-apiserver/main.go"
STATE_MARKER=.tfjob-crd-apiserver
# What the build needs besides the library closure: sid's Go 1.26 and trixie's etcd.
TOOLCHAIN=(golang-1.26-go/sid golang-1.26-src/sid etcd-server/trixie)
TOP_PACKAGE=golang-k8s-apiextensions-apiserver-dev
PORT_MIN=32001
PORT_MAX=40000

usage() {
    sed -n '/^# Usage:/,/^# Nothing/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

# apt with a private configuration: nothing of the system's apt state is read or written
# except the keyring that verifies the archive.
private_apt() {
    local tool=$1
    shift
    "$tool" -o Dir::Etc::SourceList="$APT_DIR/sources.list" \
        -o Dir::Etc::SourceParts="$APT_DIR/sources.list.d" \
        -o Dir::Etc::Preferences="$APT_DIR/preferences" \
        -o Dir::Etc::PreferencesParts="$APT_DIR/preferences.d" \
        -o Dir::State::Lists="$APT_DIR/lists" \
        -o Dir::State::Status="$APT_DIR/status" \
        -o Dir::Cache="$APT_DIR/cache" \
        -o APT::Default-Release=sid \
        -o Debug::NoLocking=1 \
        "$@"
}

prepare_apt() {
    mkdir -p "$APT_DIR"/{sources.list.d,preferences.d,lists/partial,cache/archives/partial}
    : >"$APT_DIR/status"
    : >"$APT_DIR/preferences"
    cat >"$APT_DIR/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
    log "reading the package lists of Debian sid and trixie (private apt configuration in $APT_DIR)"
    private_apt apt-get -q update >"$APT_DIR/update.log" 2>&1 || {
        tail_file "$APT_DIR/update.log" 20
        die "apt-get update of sid and trixie failed." \
            "Check access to deb.debian.org and that /usr/share/keyrings/debian-archive-keyring.gpg knows trixie's keys (apt-get install debian-archive-keyring)."
    }
}

# The golang-*-dev closure of the apiextensions apiserver, as `name=version` lines (sid's
# candidates, read with one `apt-cache policy` for all: one call per package took minutes).
resolve_closure() {
    local names
    mapfile -t names < <(private_apt apt-cache depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends "$TOP_PACKAGE" |
        grep -E '^golang-[^ <>]*-dev$' | sort -u)
    ((${#names[@]})) || return 0
    private_apt apt-cache policy "${names[@]}" |
        awk '/^[^ ].*:$/ { name = substr($0, 1, length($0) - 1) }
             /^  Candidate:/ { print name "=" $2 }' | sort
}

# name=version for each wanted package: the lock's version when the mirror still has it.
choose_versions() {
    local current=$1 name version locked
    while IFS='=' read -r name version; do
        locked=$(grep -E "^${name}=" "$LOCK_FILE" 2>/dev/null | head -n1 | cut -d= -f2- || true)
        if [[ -n $locked && $locked != "$version" ]]; then
            if private_apt apt-cache show "$name=$locked" >/dev/null 2>&1; then
                version=$locked
            else
                warn "$name $locked (packages.lock) is gone from sid; taking $version"
            fi
        fi
        printf '%s=%s\n' "$name" "$version"
    done <"$current"
}

download_and_unpack() {
    local wanted=$1 count
    mkdir -p "$DEB_DIR"
    count=$(wc -l <"$wanted")
    log "downloading $count Debian packages (~262 MB the first time) into $DEB_DIR"
    local missing=()
    while IFS='=' read -r name version; do
        compgen -G "$DEB_DIR/${name}_${version//:/%3a}_*.deb" >/dev/null || missing+=("$name=$version")
    done <"$wanted"
    for tool in "${TOOLCHAIN[@]}"; do
        compgen -G "$DEB_DIR/${tool%%/*}_*.deb" >/dev/null || missing+=("$tool")
    done
    if ((${#missing[@]})); then
        (cd "$DEB_DIR" && private_apt apt-get download -q "${missing[@]}" >"$APT_DIR/download.log" 2>&1) || {
            tail_file "$APT_DIR/download.log" 20
            die "apt-get download failed (a package missing from sid mid-transition?)." \
                "Run again later, or pin older versions in $LOCK_FILE."
        }
    fi
    log "unpacking into $ROOT_DIR (about 2.2 GB)"
    rm -rf "$ROOT_DIR"
    mkdir -p "$ROOT_DIR"
    local deb
    for deb in "$DEB_DIR"/*.deb; do
        dpkg-deb -x "$deb" "$ROOT_DIR"
    done
}

build_server() {
    local goroot="$ROOT_DIR/usr/lib/go-1.26" gopath="$HOME_DIR/gopath"
    [[ -x $goroot/bin/go ]] || die "Go 1.26 is missing from $goroot after unpacking."
    rm -rf "$gopath"
    mkdir -p "$gopath/src/tfjob-operator.dev/crd-apiserver" "$BIN_DIR"
    cp "$WRAPPER_SRC" "$gopath/src/tfjob-operator.dev/crd-apiserver/main.go"
    log "building apiextensions-apiserver $VERSION with Go 1.26 in GOPATH mode (about 3 minutes cold)"
    local started
    started=$(now_ms)
    (
        export GO111MODULE=off GOTOOLCHAIN=local GOPROXY=off GOFLAGS=-mod=mod CGO_ENABLED=0
        export GOROOT="$goroot" GOPATH="$gopath:$ROOT_DIR/usr/share/gocode"
        export GOCACHE="$HOME_DIR/go-build"
        unset GOFLAGS
        nice "$goroot/bin/go" build -trimpath \
            -ldflags "-X k8s.io/component-base/version.gitVersion=v$VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36" \
            -o "$BIN_DIR/apiextensions-apiserver" tfjob-operator.dev/crd-apiserver
    ) >"$HOME_DIR/build.log" 2>&1 || {
        tail_file "$HOME_DIR/build.log" 40
        die "building the apiextensions apiserver failed." "See $HOME_DIR/build.log."
    }
    cp "$ROOT_DIR/usr/bin/etcd" "$BIN_DIR/etcd"
    log "built in $(elapsed_since "$started"): $BIN_DIR/apiextensions-apiserver ($(du -h "$BIN_DIR/apiextensions-apiserver" | cut -f1))"
}

cmd_install() {
    # Built, and from this wrapper (a changed wrapper is rebuilt; the packages are kept).
    if [[ -x $BIN_DIR/apiextensions-apiserver && -x $BIN_DIR/etcd && -f $BIN_DIR/.wrapper.sha256 ]] &&
        [[ $(cat "$BIN_DIR/.wrapper.sha256") == "$(sha256sum "$WRAPPER_SRC" | cut -d' ' -f1)" ]]; then
        log "apiextensions-apiserver $VERSION already built in $BIN_DIR"
        return 0
    fi
    for cmd in apt-get apt-cache dpkg-deb sha256sum; do
        require_cmd "$cmd" "this script runs on Debian (12); install '$cmd'."
    done
    local started current wanted
    started=$(now_ms)
    mkdir -p "$HOME_DIR"
    if [[ ! -d $ROOT_DIR/usr/share/gocode/src/k8s.io/apiextensions-apiserver ]]; then
        prepare_apt
        current="$HOME_DIR/closure.current"
        wanted="$HOME_DIR/closure.wanted"
        resolve_closure >"$current"
        [[ -s $current ]] || die "apt found no $TOP_PACKAGE closure in sid."
        choose_versions "$current" >"$wanted"
        download_and_unpack "$wanted"
        cp "$wanted" "$HOME_DIR/packages.used"
    fi
    build_server
    sha256sum "$WRAPPER_SRC" | cut -d' ' -f1 >"$BIN_DIR/.wrapper.sha256"
    log "installed in $(elapsed_since "$started")"
}

# generate_pki DIR — a CA, the server's certificate for 127.0.0.1 and an admin client
# certificate in group system:masters (the only authentication this server has: client
# certificates; its delegating authorizer always allows that group).
generate_pki() {
    local pki=$1/pki
    mkdir -p "$pki"
    (
        cd "$pki"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
            -subj "/CN=tfjob-crd-apiserver-ca"
        openssl req -newkey rsa:2048 -nodes -keyout serving.key -out serving.csr -subj "/CN=127.0.0.1"
        printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >serving.ext
        openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile serving.ext -out serving.crt
        openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin"
        printf 'extendedKeyUsage=clientAuth\n' >admin.ext
        openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
            -extfile admin.ext -out admin.crt
    ) >"$1/pki.log" 2>&1 || {
        tail_file "$1/pki.log" 20
        die "openssl could not make the certificates."
    }
}

# write_kubeconfig FILE SERVER — a kubeconfig for SERVER as the admin client certificate.
write_kubeconfig() {
    local file=$1 server=$2 pki=$CP_DIR/pki
    cat >"$file" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
  - name: crd-apiserver
    cluster:
      server: $server
      certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
  - name: admin
    user:
      client-certificate-data: $(base64 -w0 "$pki/admin.crt")
      client-key-data: $(base64 -w0 "$pki/admin.key")
contexts:
  - name: crd-apiserver
    context: {cluster: crd-apiserver, user: admin}
current-context: crd-apiserver
KUBECONFIG
}

cmd_start() {
    local owner=""
    CP_DIR=""
    while (($#)); do
        case $1 in
            --dir) CP_DIR=${2:?--dir needs a directory} && shift ;;
            --owner-pid) owner=${2:?--owner-pid needs a PID} && shift ;;
            *) usage ;;
        esac
        shift
    done
    [[ -x $BIN_DIR/apiextensions-apiserver && -x $BIN_DIR/etcd ]] ||
        die "the 1.36 CRD apiserver is not built." "Build it once (about 5 minutes): $SELF install"
    require_cmd openssl "install openssl (apt-get install openssl)."
    require_cmd curl "install curl (apt-get install curl)."
    if [[ -z $CP_DIR ]]; then
        CP_DIR=$(mktemp -d /tmp/tfjob-crd-apiserver.XXXXXX)
    else
        mkdir -p "$CP_DIR"
    fi
    CP_DIR=$(cd "$CP_DIR" && pwd)
    touch "$CP_DIR/$STATE_MARKER"
    local started
    started=$(now_ms)
    generate_pki "$CP_DIR"
    if [[ -n $owner ]]; then start_watchdog "$owner"; fi

    local ports etcd_port peer_port metrics_port api_port
    mapfile -t ports < <(pick_free_ports 4)
    etcd_port=${ports[0]} peer_port=${ports[1]} metrics_port=${ports[2]} api_port=${ports[3]}
    spawn etcd "$CP_DIR/etcd.log" "$BIN_DIR/etcd" --name crd --data-dir "$CP_DIR/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
        --initial-cluster "crd=http://127.0.0.1:$peer_port" --listen-metrics-urls "http://127.0.0.1:$metrics_port"
    local etcd_pid=$SPAWNED_PID
    wait_until 30 "$etcd_pid" "$CP_DIR/etcd.log" curl -sf "http://127.0.0.1:$etcd_port/health" || {
        tail_file "$CP_DIR/etcd.log"
        die "etcd did not start."
    }

    # The server insists on a kubeconfig of a "core" apiserver (TokenReview, SubjectAccessReview,
    # informers); it starts without reaching it, so this one points where nothing listens.
    write_kubeconfig "$CP_DIR/nowhere.kubeconfig" "https://127.0.0.1:1"
    spawn apiserver "$CP_DIR/apiserver.log" "$BIN_DIR/apiextensions-apiserver" \
        --etcd-servers "http://127.0.0.1:$etcd_port" \
        --bind-address 127.0.0.1 --secure-port "$api_port" \
        --tls-cert-file "$CP_DIR/pki/serving.crt" --tls-private-key-file "$CP_DIR/pki/serving.key" \
        --client-ca-file "$CP_DIR/pki/ca.crt" \
        --authentication-skip-lookup \
        --authentication-kubeconfig "$CP_DIR/nowhere.kubeconfig" \
        --authorization-kubeconfig "$CP_DIR/nowhere.kubeconfig" \
        --kubeconfig "$CP_DIR/nowhere.kubeconfig" \
        --disable-admission-plugins NamespaceLifecycle,MutatingAdmissionPolicy,MutatingAdmissionWebhook,ValidatingAdmissionPolicy,ValidatingAdmissionWebhook \
        --enable-priority-and-fairness=false
    local api_pid=$SPAWNED_PID
    write_kubeconfig "$CP_DIR/kubeconfig" "https://127.0.0.1:$api_port"
    printf 'export KUBECONFIG=%q\n' "$CP_DIR/kubeconfig" >"$CP_DIR/env"
    # /readyz waits for a Service informer that has no core API behind it; ask for the API.
    wait_until 60 "$api_pid" "$CP_DIR/apiserver.log" curl -sf --cacert "$CP_DIR/pki/ca.crt" \
        --cert "$CP_DIR/pki/admin.crt" --key "$CP_DIR/pki/admin.key" \
        "https://127.0.0.1:$api_port/apis/apiextensions.k8s.io/v1" || {
        tail_file "$CP_DIR/apiserver.log"
        die "the CRD apiserver did not start."
    }
    log "CRD apiserver $VERSION up in $(elapsed_since "$started"): https://127.0.0.1:$api_port (state: $CP_DIR)"
    echo "$CP_DIR"
}

main() {
    local command=${1:-}
    shift || true
    case $command in
        install) cmd_install "$@" ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        -h | --help | help) usage 0 ;;
        *) usage 2 ;;
    esac
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    main "$@"
fi
