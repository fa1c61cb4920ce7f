# shellcheck shell=bash
# hack/processes.sh — process and state-directory helpers shared by the scripts that start local
# servers (control-plane.sh, crd-apiserver.sh); source it after lib.sh.
#
# The sourcing script sets CP_DIR (its state directory while starting), SELF (its own path, for
# the watchdog), STATE_MARKER (the file that marks a state directory as its own), PORT_MIN and
# PORT_MAX (the range free ports are picked from), and defines usage().

# Local ports in use (any state), from /proc: no dependency on ss/netstat output formats.
ports_in_use() {
    local hex
    # Column 2 is local_address as HEXIP:HEXPORT (mawk has no strtonum, so bash converts).
    awk 'FNR > 1 { n = split($2, a, ":"); print a[n] }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u |
        while read -r hex; do
            printf '%d\n' "$((16#$hex))"
        done
}

# pick_free_ports N — prints N distinct ports that nothing currently uses.
pick_free_ports() {
    local want=$1 used port picked=()
    used=" $(ports_in_use | tr '\n' ' ') "
    while ((${#picked[@]} < want)); do
        port=$((PORT_MIN + (RANDOM * 32768 + RANDOM) % (PORT_MAX - PORT_MIN)))
        [[ $used == *" $port "* || " ${picked[*]} " == *" $port "* ]] && continue
        picked+=("$port")
    done
    printf '%s\n' "${picked[@]}"
}

# Record a started process: "name pid" lines, read back by stop/status.
record_pid() { printf '%s %s\n' "$1" "$2" >>"$CP_DIR/pids"; }

# is_ours PID DIR — the process exists and was started for this state directory. Guards against
# killing an unrelated process that reused a recorded PID.
is_ours() {
    local pid=$1 dir=$2 cmdline
    [[ -r /proc/$pid/cmdline ]] || return 1
    cmdline=" $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    # Either a path inside the directory or the directory itself as an argument (the watchdog).
    [[ $cmdline == *" $dir/"* || $cmdline == *"=$dir/"* || $cmdline == *" $dir "* ]]
}

# spawn NAME LOGFILE CMD... — start CMD detached (own session, no inherited stdio, so a caller that
# captures our stdout, like a test harness, is not kept waiting) and record its PID.
spawn() {
    local name=$1 logfile=$2
    shift 2
    setsid "$@" </dev/null >>"$logfile" 2>&1 &
    SPAWNED_PID=$!
    record_pid "$name" "$SPAWNED_PID"
}

# wait_until DEADLINE_S PID LOGFILE CHECK... — poll CHECK every 100 ms until it succeeds; return 1 if
# PID dies (2 if its log says the port was taken) or the deadline passes (3).
wait_until() {
    local deadline_ms=$(($(now_ms) + $1 * 1000)) pid=$2 logfile=$3
    shift 3
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            grep -q 'address already in use' "$logfile" 2>/dev/null && return 2
            return 1
        fi
        (($(now_ms) < deadline_ms)) || return 3
        sleep 0.1
    done
}

# start_watchdog OWNER_PID — stop the control plane when OWNER_PID exits. The owner's start time is
# compared too, so a recycled PID does not keep the control plane alive.
start_watchdog() {
    local owner=$1 owner_start
    [[ -r /proc/$owner/stat ]] || die "--owner-pid $owner: no such process."
    owner_start=$(awk '{print $22}' "/proc/$owner/stat")
    log "watchdog: the control plane stops when process $owner exits"
    # The state dir is an argument so that is_ours() recognises the watchdog too.
    # shellcheck disable=SC2016 # expanded by the inner bash, not here
    setsid bash -c '
        owner=$1 owner_start=$2 dir=$3 self=$4
        while [[ -d $dir ]] && [[ -r /proc/$owner/stat ]] &&
            [[ $(awk "{print \$22}" /proc/$owner/stat 2>/dev/null) == "$owner_start" ]]; do
            sleep 1
        done
        if [[ -d $dir ]]; then TFJOB_CP_FROM_WATCHDOG=1 exec "$self" stop "$dir"; fi
    ' tfjob-cp-watchdog "$owner" "$owner_start" "$CP_DIR" "$SELF" </dev/null >>"$CP_DIR/watchdog.log" 2>&1 &
    record_pid watchdog "$!"
}

any_running() {
    local dir=$1 name pid
    [[ -f $dir/pids ]] || return 1
    while read -r name pid; do
        is_ours "$pid" "$dir" && return 0
    done <"$dir/pids"
    return 1
}

require_state_dir() {
    local dir=${1:-}
    [[ -n $dir ]] || die "missing state directory argument." "Pass the directory printed by: $SELF start"
    [[ -d $dir && -f $dir/$STATE_MARKER ]] || die "$dir is not a control-plane state directory." \
        "Pass the directory printed by: $SELF start"
}

cmd_stop() {
    (($# == 1)) || usage
    require_state_dir "$1"
    local dir
    dir=$(cd "$1" && pwd)
    local name pid pids=() names=()
    if [[ -f $dir/pids ]]; then
        while read -r name pid; do
            # The watchdog runs this very command; it must not kill itself mid-way.
            [[ $name == watchdog && ${TFJOB_CP_FROM_WATCHDOG:-} == 1 ]] && continue
            if is_ours "$pid" "$dir"; then
                pids+=("$pid")
                names+=("$name")
            fi
        done <"$dir/pids"
    fi
    if ((${#pids[@]})); then
        log "stopping ${names[*]} (pids ${pids[*]})"
        kill -TERM "${pids[@]}" 2>/dev/null || true
        local deadline_ms=$(($(now_ms) + 5000)) alive
        while :; do
            alive=()
            for pid in "${pids[@]}"; do
                is_ours "$pid" "$dir" && alive+=("$pid")
            done
            ((${#alive[@]})) || break
            if (($(now_ms) >= deadline_ms)); then
                warn "still running after 5 s, killing: ${alive[*]}"
                kill -KILL "${alive[@]}" 2>/dev/null || true
                sleep 0.2
                break
            fi
            sleep 0.1
        done
    fi
    if [[ ${KEEP_CP:-} == 1 ]]; then
        log "stopped; kept $dir (KEEP_CP=1)"
    else
        rm -rf "$dir"
        log "stopped and removed $dir"
    fi
}
