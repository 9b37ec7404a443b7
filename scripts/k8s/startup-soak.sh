#!/usr/bin/env bash
# Start-up soak of the test control plane: ROUNDS cold starts in a row (fresh DIR, new PKI,
# new ports, every component started from nothing), each with PARALLEL clusters coming up at
# once and BURNERS busy CPU loops beside them, so that start-up races show on a 2-core machine.
# Stops at the first failure and prints its log; exits 0 only when every start succeeded.
#
#   startup-soak.sh [ROUNDS=10] [PARALLEL=2] [BURNERS=2]
#
# CLUSTER_SH names the cluster script to soak (default: cluster.sh beside this file), so an
# older revision can be compared with the same load.
#
# SLOW_LAUNCH_MS=N makes the launch of every component N ms slow, deterministically: strace
# delays each execve of setsid, so the pid that `$!` names stays the forked shell that long (what
# a loaded or sandboxed machine does by chance). A liveness check that judges that pid too early
# reports a healthy component as "exited during startup".
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_SH=${CLUSTER_SH:-$HERE/cluster.sh}
rounds=${1:-10} parallel=${2:-2} burners=${3:-2}
slow_ms=${SLOW_LAUNCH_MS:-0}

bash "$CLUSTER_SH" build
root=$(mktemp -d "${TMPDIR:-/tmp}/fleetwarden-soak-XXXXXX")
burner_pids=()
cleanup() {
  local p; for p in "${burner_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  local d; for d in "$root"/c*; do [[ -d $d ]] && bash "$CLUSTER_SH" down "$d" >/dev/null 2>&1; done
  rm -rf "$root"
}
trap cleanup EXIT

# Bounded CPU load: each burner hashes zeros for at most 30 minutes.
for ((b = 0; b < burners; b++)); do
  timeout 1800 sha256sum /dev/zero >/dev/null 2>&1 &
  burner_pids+=($!)
done

# `cluster.sh up DIR` under strace with every execve of setsid delayed. strace stays attached to
# the started components, so the result is read from the script's own last line, not its exit.
up_traced() {
  command -v strace >/dev/null || { echo "SLOW_LAUNCH_MS needs strace (apt-get install strace)"; return 1; }
  local log; log=$(mktemp "$root/trace-XXXXXX")
  strace -f --seccomp-bpf -qq -o /dev/null -P "$(realpath "$(command -v setsid)")" -e trace=execve \
    -e inject=execve:delay_enter=$((slow_ms * 1000)) bash "$CLUSTER_SH" up "$1" >"$log" 2>&1 &
  local i
  for ((i = 0; i < 1200; i++)); do
    grep -q '\[k8s\] up in' "$log" && { cat "$log"; return 0; }
    grep -q '\[k8s\] ERROR' "$log" && { sleep 1; cat "$log"; return 1; }
    sleep 0.25
  done
  cat "$log"; echo "no result after 300 s"; return 1
}

passed=0
for ((r = 1; r <= rounds; r++)); do
  t0=$SECONDS pids=() failed=0
  for ((c = 1; c <= parallel; c++)); do
    if ((slow_ms > 0)); then
      up_traced "$root/c$c" >"$root/up-$c.log" 2>&1 &
    else
      bash "$CLUSTER_SH" up "$root/c$c" >"$root/up-$c.log" 2>&1 &
    fi
    pids+=($!)
  done
  for ((c = 1; c <= parallel; c++)); do
    if ! wait "${pids[c - 1]}"; then
      failed=1
      echo "round $r: cluster $c FAILED to start:" >&2
      sed 's/^/    /' "$root/up-$c.log" >&2
    fi
  done
  for ((c = 1; c <= parallel; c++)); do bash "$CLUSTER_SH" down "$root/c$c" >/dev/null 2>&1 || true; done
  if ((failed)); then
    echo "soak: $passed consecutive cold starts passed, then round $r failed" >&2
    exit 1
  fi
  passed=$((passed + 1))
  echo "round $r: $parallel clusters up in $((SECONDS - t0))s (with $burners CPU burners, launches ${slow_ms} ms slow)"
done
echo "soak: $passed of $rounds rounds passed ($((passed * parallel)) cold starts, $parallel at a time, $burners CPU burners, launches ${slow_ms} ms slow)"
