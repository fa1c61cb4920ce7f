# shellcheck shell=bash
# hack/lib.sh — shared helpers for the scripts under hack/ (source it, do not run it).
#
# Logging goes to stderr so that a script's stdout stays machine-readable
# (control-plane.sh prints the state directory as its last stdout line).

# Short name of the calling script, used as a log prefix.
HACK_SCRIPT_NAME=${HACK_SCRIPT_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}

log() { printf '[%s] %s\n' "$HACK_SCRIPT_NAME" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$HACK_SCRIPT_NAME" "$*" >&2; }

# die MESSAGE... — print an error (each argument on its own line) and exit 1.
# Convention: the last lines say what to do next.
die() {
    local first=1 line
    for line in "$@"; do
        if ((first)); then
            printf '[%s] ERROR: %s\n' "$HACK_SCRIPT_NAME" "$line" >&2
            first=0
        else
            printf '[%s]        %s\n' "$HACK_SCRIPT_NAME" "$line" >&2
        fi
    done
    exit 1
}

# Seconds since the epoch with millisecond precision, for "took N s" messages.
now_ms() { date +%s%3N; }

# elapsed_since START_MS — "12.3s".
elapsed_since() {
    local ms=$(($(now_ms) - $1))
    printf '%d.%01ds' $((ms / 1000)) $(((ms % 1000) / 100))
}

# tail_file FILE [LINES] — show the end of a log, indented, for error reports.
tail_file() {
    local file=$1 lines=${2:-30}
    if [[ -s $file ]]; then
        printf '[%s] ---- last %d lines of %s ----\n' "$HACK_SCRIPT_NAME" "$lines" "$file" >&2
        tail -n "$lines" "$file" | sed 's/^/    /' >&2
        printf '[%s] ---- end of %s ----\n' "$HACK_SCRIPT_NAME" "$file" >&2
    else
        printf '[%s] (%s is empty or missing)\n' "$HACK_SCRIPT_NAME" "$file" >&2
    fi
}

require_cmd() {
    local cmd=$1 hint=${2:-}
    command -v "$cmd" >/dev/null 2>&1 || die "required command '$cmd' not found." ${hint:+"$hint"}
}

# debian_unpack DEST PACKAGE... — downloads Debian packages (apt-get download, the candidate
# versions of the host's apt sources) and unpacks them into DEST with dpkg-deb -x: never
# installed, no maintainer scripts. For tools the tests need but the machine does not have.
debian_unpack() {
    local dest=$1 work deb
    shift
    require_cmd apt-get "this needs Debian's apt (Debian 12); install the tools it fetches by hand otherwise."
    require_cmd dpkg-deb "this needs dpkg-deb (Debian 12)."
    work=$(mktemp -d)
    log "downloading $* (apt-get download)"
    if ! (cd "$work" && apt-get download -q "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2); then
        rm -rf "$work"
        die "apt-get download $* failed." "Check access to the Debian mirror (apt-get update) and run this again."
    fi
    mkdir -p "$dest"
    for deb in "$work"/*.deb; do
        dpkg-deb -x "$deb" "$dest"
    done
    rm -rf "$work"
}
