#!/usr/bin/env bash
# hack/demo.sh — the operator's main job, end to end, on a local control plane (the README's
# first command).
#
# Starts a real kube-apiserver + etcd + kube-controller-manager (building and caching
# Kubernetes the first time), installs the TFJob CRD, runs tfjob-operator and the simulated
# kubelet, submits the seed document's example TFJob unchanged, shows it go
# Created → Running → Succeeded with `kubectl get tfjobs` and its events, then cleans up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source hack/lib.sh

NAMESPACE=kube-test   # the namespace of the seed document's example
JOB=tfjob-test
started=$(now_ms)
step() { printf '\n\033[1m== %s ==\033[0m\n' "$*" >&2; }

require_cmd cargo "install the Rust toolchain (https://rustup.rs) and run this again."
require_cmd kubectl "install kubectl (https://kubernetes.io/docs/tasks/tools/) and run this again."

step "1/6 Kubernetes binaries (built once, then cached)"
hack/control-plane.sh install

step "2/6 building tfjob-operator and the simulated kubelet"
cargo build --locked --package tfjob-operator --package sim-kubelet --bins 2>&1 | tail -n 2 >&2
BIN=target/debug

step "3/6 starting a local control plane"
cp_dir=$(hack/control-plane.sh start --owner-pid $$ | tail -n 1)
pids=()
cleanup() {
    local code=$?
    step "cleaning up"
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    hack/control-plane.sh stop "$cp_dir" >/dev/null 2>&1 || true
    log "done in $(elapsed_since "$started")"
    exit "$code"
}
trap cleanup EXIT INT TERM
export KUBECONFIG=$cp_dir/kubeconfig

step "4/6 installing the TFJob CRD, starting tfjob-operator and the simulated kubelet"
# Kubernetes 1.20's client-side schema does not know CEL rules (x-kubernetes-validations);
# newer clusters take the file with a plain `kubectl apply -f`.
kubectl apply --validate=false -f crds/kubeflow.org_tfjobs.yaml
for _ in $(seq 100); do
    [[ $(kubectl get crd tfjobs.kubeflow.org -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null) == True ]] && break
    sleep 0.1
done
"$BIN/tfjob-operator" --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0 \
    >"$cp_dir/operator.log" 2>&1 &
pids+=($!)
"$BIN/tfjob-sim-kubelet" >"$cp_dir/sim-kubelet.log" 2>&1 &
pids+=($!)
log "operator log: $cp_dir/operator.log   simulated kubelet log: $cp_dir/sim-kubelet.log"

step "5/6 submitting the seed's example TFJob (examples/tfjob-seed.yaml) to namespace $NAMESPACE"
kubectl create namespace "$NAMESPACE" >/dev/null
kubectl apply -n "$NAMESPACE" -f examples/tfjob-seed.yaml
shown=""
deadline=$(($(date +%s) + 60))
printf '%-10s %-12s %s\n' TIME STATE CONDITIONS
while :; do
    # One read per poll, so the state and the conditions shown always agree.
    read -r state conds < <(kubectl get tfjob "$JOB" -n "$NAMESPACE" \
        -o jsonpath='{.status.conditions[-1:].type}{" "}{range .status.conditions[*]}{.type}={.status},{end}{"\n"}' \
        2>/dev/null || true) || true
    if [[ -n ${state:-} && "$state $conds" != "$shown" ]]; then
        shown="$state $conds"
        printf '%-10s %-12s %s\n' "$(date +%T)" "$state" "${conds%,}"
    fi
    [[ ${conds:-} == *"Succeeded=True"* ]] && break
    if [[ ${conds:-} == *"Failed=True"* ]]; then
        kubectl describe tfjob "$JOB" -n "$NAMESPACE" >&2
        die "the TFJob failed; see $cp_dir/operator.log"
    fi
    (($(date +%s) < deadline)) || die "the TFJob did not succeed within 60 s." "See $cp_dir/operator.log and $cp_dir/sim-kubelet.log"
    sleep 0.1
done

step "6/6 the TFJob succeeded: Created → Running → Succeeded"
kubectl get tfjobs -n "$NAMESPACE"
echo
kubectl get pods,services -n "$NAMESPACE"
echo
kubectl get events -n "$NAMESPACE" --field-selector "involvedObject.name=$JOB" \
    -o custom-columns='TYPE:.type,REASON:.reason,MESSAGE:.message'
echo
kubectl get tfjob "$JOB" -n "$NAMESPACE" -o jsonpath='{.status}' | python3 -m json.tool
