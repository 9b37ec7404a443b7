#!/usr/bin/env bash
# Proves a cluster started by `cluster.sh up [DIR]` does what Fleetwarden's tests need:
# KWOK node + pods Running, PDB status computed by kube-controller-manager, policy/v1
# evictions (201, then 429 while the budget is spent), pod deletion completing, KWOK's
# per-pod delay annotations, and a limited ServiceAccount token identity under RBAC.
#   bash scripts/k8s/smoke.sh [DIR]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=$(realpath -m "${1:-${TMPDIR:-/tmp}/fleetwarden-k8s}")
BIN=$(bash "$HERE/cluster.sh" bin)
[[ -f $DIR/kubeconfig ]] || { echo "no cluster at $DIR (run cluster.sh up first)" >&2; exit 1; }
SERVER=$(cat "$DIR/server")
NS=smoke-$$
NODE=kwok-smoke-$$

k() { "$BIN/kubectl" --kubeconfig "$DIR/kubeconfig" -n "$NS" "$@"; }
say() { echo "[smoke] $*" >&2; }
die() { echo "[smoke] FAIL: $*" >&2; k get nodes,pods,pdb -o wide >&2 || true; exit 1; }
# until_ok SECONDS WHAT CMD...: poll CMD
until_ok() {
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do ((SECONDS < deadline)) || die "timed out: $what"; sleep 0.5; done
}
# HTTP status of an admin request (curl, so we see the exact code, e.g. 429)
admin_code() { # METHOD PATH [BODY]
  curl -sS -o /dev/null -w '%{http_code}' -X "$1" --cacert "$DIR/pki/ca.crt" \
    --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" \
    -H 'Content-Type: application/json' ${3:+--data "$3"} "$SERVER$2"
}
evict() { # POD -> HTTP status
  admin_code POST "/api/v1/namespaces/$NS/pods/$1/eviction" \
    "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":\"$1\",\"namespace\":\"$NS\"}}"
}
cleanup() { k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; k delete node "$NODE" >/dev/null 2>&1 || true; }
trap cleanup EXIT

t0=$SECONDS
k create namespace "$NS" >/dev/null
# The shape tests use: KWOK annotation + an AWS providerID; no status (KWOK fills it).
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Node
metadata:
  name: $NODE
  annotations: {kwok.x-k8s.io/node: fake}
  labels: {kubernetes.io/hostname: $NODE, type: kwok}
spec:
  providerID: aws:///us-east-1a/i-0123456789abcdef0
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: $NS}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: $NODE}
      containers: [{name: web, image: fake.invalid/web:1}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: $NS}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
EOF
k wait --for=condition=Ready "node/$NODE" --timeout=60s >/dev/null || die "KWOK did not make the node Ready"
say "node Ready ($((SECONDS - t0))s)"

running() { [[ $(k get pods -l app=web --field-selector=status.phase=Running -o name | wc -l) == 3 ]]; }
until_ok 60 "3 pods Running" running
k wait --for=condition=Ready pod -l app=web --timeout=60s >/dev/null || die "pods not Ready"
say "3 pods Running+Ready on $NODE ($((SECONDS - t0))s)"

allowed() { [[ $(k get pdb web -o jsonpath='{.status.disruptionsAllowed}') == "$1" ]]; }
until_ok 60 "PDB disruptionsAllowed=1" allowed 1
say "PDB disruptionsAllowed=1 ($((SECONDS - t0))s)"

mapfile -t PODS < <(k get pods -l app=web -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
# Cordon first, as a drain does: KWOK makes a replacement Ready within a second, so
# without this the budget could be back before our second request.
k cordon "$NODE" >/dev/null
code=$(evict "${PODS[0]}"); [[ $code == 201 ]] || die "first eviction: HTTP $code, want 201"
say "evicted ${PODS[0]} (201)"
code=$(evict "${PODS[1]}"); [[ $code == 429 ]] || die "second eviction: HTTP $code, want 429"
say "second eviction refused (429) while the replacement cannot become Ready"
gone() { ! k get pod "$1" >/dev/null 2>&1; }
until_ok 30 "evicted pod deleted" gone "${PODS[0]}"     # KWOK stage pod-delete
sleep 2
code=$(evict "${PODS[1]}"); [[ $code == 429 ]] || die "eviction while cordoned: HTTP $code, want 429"
k uncordon "$NODE" >/dev/null
until_ok 60 "PDB back to 1" allowed 1                   # replacement scheduled + Ready
code=$(evict "${PODS[1]}"); [[ $code == 201 ]] || die "eviction after replacement: HTTP $code, want 201"
say "after uncordon the replacement became Ready; eviction of ${PODS[1]} succeeded ($((SECONDS - t0))s)"

k delete pod "${PODS[2]}" --wait=false >/dev/null
until_ok 30 "deleted pod disappears" gone "${PODS[2]}"
say "deleted pod ${PODS[2]} is gone ($((SECONDS - t0))s)"
until_ok 60 "3 pods Running again" running

# The per-pod knobs in kwok-stages.yaml: a slow-to-be-Ready pod that lingers when deleted.
k apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: slow
  annotations: {pod-ready.stage.kwok.x-k8s.io/delay: 3s, pod-delete.stage.kwok.x-k8s.io/delay: 3s}
spec:
  nodeName: $NODE
  containers: [{name: c, image: fake.invalid/slow:1}]
EOF
ready() { [[ $(k get pod "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]; }
sleep 1; ! ready slow || die "pod with a 3s pod-ready delay was Ready after 1s"
until_ok 20 "slow pod Ready" ready slow
k delete pod slow --wait=false >/dev/null
sleep 1; ! gone slow || die "pod with a 3s pod-delete delay was gone after 1s"
until_ok 20 "slow pod deleted" gone slow
say "pod-ready / pod-delete delay annotations honoured ($((SECONDS - t0))s)"

# A limited identity: ServiceAccount + Role + TokenRequest.
k create serviceaccount limited >/dev/null
k create role pod-reader --verb=get,list --resource=pods >/dev/null
k create rolebinding limited-pods --role=pod-reader --serviceaccount="$NS:limited" >/dev/null
TOKEN=$(k create token limited --duration=10m)
sa_code() { curl -sS -o /dev/null -w '%{http_code}' --cacert "$DIR/pki/ca.crt" -H "Authorization: Bearer $TOKEN" "$SERVER$1"; }
until_ok 10 "SA can list pods" test "$(sa_code "/api/v1/namespaces/$NS/pods")" == 200
code=$(sa_code /api/v1/nodes); [[ $code == 403 ]] || die "SA listing nodes: HTTP $code, want 403"
say "ServiceAccount token: pods 200, nodes 403 (RBAC enforced)"

say "PASS in $((SECONDS - t0))s"
