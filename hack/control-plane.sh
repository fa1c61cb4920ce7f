#!/usr/bin/env bash
# hack/control-plane.sh — a real, local, kubelet-less Kubernetes control plane for tests, demos and
# benchmarks: etcd + kube-apiserver + kube-controller-manager on free loopback ports.
#
# Kubernetes 1.20.2 is the newest kube-apiserver that can be had on a machine whose only network
# access is the package registries: it is built from Debian's `kubernetes` source package
# (docs/local-control-plane.md says why and what was verified). On a machine
# that already has envtest-style binaries, point KUBEBUILDER_ASSETS at them and nothing is built.
#
# Usage:
#   hack/control-plane.sh install
#   hack/control-plane.sh start [--dir DIR] [--audit] [--audit-policy FILE] [--extra-tokens FILE]
#                               [--kcm-controllers LIST] [--kcm-qps N] [--kcm-burst N]
#                               [--owner-pid PID]
#   hack/control-plane.sh restart-apiserver DIR
#   hack/control-plane.sh stop DIR
#   hack/control-plane.sh status DIR
#   hack/control-plane.sh kubeconfig DIR
#
# `start` picks free loopback ports, prints progress on stderr and the state directory DIR as the
# last line of stdout (default DIR: a new /tmp/tfjob-cp.XXXXXX). DIR holds: kubeconfig (admin
# token, private CA), token, env (`source DIR/env` sets KUBECONFIG), pids, etcd.log,
# apiserver.log, kcm.log, tokens.csv, pki/, and with --audit audit.log (Metadata level for writes
# to pods, services, tfjobs and events; --audit-policy FILE uses that policy instead, and implies
# --audit). The audit log is never rotated. --extra-tokens appends token-file lines such as
#   TOKEN,system:serviceaccount:NS:SA,UID,"system:serviceaccounts,system:serviceaccounts:NS"
# kube-controller-manager runs `garbagecollector,namespace,clusterrole-aggregation` (the last
# fills the built-in view/edit/admin roles from labelled ClusterRoles, as in every real
# cluster) unless --kcm-controllers says
# otherwise (e.g. `garbagecollector,namespace,job`); --kcm-qps/--kcm-burst default to 20/30.
# --owner-pid PID stops everything once PID exits. `stop` kills by recorded PID only.
# `restart-apiserver` stops kube-apiserver and starts it again with the same flags and port (its
# watch caches start empty, so clients resuming an older watch get 410 Gone and re-list).
#
# Environment:
#   KUBEBUILDER_ASSETS  folder with kube-apiserver and etcd (optionally kube-controller-manager);
#                       when set and complete, `install` builds nothing and `start` uses them.
#   TFJOB_CACHE_DIR     where built binaries and the Go build cache live
#                       (default: ~/.cache/tfjob-operator).
#   KEEP_CP=1           `stop` leaves the state directory (logs, audit log) in place.
set -euo pipefail

HACK_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HACK_DIR/$(basename "${BASH_SOURCE[0]}")"
HACK_SCRIPT_NAME=control-plane
# shellcheck source=hack/lib.sh
source "$HACK_DIR/lib.sh"
# shellcheck source=hack/processes.sh
source "$HACK_DIR/processes.sh"

K8S_VERSION=1.20.2
CACHE_DIR=${TFJOB_CACHE_DIR:-$HOME/.cache/tfjob-operator}
K8S_DIR="$CACHE_DIR/k8s-$K8S_VERSION"
BIN_DIR="$K8S_DIR/bin"
GO_CACHE_DIR="$CACHE_DIR/go-build"
# Marker file that identifies a state directory as ours, so `stop` never removes anything else.
STATE_MARKER=.tfjob-control-plane

APT_PACKAGES=(etcd-server golang-go rsync openssl curl make dpkg-dev golang-github-modern-go-reflect2-dev)
REFLECT2_DEBIAN_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2

# usage [EXIT_CODE] — the header's usage text; 0 when asked for, 2 after a wrong invocation.
usage() {
    sed -n '/^# Usage:/,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2
    exit "${1:-2}"
}

# ---------------------------------------------------------------------------------------------
# Binaries
# ---------------------------------------------------------------------------------------------

# Sets APISERVER_BIN, ETCD_BIN and KCM_BIN (KCM_BIN may be empty when KUBEBUILDER_ASSETS has no
# kube-controller-manager). Returns 1 when the binaries are not there yet.
resolve_binaries() {
    if [[ -n ${KUBEBUILDER_ASSETS:-} && -x $KUBEBUILDER_ASSETS/kube-apiserver && -x $KUBEBUILDER_ASSETS/etcd ]]; then
        APISERVER_BIN="$KUBEBUILDER_ASSETS/kube-apiserver"
        ETCD_BIN="$KUBEBUILDER_ASSETS/etcd"
        KCM_BIN=""
        if [[ -x $KUBEBUILDER_ASSETS/kube-controller-manager ]]; then
            KCM_BIN="$KUBEBUILDER_ASSETS/kube-controller-manager"
        fi
        return 0
    fi
    APISERVER_BIN="$BIN_DIR/kube-apiserver"
    KCM_BIN="$BIN_DIR/kube-controller-manager"
    ETCD_BIN=$(command -v etcd || true)
    [[ -x $APISERVER_BIN && -x $KCM_BIN && -n $ETCD_BIN ]]
}

missing_apt_packages() {
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

ensure_apt_packages() {
    local missing
    mapfile -t missing < <(missing_apt_packages)
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || die "missing Debian packages: ${missing[*]}" \
        "Install them as root: sudo apt-get install -y --no-install-recommends ${missing[*]}"
    log "installing Debian packages: ${missing[*]}"
    # Only refresh the package lists when the install cannot find something in the current ones.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; then
        log "install failed with the current package lists; running apt-get update and retrying"
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
            die "apt-get install ${missing[*]} failed (see the output above)." \
                "Fix the apt configuration, then run: $SELF install"
    fi
}

# Prints a deb822 `deb-src` stanza for bookworm derived from the machine's own `deb` entry, so it
# uses the same mirror and keyring.
derive_deb_src_stanza() {
    local f stanza
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # The first stanza that is a `deb` entry with the bare `bookworm` suite.
        stanza=$(awk '
            function flush() {
                if (!found && types ~ /(^| )deb( |$)/ && (" " suites " ") ~ / bookworm /) {
                    printf "Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: %s\n", uris, comps
                    if (signed != "") printf "Signed-By: %s\n", signed
                    found = 1
                }
                types = uris = suites = comps = signed = ""
            }
            /^[[:space:]]*$/ { flush(); next }
            /^#/ { next }
            /^Types:/      { sub(/^Types:[[:space:]]*/, "");      types = $0 }
            /^URIs:/       { sub(/^URIs:[[:space:]]*/, "");       uris = $0 }
            /^Suites:/     { sub(/^Suites:[[:space:]]*/, "");     suites = $0 }
            /^Components:/ { sub(/^Components:[[:space:]]*/, ""); comps = $0 }
            /^Signed-By:/  { sub(/^Signed-By:[[:space:]]*/, "");  signed = $0 }
            END { flush() }
        ' "$f")
        if [[ -n $stanza ]]; then
            printf '%s\n' "$stanza"
            return 0
        fi
    done
}

ensure_kubernetes_source_available() {
    if apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes'; then
        return 0
    fi
    local target=/etc/apt/sources.list.d/tfjob-operator-deb-src.sources stanza
    stanza=$(derive_deb_src_stanza)
    if [[ -z $stanza ]]; then
        # Legacy one-line format: reuse the first `deb ... bookworm ...` line as a `deb-src` line.
        local line
        line=$(grep -hE '^deb[[:space:]].*[[:space:]]bookworm[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -n 1 || true)
        [[ -n $line ]] || die "found no Debian bookworm 'deb' entry in /etc/apt to derive a 'deb-src' entry from." \
            "Add a deb-src entry for bookworm main yourself, run apt-get update, then: $SELF install"
        target=/etc/apt/sources.list.d/tfjob-operator-deb-src.list
        stanza="deb-src${line#deb}"
    fi
    log "adding a bookworm deb-src entry ($target) so the Kubernetes source package can be fetched"
    printf '# Added by tfjob-operator hack/control-plane.sh to fetch the kubernetes source package.\n%s\n' "$stanza" >"$target"
    log "running apt-get update"
    apt-get update -q >&2
    apt-cache showsrc kubernetes 2>/dev/null | grep -q '^Package: kubernetes' ||
        die "apt still has no source for 'kubernetes' after adding $target." \
            "Check that file against your mirror, run apt-get update, then: $SELF install"
}

# Downloads Debian's kubernetes source package into $K8S_DIR/src-pkg (once) and prints the path of
# its orig tarball.
download_kubernetes_source() {
    local pkg_dir="$K8S_DIR/src-pkg" orig
    mkdir -p "$pkg_dir"
    orig=$(compgen -G "$pkg_dir/kubernetes_*.orig.tar.*" | head -n 1 || true)
    if [[ -z $orig ]]; then
        ensure_kubernetes_source_available
        log "downloading Debian's kubernetes source package into $pkg_dir"
        (cd "$pkg_dir" && apt-get source -q --download-only kubernetes >&2) ||
            die "apt-get source --download-only kubernetes failed (see above)." \
                "Check network access to the Debian mirror, then: $SELF install"
        orig=$(compgen -G "$pkg_dir/kubernetes_*.orig.tar.*" | head -n 1 || true)
        [[ -n $orig ]] || die "the source package has no orig tarball in $pkg_dir." "Remove $pkg_dir and re-run: $SELF install"
    fi
    printf '%s\n' "$orig"
}

# Runs a long command in the background, printing a progress line every 15 s; on failure prints the
# log tail and dies.
run_with_progress() {
    local what=$1 logfile=$2
    shift 2
    local start pid rc=0 next=15
    start=$(now_ms)
    log "$what (log: $logfile)"
    "$@" >"$logfile" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        sleep 1
        if (($(now_ms) - start >= next * 1000)); then
            log "  ... still $what: $(elapsed_since "$start") elapsed, last log line: $(tail -n 1 "$logfile" 2>/dev/null | cut -c1-120)"
            next=$((next + 15))
        fi
    done
    wait "$pid" || rc=$?
    if ((rc != 0)); then
        tail_file "$logfile" 40
        die "$what failed (exit $rc); full log: $logfile" \
            "Fix the cause shown above, then re-run: $SELF install"
    fi
    log "$what: done in $(elapsed_since "$start")"
}

build_kubernetes() {
    local orig=$1 build_root="$K8S_DIR/build" src
    src="$build_root/kubernetes"
    rm -rf "$build_root"
    mkdir -p "$src" "$GO_CACHE_DIR"
    run_with_progress "unpacking $(basename "$orig")" "$K8S_DIR/unpack.log" \
        tar -xf "$orig" -C "$src" --strip-components=1

    # Mandatory: reflect2 1.0.1 (vendored) corrupts maps under Go >= 1.18 and the apiserver dies
    # with `fatal error: fault` within minutes. Debian's 1.0.2 copy is API-compatible.
    [[ -d $REFLECT2_DEBIAN_SRC ]] || die "$REFLECT2_DEBIAN_SRC is missing." \
        "Install it: apt-get install -y --no-install-recommends golang-github-modern-go-reflect2-dev"
    log "patching vendor/github.com/modern-go/reflect2 with Debian's reflect2 1.0.2"
    rm -rf "$src/vendor/github.com/modern-go/reflect2"
    cp -rL "$REFLECT2_DEBIAN_SRC" "$src/vendor/github.com/modern-go/reflect2"
    rm -f "$src/vendor/github.com/modern-go/reflect2/go.mod" "$src/vendor/github.com/modern-go/reflect2/go.sum"

    # Upstream's recipe as debian/rules uses it: a GOPATH whose k8s.io/kubernetes is the tree itself.
    mkdir -p "$src/.go/src/k8s.io"
    ln -sfn "$src" "$src/.go/src/k8s.io/kubernetes"
    # hack/lib/golang.sh forces GOCACHE=_output/local/go/cache inside the tree, which is deleted
    # after the build; point that path at the persistent cache so a rebuild is warm.
    mkdir -p "$src/_output/local/go"
    ln -sfn "$GO_CACHE_DIR" "$src/_output/local/go/cache"
    log "building takes about 4 minutes cold on 2 cores (more if the machine is busy), about 1.5 with a warm Go cache"
    run_with_progress "building kube-apiserver and kube-controller-manager $K8S_VERSION" \
        "$K8S_DIR/build.log" \
        env -C "$src/.go/src/k8s.io/kubernetes" \
        GOPATH="$src/.go" GOCACHE="$GO_CACHE_DIR" GO111MODULE=on GOFLAGS=-mod=vendor GOPROXY=off CGO_ENABLED=0 \
        KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean KUBE_GIT_COMMIT=debian-src \
        make WHAT="cmd/kube-apiserver cmd/kube-controller-manager"

    local tmp_bin="$BIN_DIR.tmp"
    rm -rf "$tmp_bin"
    mkdir -p "$tmp_bin"
    cp "$src/_output/bin/kube-apiserver" "$src/_output/bin/kube-controller-manager" "$tmp_bin/"
    rm -rf "$BIN_DIR"
    mv "$tmp_bin" "$BIN_DIR"
    # The tree is ~1 GB once built; the Go build cache alone makes a rebuild fast.
    rm -rf "$build_root"
}

cmd_install() {
    (($# == 0)) || usage
    if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
        if resolve_binaries; then
            log "using binaries from KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS; nothing to build"
            [[ -n $KCM_BIN ]] || warn "no kube-controller-manager in KUBEBUILDER_ASSETS: garbage collection and namespace deletion will not run"
            return 0
        fi
        warn "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS lacks kube-apiserver or etcd; building Kubernetes $K8S_VERSION instead"
    fi
    if resolve_binaries && [[ -z $(missing_apt_packages) ]]; then
        log "already installed: $BIN_DIR (etcd: $ETCD_BIN)"
        return 0
    fi
    local start
    start=$(now_ms)
    ensure_apt_packages
    if [[ -x $BIN_DIR/kube-apiserver && -x $BIN_DIR/kube-controller-manager ]]; then
        log "Kubernetes binaries already cached in $BIN_DIR"
    else
        mkdir -p "$K8S_DIR"
        build_kubernetes "$(download_kubernetes_source)"
    fi
    resolve_binaries || die "installation finished but the binaries are still missing." "Inspect $K8S_DIR and re-run: $SELF install"
    log "installed in $(elapsed_since "$start"): $APISERVER_BIN, $KCM_BIN, $ETCD_BIN"
}

# ---------------------------------------------------------------------------------------------
# Running the control plane
# ---------------------------------------------------------------------------------------------

# Ports below the kernel's ephemeral range (usually 32768+), so client sockets of this machine never
# sit on them; collisions with other listeners are handled by retrying with new ports.
PORT_MIN=20000
PORT_MAX=32000

generate_pki() {
    local pki="$CP_DIR/pki"
    mkdir -p "$pki"
    # A private CA and a serving certificate for 127.0.0.1/localhost: clients verify TLS properly
    # instead of skipping verification. EC keys are fast to make; the service-account key is RSA
    # as kube-apiserver 1.20 expects.
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki/ca.key" 2>/dev/null
    openssl req -x509 -new -key "$pki/ca.key" -sha256 -days 3650 -subj "/CN=tfjob-operator-local-ca" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$pki/ca.crt" 2>/dev/null
    openssl ecparam -name prime256v1 -genkey -noout -out "$pki/apiserver.key" 2>/dev/null
    openssl req -new -key "$pki/apiserver.key" -subj "/CN=kube-apiserver" -out "$pki/apiserver.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc" \
        >"$pki/apiserver.ext"
    openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
        -sha256 -days 3650 -extfile "$pki/apiserver.ext" -out "$pki/apiserver.crt" 2>/dev/null
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

write_audit_policy() {
    if [[ -n ${AUDIT_POLICY:-} ]]; then
        cp "$AUDIT_POLICY" "$CP_DIR/audit-policy.yaml"
        return 0
    fi
    # Metadata (no bodies) for the writes that matter when proving that nothing was created twice.
    cat >"$CP_DIR/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "delete", "deletecollection", "patch", "update"]
    resources:
      - group: ""
        resources: ["pods", "services", "events"]
      - group: "events.k8s.io"
        resources: ["events"]
      - group: "kubeflow.org"
        resources: ["tfjobs"]
  - level: None
YAML
}

write_kubeconfig() {
    local port=$1 token=$2
    cat >"$CP_DIR/kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
  - name: tfjob-local
    cluster:
      server: https://127.0.0.1:$port
      certificate-authority-data: $(base64 -w0 "$CP_DIR/pki/ca.crt")
users:
  - name: admin
    user:
      token: $token
contexts:
  - name: tfjob-local
    context:
      cluster: tfjob-local
      user: admin
current-context: tfjob-local
YAML
    chmod 600 "$CP_DIR/kubeconfig"
    printf 'export KUBECONFIG=%q\nexport TFJOB_TEST_CONTROL_PLANE=%q\n' "$CP_DIR/kubeconfig" "$CP_DIR" >"$CP_DIR/env"
}

start_etcd() {
    local attempt rc ports
    for attempt in 1 2 3 4 5; do
        mapfile -t ports < <(pick_free_ports 2)
        ETCD_PORT=${ports[0]}
        rm -rf "$CP_DIR/etcd"
        log "starting etcd on 127.0.0.1:$ETCD_PORT"
        spawn etcd "$CP_DIR/etcd.log" "$ETCD_BIN" --name tfjob-local --data-dir "$CP_DIR/etcd" \
            --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
            --listen-peer-urls "http://127.0.0.1:${ports[1]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${ports[1]}" \
            --initial-cluster "tfjob-local=http://127.0.0.1:${ports[1]}"
        rc=0
        wait_until 20 "$SPAWNED_PID" "$CP_DIR/etcd.log" curl -fsS "http://127.0.0.1:$ETCD_PORT/health" || rc=$?
        case $rc in
        0) return 0 ;;
        2) warn "etcd: port taken (attempt $attempt), retrying with other ports" ;;
        *)
            tail_file "$CP_DIR/etcd.log"
            die "etcd did not become healthy (see its log above: $CP_DIR/etcd.log)." \
                "Check that $ETCD_BIN runs (\`$ETCD_BIN --version\`) and that $CP_DIR is writable."
            ;;
        esac
    done
    die "etcd: could not find a free port pair after 5 attempts." "Free some ports in $PORT_MIN-$PORT_MAX and retry."
}

start_apiserver() {
    local audit=$1 attempt rc start
    local audit_flags=()
    if [[ $audit == 1 ]]; then
        write_audit_policy
        # maxsize: the default (100 MB) rotates the file under a benchmark's reader.
        audit_flags=(--audit-policy-file "$CP_DIR/audit-policy.yaml" --audit-log-path "$CP_DIR/audit.log"
            --audit-log-format json --audit-log-maxsize 100000)
    fi
    for attempt in 1 2 3 4 5; do
        API_PORT=$(pick_free_ports 1)
        log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
        start=$(now_ms)
        spawn kube-apiserver "$CP_DIR/apiserver.log" "$APISERVER_BIN" \
            --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
            --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$API_PORT" --insecure-port 0 \
            --cert-dir "$CP_DIR/pki" --tls-cert-file "$CP_DIR/pki/apiserver.crt" \
            --tls-private-key-file "$CP_DIR/pki/apiserver.key" \
            --service-account-issuer https://kubernetes.default.svc \
            --service-account-key-file "$CP_DIR/pki/sa.pub" \
            --service-account-signing-key-file "$CP_DIR/pki/sa.key" \
            --service-cluster-ip-range 10.0.0.0/24 \
            --authorization-mode RBAC --token-auth-file "$CP_DIR/tokens.csv" \
            --disable-admission-plugins ServiceAccount \
            --endpoint-reconciler-type none \
            "${audit_flags[@]}"
        write_kubeconfig "$API_PORT" "$TOKEN"
        rc=0
        # With tens of thousands of objects in etcd, filling the watch caches takes a while.
    wait_until 180 "$SPAWNED_PID" "$CP_DIR/apiserver.log" \
            curl -fsS --cacert "$CP_DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" \
            "https://127.0.0.1:$API_PORT/readyz" || rc=$?
        case $rc in
        0)
            log "kube-apiserver ready after $(elapsed_since "$start")"
            return 0
            ;;
        2)
            warn "kube-apiserver: port $API_PORT taken (attempt $attempt), retrying with another port"
            sed -i "/^kube-apiserver $SPAWNED_PID\$/d" "$CP_DIR/pids"
            ;;
        3)
            tail_file "$CP_DIR/apiserver.log"
            die "kube-apiserver did not answer /readyz within 60 s (log above: $CP_DIR/apiserver.log)." \
                "On a busy machine, retry; otherwise look for the first error in that log."
            ;;
        *)
            tail_file "$CP_DIR/apiserver.log"
            die "kube-apiserver exited during start-up (log above: $CP_DIR/apiserver.log)." \
                "Check that $APISERVER_BIN runs; if the cached build is broken, rebuild it: rm -rf $BIN_DIR && $SELF install"
            ;;
        esac
    done
    die "kube-apiserver: could not find a free port after 5 attempts." "Free some ports in $PORT_MIN-$PORT_MAX and retry."
}

start_controller_manager() {
    local controllers=$1 qps=$2 burst=$3
    if [[ -z $KCM_BIN ]]; then
        warn "no kube-controller-manager binary: garbage collection and namespace deletion will not run"
        return 0
    fi
    log "starting kube-controller-manager (controllers: $controllers, qps $qps, burst $burst)"
    # --secure-port=0/--port=0: no serving endpoints, so nothing to collide on.
    spawn kube-controller-manager "$CP_DIR/kcm.log" "$KCM_BIN" \
        --kubeconfig "$CP_DIR/kubeconfig" --leader-elect=false --use-service-account-credentials=false \
        --bind-address 127.0.0.1 --secure-port 0 --port 0 \
        --controllers "$controllers" --kube-api-qps "$qps" --kube-api-burst "$burst"
    sleep 0.3
    if ! kill -0 "$SPAWNED_PID" 2>/dev/null; then
        tail_file "$CP_DIR/kcm.log"
        die "kube-controller-manager exited at start (log above: $CP_DIR/kcm.log)." \
            "Check the --kcm-controllers value ('$controllers') against the controller names in that log."
    fi
}

cmd_start() {
    local dir="" audit=0 extra_tokens="" controllers="garbagecollector,namespace,clusterrole-aggregation" qps=20 burst=30 owner=""
    while (($#)); do
        case $1 in
        --dir) dir=${2:?--dir needs a value} && shift ;;
        --audit) audit=1 ;;
        --audit-policy) AUDIT_POLICY=${2:?--audit-policy needs a file} && audit=1 && shift ;;
        --extra-tokens) extra_tokens=${2:?--extra-tokens needs a file} && shift ;;
        --kcm-controllers) controllers=${2:?--kcm-controllers needs a list} && shift ;;
        --kcm-qps) qps=${2:?--kcm-qps needs a number} && shift ;;
        --kcm-burst) burst=${2:?--kcm-burst needs a number} && shift ;;
        --owner-pid) owner=${2:?--owner-pid needs a PID} && shift ;;
        *) die "start: unknown argument '$1'." "Run: $SELF --help" ;;
        esac
        shift
    done
    [[ $qps =~ ^[0-9]+$ && $burst =~ ^[0-9]+$ ]] || die "--kcm-qps and --kcm-burst take whole numbers."
    [[ -z $owner || $owner =~ ^[0-9]+$ ]] || die "--owner-pid takes a process id."
    [[ -z $extra_tokens || -r $extra_tokens ]] || die "--extra-tokens $extra_tokens: file not readable."
    [[ -z ${AUDIT_POLICY:-} || -r $AUDIT_POLICY ]] || die "--audit-policy $AUDIT_POLICY: file not readable."
    resolve_binaries || die "Kubernetes binaries not found (looked in ${KUBEBUILDER_ASSETS:+KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS and }$BIN_DIR)." \
        "Build them once (about 4 minutes): $SELF install"
    require_cmd openssl "Install it: apt-get install -y openssl"
    require_cmd curl "Install it: apt-get install -y curl"

    if [[ -z $dir ]]; then
        dir=$(mktemp -d /tmp/tfjob-cp.XXXXXX)
    else
        mkdir -p "$dir"
        dir=$(cd "$dir" && pwd)
        if [[ -f $dir/pids ]] && any_running "$dir"; then
            die "a control plane is already running in $dir." "Stop it first: $SELF stop $dir"
        fi
        rm -f "$dir/pids"
    fi
    CP_DIR=$dir
    touch "$CP_DIR/$STATE_MARKER"

    # Any failure from here on stops whatever was already started.
    trap 'rc=$?; if ((rc != 0)); then warn "start failed; stopping what was started"; KEEP_CP=1 cmd_stop "$CP_DIR" >/dev/null || true; fi' EXIT

    local start
    start=$(now_ms)
    log "state directory: $CP_DIR"
    generate_pki
    TOKEN=$(openssl rand -hex 24)
    printf '%s\n' "$TOKEN" >"$CP_DIR/token"
    chmod 600 "$CP_DIR/token"
    printf '%s,admin,admin,system:masters\n' "$TOKEN" >"$CP_DIR/tokens.csv"
    if [[ -n $extra_tokens ]]; then
        # Test identities, e.g. tok,system:serviceaccount:ns:sa,uid,"system:serviceaccounts,system:serviceaccounts:ns"
        grep -v '^[[:space:]]*\(#\|$\)' "$extra_tokens" >>"$CP_DIR/tokens.csv" || true
    fi
    chmod 600 "$CP_DIR/tokens.csv"

    start_etcd
    start_apiserver "$audit"
    start_controller_manager "$controllers" "$qps" "$burst"
    [[ -z $owner ]] || start_watchdog "$owner"
    trap - EXIT

    log "control plane up in $(elapsed_since "$start"): https://127.0.0.1:$API_PORT (etcd 127.0.0.1:$ETCD_PORT)"
    log "use it with: source $CP_DIR/env    stop it with: $SELF stop $CP_DIR"
    printf '%s\n' "$CP_DIR"
}

# restart-apiserver DIR — stop kube-apiserver and start it again with the command line it had
# (same port, so kubeconfigs stay valid); waits until it answers /readyz again.
cmd_restart_apiserver() {
    (($# == 1)) || usage
    require_state_dir "$1"
    CP_DIR=$(cd "$1" && pwd)
    local pid="" name p args=()
    while read -r name p; do
        [[ $name == kube-apiserver ]] && is_ours "$p" "$CP_DIR" && pid=$p
    done <"$CP_DIR/pids"
    [[ -n $pid ]] || die "no running kube-apiserver recorded in $CP_DIR/pids." "Start one with: $SELF start"
    mapfile -d '' -t args <"/proc/$pid/cmdline"
    log "stopping kube-apiserver (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    local deadline_ms=$(($(now_ms) + 15000))
    while is_ours "$pid" "$CP_DIR"; do
        if (($(now_ms) >= deadline_ms)); then
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    sed -i "/^kube-apiserver $pid\$/d" "$CP_DIR/pids"
    local start server token
    start=$(now_ms)
    spawn kube-apiserver "$CP_DIR/apiserver.log" "${args[@]}"
    server=$(awk '/server:/ {print $2; exit}' "$CP_DIR/kubeconfig")
    token=$(cat "$CP_DIR/token")
    # With tens of thousands of objects in etcd, filling the watch caches takes a while.
    wait_until 180 "$SPAWNED_PID" "$CP_DIR/apiserver.log" \
        curl -fsS --cacert "$CP_DIR/pki/ca.crt" -H "Authorization: Bearer $token" "$server/readyz" ||
        die "kube-apiserver did not come back (log: $CP_DIR/apiserver.log)." "Stop the control plane: $SELF stop $CP_DIR"
    log "kube-apiserver restarted (pid $SPAWNED_PID) in $(elapsed_since "$start")"
}

cmd_status() {
    (($# == 1)) || usage
    require_state_dir "$1"
    local dir=$1 name pid running=0
    [[ -f $dir/pids ]] || die "$dir has no pids file: nothing was started there."
    while read -r name pid; do
        if is_ours "$pid" "$dir"; then
            printf '%-24s running (pid %s)\n' "$name" "$pid"
            running=1
        else
            printf '%-24s not running (was pid %s)\n' "$name" "$pid"
        fi
    done <"$dir/pids"
    if [[ -f $dir/kubeconfig ]]; then
        local server
        server=$(awk '/server:/ {print $2; exit}' "$dir/kubeconfig")
        if curl -fsS --max-time 2 --cacert "$dir/pki/ca.crt" -H "Authorization: Bearer $(cat "$dir/token")" "$server/readyz" >/dev/null 2>&1; then
            printf '%-24s %s/readyz ok\n' apiserver "$server"
        else
            printf '%-24s %s/readyz not answering\n' apiserver "$server"
        fi
    fi
    ((running)) || return 1
}

cmd_kubeconfig() {
    (($# == 1)) || usage
    require_state_dir "$1"
    printf '%s\n' "$(cd "$1" && pwd)/kubeconfig"
}

main() {
    (($# >= 1)) || usage
    local cmd=$1
    shift
    case $cmd in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    status) cmd_status "$@" ;;
    kubeconfig) cmd_kubeconfig "$@" ;;
    -h | --help | help) usage 0 ;;
    *) usage ;;
    esac
}

main "$@"
