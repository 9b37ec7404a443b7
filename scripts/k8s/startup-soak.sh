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
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_SH=${CLUSTER_SH:-$HERE/cluster.sh}
rounds=${1:-10} parallel=${2:-2} burners=${3:-2}

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

passed=0
for ((r = 1; r <= rounds; r++)); do
  t0=$SECONDS pids=() failed=0
  for ((c = 1; c <= parallel; c++)); do
    bash "$CLUSTER_SH" up "$root/c$c" >"$root/up-$c.log" 2>&1 &
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
  echo "round $r: $parallel clusters up in $((SECONDS - t0))s (with $burners CPU burners)"
done
echo "soak: $passed of $rounds rounds passed ($((passed * parallel)) cold starts, $parallel at a time, $burners CPU burners)"
