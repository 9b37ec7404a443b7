#!/usr/bin/env bash
# A real Kubernetes control plane on loopback for Fleetwarden's tests, without Docker:
# etcd + kube-apiserver + kube-controller-manager + kube-scheduler + KWOK (fake kubelets).
#
#   cluster.sh build        build missing binaries into the cache (warm: does nothing)
#   cluster.sh up   [DIR]   build if needed, start everything, write DIR/kubeconfig, wait until usable
#   cluster.sh down [DIR]   stop what `up` started and remove DIR (safe to call twice)
#   cluster.sh bin          print the directory holding the binaries (kubectl is there too)
#   cluster.sh user DIR NAME GROUP
#                           a client certificate for user NAME in group GROUP (signed by the
#                           cluster's CA), written as DIR/NAME.kubeconfig: the same shape of
#                           identity an EKS access entry gives (a user in a Kubernetes group)
#
# DIR defaults to ${TMPDIR:-/tmp}/fleetwarden-k8s. Binaries are built from the Go module
# proxy (the only source reachable here) into
#   ${FLEETWARDEN_CACHE:-$HOME/.cache/fleetwarden}/k8s/<k8s>-etcd<ver>-kwok<ver>/bin
#
# Identities:
#   DIR/kubeconfig is cluster-admin (client cert, O=system:masters). The server URL is
#   https://127.0.0.1:<random port>; the CA is embedded (certificate-authority-data), so any
#   client that loads the kubeconfig trusts the server. DIR/pki/ca.crt is the same CA.
#   A limited identity for RBAC tests: as admin, create a ServiceAccount, a (Cluster)Role
#   and a RoleBinding, then ask for a token with the TokenRequest API
#     POST /api/v1/namespaces/<ns>/serviceaccounts/<sa>/token  {"spec":{"expirationSeconds":3600}}
#   (or `kubectl create token <sa>`); build a kubeconfig with the same server + CA and
#   `user: {token: <token>}`. That works because the apiserver is given
#   --service-account-issuer / -key-file / -signing-key-file and the controller-manager
#   --service-account-private-key-file + --root-ca-file.
#   Alternatively impersonate: admin requests with `Impersonate-User: <name>` header.
#
# KWOK manages only Nodes annotated `kwok.x-k8s.io/node: fake`. Pods bound to them go
# Running/Ready at once; pods with a deletionTimestamp are deleted for real at once
# (kwok-stages.yaml; per-pod delay annotations are documented there). Because a
# replacement pod is Ready within a second, a test that wants an eviction to get 429
# must keep the replacement from becoming Ready (cordon the node, or set the
# pod-ready delay annotation on the pod template).
set -euo pipefail

K8S_VERSION=v1.37.1   # newest k8s.io/kubernetes whose module zip the proxy serves (v1.37.2: 403)
ETCD_VERSION=v3.7.3   # k8s 1.37 is built and tested against etcd 3.7
KWOK_VERSION=v0.8.0

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${FLEETWARDEN_CACHE:-$HOME/.cache/fleetwarden}/k8s/${K8S_VERSION}-etcd${ETCD_VERSION}-kwok${KWOK_VERSION}
BIN=$CACHE/bin
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
ALL_BINS=(etcd "${K8S_BINS[@]}" kwok)
# Stop order matters a little: clients first, etcd last.
COMPONENTS=(kwok kube-scheduler kube-controller-manager kube-apiserver etcd)

log() { echo "[k8s] $*" >&2; }
die() { echo "[k8s] ERROR: $*" >&2; exit 1; }

# ---------------------------------------------------------------------------- build
have_all() { local b; for b in "$@"; do [[ -x $BIN/$b ]] || return 1; done; }

go_env() {
  GO=$(command -v go || echo /usr/local/go/bin/go)
  [[ -x $GO ]] || die "go not found (need Go >= 1.26)"
  # local toolchain only (no toolchain download), no workspace/vendoring from the caller,
  # static binaries (no C compiler needed).
  export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
}

build_k8s() {
  local work=$1 gomod major minor
  log "building kubernetes $K8S_VERSION (${K8S_BINS[*]}); cold build takes 10-25 min on 2 cores"
  # k8s.io/kubernetes pins its staging repos (k8s.io/api, ...) at v0.0.0 with `replace
  # => ./staging/...`, which a dependent module cannot use. Rewrite every such replace to
  # the published v0.Y.Z tag, taking the list from that version's own go.mod.
  gomod=$("$GO" mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p')
  [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$K8S_VERSION go.mod"
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  local staging="v0.${K8S_VERSION#v*.}"
  mkdir -p "$work/k8s"
  {
    echo "module fleetwarden.local/k8sbuild"
    echo "go 1.26.0"
    echo "require k8s.io/kubernetes $K8S_VERSION"
    local b; for b in "${K8S_BINS[@]}"; do echo "tool k8s.io/kubernetes/cmd/$b"; done
    echo "replace ("
    sed -n 's#^\s*\(k8s\.io/[a-z0-9-]*\) => \./staging/src/.*#\t\1 => \1 '"$staging"'#p' "$gomod"
    echo ")"
  } >"$work/k8s/go.mod"
  (cd "$work/k8s" && "$GO" mod tidy >&2)
  local x="" k
  for k in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    # tools (kubectl, client libraries) choose behaviour by the reported version
    x+=" -X $k.gitVersion=$K8S_VERSION -X $k.gitMajor=$major -X $k.gitMinor=$minor"
    x+=" -X $k.gitTreeState=clean -X $k.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$work/k8s" && "$GO" build -trimpath -ldflags "-s -w$x" -o "$work/out/" \
    "${K8S_BINS[@]/#/k8s.io/kubernetes/cmd/}")
}

build_etcd() {
  local work=$1
  log "building etcd $ETCD_VERSION"
  # Debian's etcd 3.4 is too old for kube-apiserver >= 1.35; build the server from the
  # module proxy through a three-line main.
  mkdir -p "$work/etcd"
  printf 'module fleetwarden.local/etcdbuild\ngo 1.26.0\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$work/etcd/go.mod"
  cat >"$work/etcd/main.go" <<'EOF'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (cd "$work/etcd" && "$GO" mod tidy >&2 && "$GO" build -trimpath -ldflags "-s -w" -o "$work/out/etcd" .)
}

build_kwok() {
  local work=$1
  log "building kwok $KWOK_VERSION"
  GOBIN="$work/out" "$GO" install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

cmd_build() {
  have_all "${ALL_BINS[@]}" && return 0
  mkdir -p "$BIN"
  # Serialise concurrent builds (parallel test workers); the later one finds them cached.
  (
    flock 9
    have_all "${ALL_BINS[@]}" && exit 0
    build_locked
  ) 9>"$CACHE/.build.lock"
}

build_locked() {
  go_env
  rm -rf "$CACHE"/.build.*/  # left by a build that was SIGKILLed (we hold the lock)
  local work; work=$(mktemp -d "$CACHE/.build.XXXXXX")
  # shellcheck disable=SC2064  # expand now: $work is local, gone when the trap runs
  trap "rm -rf '$work'" EXIT
  local t0=$SECONDS
  have_all etcd || build_etcd "$work"
  have_all kwok || build_kwok "$work"
  have_all "${K8S_BINS[@]}" || build_k8s "$work"
  # Atomic: a binary only appears in bin/ (by rename on the same filesystem) once complete.
  local f; for f in "$work"/out/*; do mv -f "$f" "$BIN/"; done
  have_all "${ALL_BINS[@]}" || die "build finished but binaries are missing from $BIN"
  log "built in $((SECONDS - t0))s into $BIN"
}

# ---------------------------------------------------------------------------- up
free_port() {
  # Random port nobody listens on (bash /dev/tcp connect fails => free), below the kernel's
  # ephemeral range: a port above it can be taken at any moment as the source port of some
  # outgoing connection, which no listen check sees (etcd then fails with "address in use").
  local p low
  low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  ((low > 12000)) || low=32768
  while :; do
    p=$((10000 + RANDOM % (low - 10000)))
    grep -qx "$p" "$DIR/ports" 2>/dev/null && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p" >>"$DIR/ports"; echo "$p"; return; fi
  done
}

# cert NAME CN [O] [SAN]: EC P-256 key + cert signed by DIR/pki/ca
cert() {
  local name=$1 cn=$2 o=${3:-} san=${4:-} subj="/CN=$2" p=$DIR/pki
  [[ -n $o ]] && subj="/O=$o/CN=$cn"
  openssl ecparam -name prime256v1 -genkey -noout -out "$p/$name.key" 2>/dev/null
  openssl req -new -key "$p/$name.key" -subj "$subj" -out "$p/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n $san ]]; then echo "extendedKeyUsage=serverAuth"; echo "subjectAltName=$san"
    else echo "extendedKeyUsage=clientAuth"; fi
  } >"$p/$name.ext"
  openssl x509 -req -in "$p/$name.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -set_serial "0x$(openssl rand -hex 12)" \
    -days 3650 -sha256 -extfile "$p/$name.ext" -out "$p/$name.crt" 2>/dev/null
  rm -f "$p/$name.csr" "$p/$name.ext"
}

make_pki() {
  local p=$DIR/pki; mkdir -p "$p"
  openssl ecparam -name prime256v1 -genkey -noout -out "$p/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$p/ca.key" -subj "/CN=fleetwarden-test-ca" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$p/ca.crt" 2>/dev/null
  # Independent of each other: in parallel (a few hundred ms instead of ~2 s).
  cert apiserver kube-apiserver "" \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" &
  cert admin fleetwarden-admin system:masters &
  cert controller-manager system:kube-controller-manager &
  cert scheduler system:kube-scheduler &
  # KWOK patches node and pod status of nodes that no kubelet owns; admin is simplest.
  cert kwok kwok-controller system:masters &
  # Service-account token signing key pair (TokenRequest API, SA token controller).
  { openssl ecparam -name prime256v1 -genkey -noout -out "$p/sa.key" 2>/dev/null &&
    openssl ec -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null; } &
  local job; for job in $(jobs -p); do wait "$job" || die "openssl failed making $p"; done
}

kubeconfig() { # kubeconfig FILE CERTNAME
  local p=$DIR/pki
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fleetwarden
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$p/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$p/$2.crt")
    client-key-data: $(base64 -w0 "$p/$2.key")
contexts:
- name: fleetwarden
  context: {cluster: fleetwarden, user: $2, namespace: default}
current-context: fleetwarden
EOF
}

start() { # start NAME ARGS... : detached (own session), so it outlives this script
  local name=$1; shift
  setsid "$BIN/$name" "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$DIR/pids/$name"
  # $! names the forked shell until it execs setsid, and setsid until it execs the binary; on a
  # loaded machine that can take a while. Judge liveness only once the binary itself runs there,
  # or a check in between sees the launcher and reports a healthy component as dead.
  for ((i = 0; i < 300; i++)); do
    is_binary "$pid" "$name" && return 0
    [[ -e /proc/$pid ]] && ! is_zombie "$pid" || fail "$name" "$name exited before it started (pid $pid)"
    sleep 0.05
  done
  fail "$name" "$name was not running its binary 15s after being started (pid $pid)"
}

is_zombie() { [[ $(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) == Z ]]; }

# is_binary PID NAME: PID runs the cached NAME binary (not the shell or setsid that launch it,
# not a zombie: its exe link is gone) with this DIR in its arguments (not a reused pid of
# another cluster's component).
is_binary() {
  [[ $(readlink "/proc/$1/exe" 2>/dev/null) == "$BIN_REAL/$2" ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$DIR/"
}

fail() { # fail COMPONENT MESSAGE: show why, stop everything, keep DIR/logs for a look
  echo "[k8s] ERROR: $2" >&2
  echo "[k8s] ---- last lines of $DIR/logs/$1.log (all logs: $DIR/logs) ----" >&2
  tail -n 40 "$DIR/logs/$1.log" >&2 2>/dev/null || true
  stop_all || true
  exit 1
}

# wait_for COMPONENT SECONDS CMD...: poll CMD until it succeeds; fail if the process dies.
wait_for() {
  local name=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    alive "$name" || fail "$name" "$name exited during startup"
    ((SECONDS < deadline)) || fail "$name" "$name not ready after ${secs}s (waiting for: $*)"
    sleep 0.3
  done
}

alive() { # the recorded pid still runs our binary with our DIR (guards against pid reuse)
  local pid; pid=$(cat "$DIR/pids/$1" 2>/dev/null) || return 1
  is_binary "$pid" "$1"
}

https_ok() { # https_ok PORT PATH: as admin
  curl -fsS --max-time 3 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" \
    --key "$DIR/pki/admin.key" "https://127.0.0.1:$1$2"
}
# kube-controller-manager / kube-scheduler serve healthz with their own self-signed cert.
local_healthz() { curl -fsSk --max-time 3 "https://127.0.0.1:$1/healthz"; }

cmd_up() {
  cmd_build
  [[ -e $DIR && ! -f $DIR/.fleetwarden-k8s ]] && [[ -n $(ls -A "$DIR") ]] &&
    die "$DIR exists and was not made by cluster.sh; refusing to use it"
  # Leftovers of a crashed run: stop them and start clean.
  [[ -d $DIR ]] && cmd_down
  mkdir -p "$DIR"/{logs,pids,etcd}
  touch "$DIR/.fleetwarden-k8s"
  local t0=$SECONDS
  make_pki
  local ETCD_PORT ETCD_PEER API_PORT KCM_PORT SCHED_PORT KWOK_PORT
  ETCD_PORT=$(free_port); ETCD_PEER=$(free_port); API_PORT=$(free_port)
  KCM_PORT=$(free_port); SCHED_PORT=$(free_port); KWOK_PORT=$(free_port)
  kubeconfig "$DIR/kubeconfig" admin
  kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
  kubeconfig "$DIR/scheduler.kubeconfig" scheduler
  kubeconfig "$DIR/kwok.kubeconfig" kwok
  echo "https://127.0.0.1:$API_PORT" >"$DIR/server"

  log "starting etcd on 127.0.0.1:$ETCD_PORT"
  start etcd --name=node0 --data-dir="$DIR/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER" \
    --initial-cluster="node0=http://127.0.0.1:$ETCD_PEER" \
    --auto-compaction-retention=1 --quota-backend-bytes=2147483648 \
    --unsafe-no-fsync  # throwaway test data: skip fsync, much faster on shared disks
  wait_for etcd 30 curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health"

  log "starting kube-apiserver on https://127.0.0.1:$API_PORT"
  # --endpoint-reconciler-type=none: the `kubernetes` Service would get 127.0.0.1 as its
  # endpoint, which validation rejects (loopback); nothing in-cluster needs it.
  local p=$DIR/pki
  start kube-apiserver --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --allow-privileged=true \
    --endpoint-reconciler-type=none \
    --profiling=false
  wait_for kube-apiserver 90 https_ok "$API_PORT" /readyz

  log "starting kube-controller-manager, kube-scheduler, kwok"
  # Each controller runs as its own system:serviceaccount:kube-system:<controller> (tokens
  # via TokenRequest), which the bootstrap RBAC policy grants; the plain
  # system:kube-controller-manager identity may not create ReplicaSets, update PDB status...
  # Default controller set ("*") includes disruption (PDB status), serviceaccount (the
  # `default` SA), serviceaccount-token, deployment/replicaset, nodelifecycle, podgc.
  start kube-controller-manager --kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$KCM_PORT" --leader-elect=false \
    --use-service-account-credentials=true \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
    --cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
    --kube-api-qps=200 --kube-api-burst=400 --concurrent-gc-syncs=20 --profiling=false
  start kube-scheduler --kubeconfig="$DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --leader-elect=false \
    --kube-api-qps=200 --kube-api-burst=400 --profiling=false
  # Stages (node/pod lifecycle) live in kwok-stages.yaml next to this script.
  # --node-ip 127.0.0.1: anything that ever dials a fake node's "kubelet" stays on loopback.
  start kwok --kubeconfig="$DIR/kwok.kubeconfig" --config="$HERE/kwok-stages.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-port="$KWOK_PORT" --server-address="127.0.0.1:$KWOK_PORT" \
    --node-lease-duration-seconds=40 --cidr=10.0.0.1/16
  wait_for kube-controller-manager 60 local_healthz "$KCM_PORT"
  wait_for kube-scheduler 60 local_healthz "$SCHED_PORT"
  wait_for kwok 60 curl -fsS --max-time 2 "http://127.0.0.1:$KWOK_PORT/healthz"
  wait_for kube-controller-manager 60 https_ok "$API_PORT" /api/v1/namespaces/default/serviceaccounts/default
  log "up in $((SECONDS - t0))s: KUBECONFIG=$DIR/kubeconfig server=https://127.0.0.1:$API_PORT"
}

# ---------------------------------------------------------------------------- down
cmd_down() {
  [[ -d $DIR ]] || return 0
  if [[ ! -f $DIR/.fleetwarden-k8s ]]; then
    [[ -z $(ls -A "$DIR") ]] && { rmdir "$DIR"; return 0; }
    die "$DIR was not made by cluster.sh; not touching it"
  fi
  stop_all
  rm -rf "$DIR"
}

stop_all() {
  # One at a time, clients first: an apiserver whose etcd is already gone (or an etcd
  # with the apiserver still attached) shuts down slowly. State is throwaway, so after
  # a short grace period SIGKILL is fine.
  local c pid i
  for c in "${COMPONENTS[@]}"; do
    alive "$c" || continue
    pid=$(cat "$DIR/pids/$c")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do alive "$c" || break; sleep 0.2; done
    alive "$c" && { kill -KILL "$pid" 2>/dev/null || true; }
    for ((i = 0; i < 25; i++)); do alive "$c" || break; sleep 0.2; done
  done
  return 0
}

# ---------------------------------------------------------------------------- user
cmd_user() {
  local name=${1:?usage: cluster.sh user DIR NAME GROUP} group=${2:?usage: cluster.sh user DIR NAME GROUP}
  [[ -f $DIR/.fleetwarden-k8s && -f $DIR/pki/ca.key ]] || die "no cluster at $DIR (run cluster.sh up first)"
  [[ $name =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "user name must be lower-case letters, digits and -"
  API_PORT=$(sed 's/.*://' "$DIR/server")
  cert "$name" "$name" "$group"
  kubeconfig "$DIR/$name.kubeconfig" "$name"
  echo "$DIR/$name.kubeconfig"
}

# ---------------------------------------------------------------------------- main
DIR=$(realpath -m "${2:-${TMPDIR:-/tmp}/fleetwarden-k8s}")  # absolute: alive() matches it
BIN_REAL=$(realpath -m "$BIN")  # /proc/PID/exe names the resolved path
case ${1:-} in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  bin) echo "$BIN" ;;
  user) cmd_user "${@:3}" ;;
  *) echo "usage: $0 build | up [DIR] | down [DIR] | bin | user DIR NAME GROUP" >&2; exit 2 ;;
esac
